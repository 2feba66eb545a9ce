//! An in-memory [`RegistryBackend`] for tests of behaviour the local ECR endpoint (moto) lacks:
//! archive storage classes, pull times, images of any age. A real implementation of the trait
//! (state, not scripted calls), with a call log. Only built with the `testing` feature.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use secrecy::SecretString;

use super::{
    AuthToken, BackendError, BackendResult, EncryptionSettings, ImageInfo, NewRepository, RegistryBackend,
    RegistryInfo, RemoteRepository, ReplicationRuleSettings, RepositoryChange, ScanningSettings, Target,
};

/// What the fake holds.
#[derive(Default)]
pub struct FakeState {
    pub repositories: BTreeMap<String, RemoteRepository>,
    pub tags: BTreeMap<String, BTreeMap<String, String>>,
    pub policies: BTreeMap<String, String>,
    pub lifecycle_policies: BTreeMap<String, String>,
    pub images: BTreeMap<String, Vec<ImageInfo>>,
    pub replication: Vec<ReplicationRuleSettings>,
    pub scanning: ScanningSettings,
    pub registry_policy: Option<String>,
    /// Account settings set (others answer ECR's defaults).
    pub account_settings: BTreeMap<String, String>,
    /// Pull-time update exclusions.
    pub pull_time_exclusions: std::collections::BTreeSet<String>,
    /// The signing configuration.
    pub signing: Option<Vec<super::SigningRuleSettings>>,
    /// Repository creation templates by prefix.
    pub templates: BTreeMap<String, super::RemoteTemplate>,
    /// Pull-through cache rules by prefix.
    pub cache_rules: BTreeMap<String, super::RemoteCacheRule>,
    /// Secrets Manager secrets by name: ARN, tags, value.
    pub secrets: BTreeMap<String, (String, BTreeMap<String, String>, String)>,
    /// What ValidatePullThroughCacheRule answers; `None`: valid.
    pub cache_rule_failure: Option<String>,
    /// ECR Public (`backend::ecr_public::fake`).
    pub public: super::ecr_public::fake::FakePublic,
    /// Every operation called, in order.
    pub calls: Vec<&'static str>,
    /// Failures to inject: the next call of the operation fails with the error (once).
    pub fail_next: BTreeMap<&'static str, BackendError>,
}

/// An in-memory registry `123456789012` (every target reaches it).
#[derive(Clone, Default)]
pub struct FakeBackend {
    pub state: Arc<Mutex<FakeState>>,
}

const REGISTRY: &str = "123456789012";

impl FakeBackend {
    pub(crate) fn with<T>(&self, op: &'static str, f: impl FnOnce(&mut FakeState) -> T) -> BackendResult<T> {
        let mut s = self
            .state
            .lock()
            .map_err(|_| BackendError::Unavailable("fake poisoned".into()))?;
        s.calls.push(op);
        if let Some(e) = s.fail_next.remove(op) {
            return Err(e);
        }
        Ok(f(&mut s))
    }

    /// Makes the next call of `op` (an ECR operation name) fail with `error`.
    pub fn fail_next(&self, op: &'static str, error: BackendError) {
        if let Ok(mut s) = self.state.lock() {
            s.fail_next.insert(op, error);
        }
    }

    /// The operations called so far, in order.
    pub fn calls(&self) -> Vec<&'static str> {
        self.state.lock().map(|s| s.calls.clone()).unwrap_or_default()
    }

    /// The write operations called so far (everything but Describe/Get/List).
    pub fn writes(&self) -> Vec<&'static str> {
        self.calls()
            .into_iter()
            .filter(|op| {
                // ECR Public's operations are named `ecr-public:<Operation>`.
                let op = op.strip_prefix("ecr-public:").unwrap_or(op);
                !(op.starts_with("Describe")
                    || op.starts_with("Get")
                    || op.starts_with("List")
                    || op.starts_with("Validate")
                    || op.starts_with("BatchGet"))
            })
            .collect()
    }

    /// Adds a repository with images (as if pushed by someone).
    pub fn seed_repository(&self, target_region: &str, name: &str, images: Vec<ImageInfo>) {
        if let Ok(mut s) = self.state.lock() {
            s.repositories
                .insert(name.to_owned(), repository(target_region, name));
            s.images.insert(name.to_owned(), images);
        }
    }
}

fn repository(region: &str, name: &str) -> RemoteRepository {
    RemoteRepository {
        name: name.to_owned(),
        arn: format!("arn:aws:ecr:{region}:{REGISTRY}:repository/{name}"),
        uri: format!("{REGISTRY}.dkr.ecr.{region}.amazonaws.com/{name}"),
        registry_id: REGISTRY.to_owned(),
        created_at: Some(SystemTime::now()),
        mutability: super::Mutability::Mutable,
        exclusion_filters: vec![],
        scan_on_push: false,
        encryption: EncryptionSettings {
            encryption_type: "AES256".into(),
            kms_key: None,
        },
    }
}

fn name_of(arn: &str) -> String {
    arn.split_once(":repository/")
        .map(|(_, n)| n.to_owned())
        .unwrap_or_default()
}

impl RegistryBackend for FakeBackend {
    async fn describe_registry(&self, _: &Target) -> BackendResult<RegistryInfo> {
        self.with("DescribeRegistry", |_| RegistryInfo {
            registry_id: REGISTRY.into(),
            identity: Some(format!("arn:aws:iam::{REGISTRY}:role/fake")),
        })
    }

    async fn list_repositories(&self, _: &Target) -> BackendResult<Vec<RemoteRepository>> {
        self.with("DescribeRepositories", |s| {
            s.repositories.values().cloned().collect()
        })
    }

    async fn describe_repository(&self, _: &Target, name: &str) -> BackendResult<Option<RemoteRepository>> {
        self.with("DescribeRepositories", |s| s.repositories.get(name).cloned())
    }

    async fn create_repository(&self, t: &Target, repo: &NewRepository) -> BackendResult<RemoteRepository> {
        self.with("CreateRepository", |s| {
            if s.repositories.contains_key(&repo.name) {
                return Err(BackendError::AlreadyExists(repo.name.clone()));
            }
            let mut r = repository(&t.region, &repo.name);
            r.mutability = repo.mutability;
            r.exclusion_filters = repo.exclusion_filters.clone();
            r.scan_on_push = repo.scan_on_push;
            if let Some(e) = &repo.encryption {
                r.encryption = e.clone();
            }
            s.repositories.insert(repo.name.clone(), r.clone());
            s.tags.insert(repo.name.clone(), repo.tags.clone());
            Ok(r)
        })?
    }

    async fn list_tags(&self, _: &Target, arn: &str) -> BackendResult<BTreeMap<String, String>> {
        self.with("ListTagsForResource", |s| {
            s.tags.get(&name_of(arn)).cloned().unwrap_or_default()
        })
    }

    async fn get_repository_policy(&self, _: &Target, name: &str) -> BackendResult<Option<String>> {
        self.with("GetRepositoryPolicy", |s| s.policies.get(name).cloned())
    }

    async fn apply_change(
        &self,
        _: &Target,
        repo: &RemoteRepository,
        change: &RepositoryChange,
    ) -> BackendResult<()> {
        self.with(change.operation(), |s| {
            let name = repo.name.clone();
            match change.clone() {
                RepositoryChange::PutTagMutability {
                    mutability,
                    exclusion_filters,
                } => {
                    if let Some(r) = s.repositories.get_mut(&name) {
                        r.mutability = mutability;
                        r.exclusion_filters = exclusion_filters;
                    }
                }
                RepositoryChange::PutScanOnPush(on) => {
                    if let Some(r) = s.repositories.get_mut(&name) {
                        r.scan_on_push = on;
                    }
                }
                RepositoryChange::TagResource(tags) => s.tags.entry(name).or_default().extend(tags),
                RepositoryChange::UntagResource(keys) => {
                    let t = s.tags.entry(name).or_default();
                    keys.iter().for_each(|k| {
                        t.remove(k);
                    });
                }
                RepositoryChange::SetPolicy(text) => {
                    s.policies.insert(name, text);
                }
                RepositoryChange::DeletePolicy => {
                    s.policies.remove(&name);
                }
            }
        })
    }

    async fn count_images(&self, _: &Target, name: &str) -> BackendResult<u64> {
        self.with("ListImages", |s| s.images.get(name).map_or(0, |i| i.len() as u64))
    }

    async fn delete_repository(&self, _: &Target, name: &str, force: bool) -> BackendResult<bool> {
        self.with("DeleteRepository", |s| {
            if !force && s.images.get(name).is_some_and(|i| !i.is_empty()) {
                return Err(BackendError::NotEmpty(name.to_owned()));
            }
            s.images.remove(name);
            s.tags.remove(name);
            s.policies.remove(name);
            s.lifecycle_policies.remove(name);
            Ok(s.repositories.remove(name).is_some())
        })?
    }

    async fn get_registry_scanning(&self, _: &Target) -> BackendResult<ScanningSettings> {
        self.with("GetRegistryScanningConfiguration", |s| s.scanning.clone())
    }

    async fn put_registry_scanning(&self, _: &Target, settings: &ScanningSettings) -> BackendResult<()> {
        self.with("PutRegistryScanningConfiguration", |s| {
            s.scanning = settings.clone()
        })
    }

    async fn get_registry_policy(&self, _: &Target) -> BackendResult<Option<String>> {
        self.with("GetRegistryPolicy", |s| s.registry_policy.clone())
    }

    async fn put_registry_policy(&self, _: &Target, policy: &str) -> BackendResult<()> {
        self.with("PutRegistryPolicy", |s| {
            s.registry_policy = Some(policy.to_owned())
        })
    }

    async fn get_replication(&self, _: &Target) -> BackendResult<Vec<ReplicationRuleSettings>> {
        self.with("DescribeRegistry", |s| s.replication.clone())
    }

    async fn put_replication(&self, _: &Target, rules: &[ReplicationRuleSettings]) -> BackendResult<()> {
        self.with("PutReplicationConfiguration", |s| s.replication = rules.to_vec())
    }

    // Like ECR: a repository that does not exist is RepositoryNotFoundException (NotFound).
    async fn get_lifecycle_policy(&self, _: &Target, repo: &str) -> BackendResult<Option<String>> {
        self.with("GetLifecyclePolicy", |s| {
            if !s.repositories.contains_key(repo) {
                return Err(BackendError::NotFound(format!(
                    "RepositoryNotFoundException: {repo}"
                )));
            }
            Ok(s.lifecycle_policies.get(repo).cloned())
        })?
    }

    async fn put_lifecycle_policy(&self, _: &Target, repo: &str, text: &str) -> BackendResult<()> {
        self.with("PutLifecyclePolicy", |s| {
            if !s.repositories.contains_key(repo) {
                return Err(BackendError::NotFound(format!(
                    "RepositoryNotFoundException: {repo}"
                )));
            }
            s.lifecycle_policies.insert(repo.to_owned(), text.to_owned());
            Ok(())
        })?
    }

    async fn delete_lifecycle_policy(&self, _: &Target, repo: &str) -> BackendResult<bool> {
        self.with("DeleteLifecyclePolicy", |s| {
            s.lifecycle_policies.remove(repo).is_some()
        })
    }

    async fn describe_images(&self, _: &Target, repo: &str) -> BackendResult<Vec<ImageInfo>> {
        self.with("DescribeImages", |s| {
            s.images.get(repo).cloned().unwrap_or_default()
        })
    }

    async fn tag_image(&self, _: &Target, repo: &str, digest: &str, tag: &str) -> BackendResult<()> {
        self.with("BatchGetImage", |_| ())?;
        self.with("PutImage", |s| {
            let images = s.images.entry(repo.to_owned()).or_default();
            if !images.iter().any(|i| i.digest == digest) {
                return Err(BackendError::NotFound(format!(
                    "ImageNotFoundException: {repo}@{digest}"
                )));
            }
            for i in images.iter_mut() {
                i.tags.retain(|t| t != tag);
                if i.digest == digest {
                    i.tags.push(tag.to_owned());
                }
            }
            Ok(())
        })?
    }

    async fn untag_image(&self, _: &Target, repo: &str, tag: &str) -> BackendResult<bool> {
        self.with("BatchDeleteImage", |s| {
            let images = s.images.entry(repo.to_owned()).or_default();
            let Some(at) = images.iter().position(|i| i.tags.iter().any(|t| t == tag)) else {
                return false;
            };
            images[at].tags.retain(|t| t != tag);
            // An image whose last tag was removed is deleted, as in ECR.
            if images[at].tags.is_empty() {
                images.remove(at);
            }
            true
        })
    }

    async fn describe_images_page(
        &self,
        _: &Target,
        repo: &str,
        next_token: Option<String>,
        page_size: i32,
    ) -> BackendResult<(Vec<ImageInfo>, Option<String>)> {
        let start: usize = next_token.as_deref().and_then(|t| t.parse().ok()).unwrap_or(0);
        let size = usize::try_from(page_size.max(1)).unwrap_or(1);
        self.with("DescribeImages", |s| {
            let all = s.images.get(repo).cloned().unwrap_or_default();
            let end = (start + size).min(all.len());
            let page = all.get(start..end).map(<[ImageInfo]>::to_vec).unwrap_or_default();
            (page, (end < all.len()).then(|| end.to_string()))
        })
    }

    async fn get_account_setting(&self, _: &Target, name: &str) -> BackendResult<String> {
        let default = match name {
            "BASIC_SCAN_TYPE_VERSION" => "AWS_NATIVE",
            "REGISTRY_POLICY_SCOPE" => "V2",
            _ => "DISABLED",
        };
        self.with("GetAccountSetting", |s| {
            s.account_settings
                .get(name)
                .cloned()
                .unwrap_or_else(|| default.to_owned())
        })
    }

    async fn put_account_setting(&self, _: &Target, name: &str, value: &str) -> BackendResult<()> {
        self.with("PutAccountSetting", |s| {
            s.account_settings.insert(name.to_owned(), value.to_owned());
        })
    }

    async fn list_pull_time_exclusions(&self, _: &Target) -> BackendResult<Vec<String>> {
        self.with("ListPullTimeUpdateExclusions", |s| {
            s.pull_time_exclusions.iter().cloned().collect()
        })
    }

    async fn set_pull_time_exclusion(
        &self,
        _: &Target,
        principal_arn: &str,
        register: bool,
    ) -> BackendResult<()> {
        let op = if register {
            "RegisterPullTimeUpdateExclusion"
        } else {
            "DeregisterPullTimeUpdateExclusion"
        };
        self.with(op, |s| {
            if register {
                s.pull_time_exclusions.insert(principal_arn.to_owned());
            } else {
                s.pull_time_exclusions.remove(principal_arn);
            }
        })
    }

    async fn get_signing(&self, _: &Target) -> BackendResult<Option<Vec<super::SigningRuleSettings>>> {
        self.with("GetSigningConfiguration", |s| s.signing.clone())
    }

    async fn put_signing(&self, _: &Target, rules: &[super::SigningRuleSettings]) -> BackendResult<()> {
        self.with("PutSigningConfiguration", |s| s.signing = Some(rules.to_vec()))
    }

    async fn describe_template(
        &self,
        _: &Target,
        prefix: &str,
    ) -> BackendResult<Option<super::RemoteTemplate>> {
        self.with("DescribeRepositoryCreationTemplates", |s| {
            s.templates.get(prefix).cloned()
        })
    }

    async fn create_template(
        &self,
        _: &Target,
        template: &super::TemplateSettings,
    ) -> BackendResult<super::RemoteTemplate> {
        self.with("CreateRepositoryCreationTemplate", |s| {
            if s.templates.contains_key(&template.prefix) {
                return Err(BackendError::AlreadyExists(template.prefix.clone()));
            }
            let created = super::RemoteTemplate {
                settings: template.clone(),
                registry_id: REGISTRY.into(),
                created_at: Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)),
            };
            s.templates.insert(template.prefix.clone(), created.clone());
            Ok(created)
        })?
    }

    async fn update_template(&self, _: &Target, template: &super::TemplateSettings) -> BackendResult<()> {
        self.with("UpdateRepositoryCreationTemplate", |s| {
            match s.templates.get_mut(&template.prefix) {
                Some(t) => {
                    t.settings = template.clone();
                    Ok(())
                }
                None => Err(BackendError::NotFound(template.prefix.clone())),
            }
        })?
    }

    async fn delete_template(&self, _: &Target, prefix: &str) -> BackendResult<bool> {
        self.with("DeleteRepositoryCreationTemplate", |s| {
            s.templates.remove(prefix).is_some()
        })
    }

    async fn describe_cache_rule(
        &self,
        _: &Target,
        prefix: &str,
    ) -> BackendResult<Option<super::RemoteCacheRule>> {
        self.with("DescribePullThroughCacheRules", |s| {
            s.cache_rules.get(prefix).cloned()
        })
    }

    async fn create_cache_rule(
        &self,
        _: &Target,
        rule: &super::CacheRuleSettings,
    ) -> BackendResult<super::RemoteCacheRule> {
        self.with("CreatePullThroughCacheRule", |s| {
            if s.cache_rules.contains_key(&rule.prefix) {
                return Err(BackendError::AlreadyExists(rule.prefix.clone()));
            }
            let created = super::RemoteCacheRule {
                prefix: rule.prefix.clone(),
                upstream_registry: Some(rule.upstream_registry.clone()),
                upstream_url: rule.upstream_url.clone(),
                upstream_prefix: Some(rule.upstream_prefix.clone().unwrap_or_else(|| "ROOT".into())),
                credential_arn: rule.credential_arn.clone(),
                custom_role_arn: rule.custom_role_arn.clone(),
                registry_id: REGISTRY.into(),
                created_at: Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)),
            };
            s.cache_rules.insert(rule.prefix.clone(), created.clone());
            Ok(created)
        })?
    }

    async fn update_cache_rule(&self, _: &Target, rule: &super::CacheRuleSettings) -> BackendResult<()> {
        self.with("UpdatePullThroughCacheRule", |s| {
            match s.cache_rules.get_mut(&rule.prefix) {
                Some(r) => {
                    r.credential_arn = rule.credential_arn.clone();
                    r.custom_role_arn = rule.custom_role_arn.clone();
                    Ok(())
                }
                None => Err(BackendError::NotFound(rule.prefix.clone())),
            }
        })?
    }

    async fn delete_cache_rule(&self, _: &Target, prefix: &str) -> BackendResult<bool> {
        self.with("DeletePullThroughCacheRule", |s| {
            s.cache_rules.remove(prefix).is_some()
        })
    }

    async fn validate_cache_rule(
        &self,
        _: &Target,
        prefix: &str,
    ) -> BackendResult<super::CacheRuleValidation> {
        self.with("ValidatePullThroughCacheRule", |s| {
            if !s.cache_rules.contains_key(prefix) {
                return Err(BackendError::NotFound(prefix.to_owned()));
            }
            Ok(super::CacheRuleValidation {
                valid: s.cache_rule_failure.is_none(),
                failure: s.cache_rule_failure.clone(),
            })
        })?
    }

    async fn get_secret(&self, _: &Target, name: &str) -> BackendResult<Option<super::RemoteSecret>> {
        self.with("DescribeSecret", |s| {
            s.secrets.get(name).map(|(arn, tags, value)| super::RemoteSecret {
                arn: arn.clone(),
                tags: tags.clone(),
                value: Some(SecretString::from(value.clone())),
            })
        })
    }

    async fn create_secret(
        &self,
        t: &Target,
        name: &str,
        value: &SecretString,
        tags: &BTreeMap<String, String>,
    ) -> BackendResult<String> {
        use secrecy::ExposeSecret;
        let arn = format!(
            "arn:aws:secretsmanager:{}:{REGISTRY}:secret:{name}-AbCdEf",
            t.region
        );
        self.with("CreateSecret", |s| {
            if s.secrets.contains_key(name) {
                return Err(BackendError::AlreadyExists(name.to_owned()));
            }
            s.secrets.insert(
                name.to_owned(),
                (arn.clone(), tags.clone(), value.expose_secret().to_owned()),
            );
            Ok(arn)
        })?
    }

    async fn put_secret_value(&self, _: &Target, arn: &str, value: &SecretString) -> BackendResult<()> {
        use secrecy::ExposeSecret;
        self.with("PutSecretValue", |s| {
            match s.secrets.values_mut().find(|(a, _, _)| a == arn) {
                Some(secret) => {
                    secret.2 = value.expose_secret().to_owned();
                    Ok(())
                }
                None => Err(BackendError::NotFound(arn.to_owned())),
            }
        })?
    }

    async fn delete_secret(&self, _: &Target, arn: &str) -> BackendResult<bool> {
        self.with("DeleteSecret", |s| {
            let before = s.secrets.len();
            s.secrets.retain(|_, (a, _, _)| a != arn);
            s.secrets.len() != before
        })
    }

    async fn authorization_token(&self, t: &Target) -> BackendResult<AuthToken> {
        use base64::Engine;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("AWS:fake-password-{}", t.region));
        self.with("GetAuthorizationToken", |_| AuthToken {
            token: SecretString::from(token),
            expires_at: Some(SystemTime::now() + std::time::Duration::from_secs(12 * 3600)),
            proxy_endpoint: format!("https://{REGISTRY}.dkr.ecr.{}.amazonaws.com", t.region),
        })
    }

    async fn assume_role_with_web_identity(
        &self,
        _region: &str,
        role_arn: &str,
        session_name: &str,
        _token: &SecretString,
    ) -> BackendResult<super::Session> {
        let role = role_arn.rsplit('/').next().unwrap_or_default().to_owned();
        let account = role_arn.split(':').nth(4).unwrap_or_default().to_owned();
        self.with("AssumeRoleWithWebIdentity", |_| super::Session {
            keys: super::StaticKeys {
                access_key_id: format!("ASIAFAKE{}", role.len()),
                secret_access_key: SecretString::from(format!("fake-secret-{role}")),
                session_token: Some(SecretString::from(format!("fake-session-{role}-{session_name}"))),
            },
            expires_at: SystemTime::now() + std::time::Duration::from_secs(3600),
            assumed_role_arn: Some(format!(
                "arn:aws:sts::{account}:assumed-role/{role}/{session_name}"
            )),
        })
    }
}
