//! ECR Public in [`FakeBackend`]: one public registry (alias `fakealias`), its repositories,
//! catalog data, policies, tags and image counts, with the same call log and failure injection
//! (operations named `ecr-public:<Operation>`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use sha2::{Digest, Sha256};

use super::{
    EcrPublicBackend, NewPublicRepository, PUBLIC_HOST, PublicCatalog, PublicChange, PublicRegistryInfo,
    RemotePublicCatalog, RemotePublicRepository,
};
use crate::backend::fake::FakeBackend;
use crate::backend::{AuthToken, BackendError, BackendResult, Target};

/// The fake's registry alias.
pub const ALIAS: &str = "fakealias";
const REGISTRY: &str = "123456789012";

/// One public repository of the fake.
#[derive(Clone, Debug, Default)]
pub struct FakePublicRepository {
    pub catalog: PublicCatalog,
    /// SHA-256 of the logo sent last.
    pub logo_sha: Option<String>,
    pub policy: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub images: u64,
}

/// What the fake holds for ECR Public.
#[derive(Clone, Debug, Default)]
pub struct FakePublic {
    pub repositories: BTreeMap<String, FakePublicRepository>,
    pub display_name: Option<String>,
}

fn remote(name: &str) -> RemotePublicRepository {
    RemotePublicRepository {
        name: name.to_owned(),
        arn: format!("arn:aws:ecr-public::{REGISTRY}:repository/{name}"),
        uri: format!("{PUBLIC_HOST}/{ALIAS}/{name}"),
        registry_id: REGISTRY.to_owned(),
        created_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
    }
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn missing(name: &str) -> BackendError {
    BackendError::NotFound(format!("RepositoryNotFoundException: {name}"))
}

impl FakeBackend {
    /// Adds a public repository with `images` images (as if created and pushed by someone else).
    pub fn seed_public_repository(&self, name: &str, images: u64, tags: BTreeMap<String, String>) {
        if let Ok(mut s) = self.state.lock() {
            s.public.repositories.insert(
                name.to_owned(),
                FakePublicRepository {
                    images,
                    tags,
                    ..Default::default()
                },
            );
        }
    }

    /// A copy of the public repository's state, if it exists.
    pub fn public_repository(&self, name: &str) -> Option<FakePublicRepository> {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.public.repositories.get(name).cloned())
    }
}

impl EcrPublicBackend for FakeBackend {
    async fn describe_public_registry(&self, _: &Target) -> BackendResult<PublicRegistryInfo> {
        self.with("ecr-public:DescribeRegistries", |s| PublicRegistryInfo {
            registry_id: REGISTRY.to_owned(),
            alias: Some(ALIAS.to_owned()),
            display_name: s.public.display_name.clone(),
        })
    }

    async fn describe_public_repository(
        &self,
        _: &Target,
        name: &str,
    ) -> BackendResult<Option<RemotePublicRepository>> {
        self.with("ecr-public:DescribeRepositories", |s| {
            s.public.repositories.contains_key(name).then(|| remote(name))
        })
    }

    async fn create_public_repository(
        &self,
        _: &Target,
        repo: &NewPublicRepository,
    ) -> BackendResult<RemotePublicRepository> {
        self.with("ecr-public:CreateRepository", |s| {
            if s.public.repositories.contains_key(&repo.name) {
                return Err(BackendError::AlreadyExists(repo.name.clone()));
            }
            s.public.repositories.insert(
                repo.name.clone(),
                FakePublicRepository {
                    catalog: repo.catalog.clone(),
                    logo_sha: repo.logo.as_deref().map(sha),
                    tags: repo.tags.clone(),
                    ..Default::default()
                },
            );
            Ok(remote(&repo.name))
        })?
    }

    async fn get_public_catalog(&self, _: &Target, name: &str) -> BackendResult<RemotePublicCatalog> {
        self.with("ecr-public:GetRepositoryCatalogData", |s| {
            let r = s.public.repositories.get(name).ok_or_else(|| missing(name))?;
            Ok(RemotePublicCatalog {
                catalog: r.catalog.clone(),
                logo_url: r
                    .logo_sha
                    .as_ref()
                    .map(|h| format!("https://logos.example/{h}.png")),
            })
        })?
    }

    async fn list_public_tags(&self, _: &Target, arn: &str) -> BackendResult<BTreeMap<String, String>> {
        let name = arn.split_once(":repository/").map(|(_, n)| n).unwrap_or_default();
        self.with("ecr-public:ListTagsForResource", |s| {
            s.public
                .repositories
                .get(name)
                .map(|r| r.tags.clone())
                .ok_or_else(|| missing(name))
        })?
    }

    async fn get_public_policy(&self, _: &Target, name: &str) -> BackendResult<Option<String>> {
        self.with("ecr-public:GetRepositoryPolicy", |s| {
            s.public
                .repositories
                .get(name)
                .map(|r| r.policy.clone())
                .ok_or_else(|| missing(name))
        })?
    }

    async fn apply_public_change(
        &self,
        _: &Target,
        repo: &RemotePublicRepository,
        change: &PublicChange,
    ) -> BackendResult<()> {
        self.with(change.operation(), |s| {
            let r = s
                .public
                .repositories
                .get_mut(&repo.name)
                .ok_or_else(|| missing(&repo.name))?;
            match change {
                PublicChange::PutCatalog { catalog, logo } => {
                    r.catalog = catalog.clone();
                    if let Some(logo) = logo {
                        r.logo_sha = Some(sha(logo));
                    }
                }
                PublicChange::TagResource(t) => r.tags.extend(t.clone()),
                PublicChange::UntagResource(keys) => r.tags.retain(|k, _| !keys.contains(k)),
                PublicChange::SetPolicy(p) => r.policy = Some(p.clone()),
                PublicChange::DeletePolicy => r.policy = None,
            }
            Ok(())
        })?
    }

    async fn count_public_images(&self, _: &Target, name: &str) -> BackendResult<u64> {
        self.with("ecr-public:DescribeImages", |s| {
            s.public
                .repositories
                .get(name)
                .map(|r| r.images)
                .ok_or_else(|| missing(name))
        })?
    }

    async fn delete_public_repository(&self, _: &Target, name: &str, force: bool) -> BackendResult<bool> {
        self.with("ecr-public:DeleteRepository", |s| {
            match s.public.repositories.get(name) {
                None => Ok(false),
                Some(r) if r.images > 0 && !force => Err(BackendError::NotEmpty(name.to_owned())),
                Some(_) => Ok(s.public.repositories.remove(name).is_some()),
            }
        })?
    }

    async fn public_authorization_token(&self, _: &Target) -> BackendResult<AuthToken> {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:fake-public-password");
        self.with("ecr-public:GetAuthorizationToken", |_| AuthToken {
            token: SecretString::from(token),
            expires_at: Some(SystemTime::now() + Duration::from_secs(12 * 3600)),
            proxy_endpoint: format!("https://{PUBLIC_HOST}"),
        })
    }
}
