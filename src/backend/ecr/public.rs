//! ECR Public on aws-sdk-ecrpublic: the only code that sees its types. Every call goes through
//! [`EcrBackend::call`] (rate limit, timing, metric, classification) under the operation names
//! `ecr-public:<Operation>`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_sdk_ecrpublic::primitives::Blob;
use aws_sdk_ecrpublic::types::{Repository, RepositoryCatalogDataInput, Tag};

use super::{EcrBackend, deleted};
use crate::backend::ecr_public::{
    EcrPublicBackend, NewPublicRepository, PUBLIC_HOST, PublicCatalog, PublicChange, PublicRegistryInfo,
    RemotePublicCatalog, RemotePublicRepository,
};
use crate::backend::{AuthToken, BackendError, BackendResult, Target};

fn repository(r: &Repository) -> RemotePublicRepository {
    RemotePublicRepository {
        name: r.repository_name().unwrap_or_default().to_owned(),
        arn: r.repository_arn().unwrap_or_default().to_owned(),
        uri: r.repository_uri().unwrap_or_default().to_owned(),
        registry_id: r.registry_id().unwrap_or_default().to_owned(),
        created_at: r.created_at().and_then(|t| SystemTime::try_from(*t).ok()),
    }
}

fn catalog_input(catalog: &PublicCatalog, logo: Option<&Vec<u8>>) -> RepositoryCatalogDataInput {
    RepositoryCatalogDataInput::builder()
        .description(&catalog.description)
        .about_text(&catalog.about_text)
        .usage_text(&catalog.usage_text)
        .set_architectures(Some(catalog.architectures.clone()))
        .set_operating_systems(Some(catalog.operating_systems.clone()))
        .set_logo_image_blob(logo.map(|b| Blob::new(b.clone())))
        .build()
}

fn tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

impl EcrPublicBackend for EcrBackend {
    async fn describe_public_registry(&self, target: &Target) -> BackendResult<PublicRegistryInfo> {
        let out = self
            .call(target, "ecr-public:DescribeRegistries", |c| async move {
                c.ecr_public.describe_registries().send().await
            })
            .await?;
        let registry = out.registries().first().ok_or_else(|| {
            BackendError::Unavailable("ecr-public:DescribeRegistries returned no registry".into())
        })?;
        let alias = registry
            .aliases()
            .iter()
            .find(|a| a.primary_registry_alias())
            .or_else(|| registry.aliases().first())
            .map(|a| a.name().to_owned());
        let catalog = self
            .call(target, "ecr-public:GetRegistryCatalogData", |c| async move {
                c.ecr_public.get_registry_catalog_data().send().await
            })
            .await?;
        let display_name = catalog
            .registry_catalog_data()
            .and_then(|d| d.display_name())
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        Ok(PublicRegistryInfo {
            registry_id: registry.registry_id().to_owned(),
            alias,
            display_name,
        })
    }

    async fn describe_public_repository(
        &self,
        target: &Target,
        name: &str,
    ) -> BackendResult<Option<RemotePublicRepository>> {
        let name = name.to_owned();
        let result = self
            .call(target, "ecr-public:DescribeRepositories", |c| async move {
                c.ecr_public
                    .describe_repositories()
                    .repository_names(name)
                    .send()
                    .await
            })
            .await;
        match result {
            Ok(out) => Ok(out.repositories().first().map(repository)),
            Err(BackendError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_public_repository(
        &self,
        target: &Target,
        repo: &NewPublicRepository,
    ) -> BackendResult<RemotePublicRepository> {
        let (name, catalog, tags) = (
            repo.name.clone(),
            catalog_input(&repo.catalog, repo.logo.as_ref()),
            tags(&repo.tags),
        );
        let out = self
            .call(target, "ecr-public:CreateRepository", |c| async move {
                c.ecr_public
                    .create_repository()
                    .repository_name(name)
                    .catalog_data(catalog)
                    .set_tags(Some(tags))
                    .send()
                    .await
            })
            .await?;
        out.repository().map(repository).ok_or_else(|| {
            BackendError::Unavailable("ecr-public:CreateRepository returned no repository".into())
        })
    }

    async fn get_public_catalog(&self, target: &Target, name: &str) -> BackendResult<RemotePublicCatalog> {
        let name = name.to_owned();
        let out = self
            .call(target, "ecr-public:GetRepositoryCatalogData", |c| async move {
                c.ecr_public
                    .get_repository_catalog_data()
                    .repository_name(name)
                    .send()
                    .await
            })
            .await?;
        Ok(out
            .catalog_data()
            .map(|d| RemotePublicCatalog {
                catalog: PublicCatalog {
                    description: d.description().unwrap_or_default().to_owned(),
                    about_text: d.about_text().unwrap_or_default().to_owned(),
                    usage_text: d.usage_text().unwrap_or_default().to_owned(),
                    architectures: d.architectures().to_vec(),
                    operating_systems: d.operating_systems().to_vec(),
                },
                logo_url: d.logo_url().filter(|u| !u.is_empty()).map(str::to_owned),
            })
            .unwrap_or_default())
    }

    async fn list_public_tags(&self, target: &Target, arn: &str) -> BackendResult<BTreeMap<String, String>> {
        let arn = arn.to_owned();
        let out = self
            .call(target, "ecr-public:ListTagsForResource", |c| async move {
                c.ecr_public
                    .list_tags_for_resource()
                    .resource_arn(arn)
                    .send()
                    .await
            })
            .await?;
        Ok(out
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }

    async fn get_public_policy(&self, target: &Target, name: &str) -> BackendResult<Option<String>> {
        let name = name.to_owned();
        let result = self
            .call(target, "ecr-public:GetRepositoryPolicy", |c| async move {
                c.ecr_public
                    .get_repository_policy()
                    .repository_name(name)
                    .send()
                    .await
            })
            .await;
        match result {
            Ok(out) => Ok(out.policy_text().map(str::to_owned)),
            // RepositoryPolicyNotFoundException: no policy.
            Err(BackendError::NotFound(m)) if m.contains("RepositoryPolicyNotFound") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn apply_public_change(
        &self,
        target: &Target,
        repo: &RemotePublicRepository,
        change: &PublicChange,
    ) -> BackendResult<()> {
        let (name, arn) = (repo.name.clone(), repo.arn.clone());
        let op = change.operation();
        match change {
            PublicChange::PutCatalog { catalog, logo } => {
                let input = catalog_input(catalog, logo.as_ref());
                self.call(target, op, |c| async move {
                    c.ecr_public
                        .put_repository_catalog_data()
                        .repository_name(name)
                        .catalog_data(input)
                        .send()
                        .await
                })
                .await
                .map(drop)
            }
            PublicChange::TagResource(t) => {
                let t = tags(t);
                self.call(target, op, |c| async move {
                    c.ecr_public
                        .tag_resource()
                        .resource_arn(arn)
                        .set_tags(Some(t))
                        .send()
                        .await
                })
                .await
                .map(drop)
            }
            PublicChange::UntagResource(keys) => {
                let keys = keys.clone();
                self.call(target, op, |c| async move {
                    c.ecr_public
                        .untag_resource()
                        .resource_arn(arn)
                        .set_tag_keys(Some(keys))
                        .send()
                        .await
                })
                .await
                .map(drop)
            }
            PublicChange::SetPolicy(text) => {
                let text = text.clone();
                self.call(target, op, |c| async move {
                    c.ecr_public
                        .set_repository_policy()
                        .repository_name(name)
                        .policy_text(text)
                        .send()
                        .await
                })
                .await
                .map(drop)
            }
            PublicChange::DeletePolicy => {
                let result = self
                    .call(target, op, |c| async move {
                        c.ecr_public
                            .delete_repository_policy()
                            .repository_name(name)
                            .send()
                            .await
                    })
                    .await;
                deleted(result).map(drop)
            }
        }
    }

    async fn count_public_images(&self, target: &Target, name: &str) -> BackendResult<u64> {
        let mut count = 0u64;
        let mut token: Option<String> = None;
        loop {
            let (name, next) = (name.to_owned(), token.clone());
            let page = self
                .call(target, "ecr-public:DescribeImages", |c| async move {
                    c.ecr_public
                        .describe_images()
                        .repository_name(name)
                        .max_results(1000)
                        .set_next_token(next)
                        .send()
                        .await
                })
                .await?;
            count += page.image_details().len() as u64;
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(count),
            }
        }
    }

    async fn delete_public_repository(
        &self,
        target: &Target,
        name: &str,
        force: bool,
    ) -> BackendResult<bool> {
        let name = name.to_owned();
        let result = self
            .call(target, "ecr-public:DeleteRepository", |c| async move {
                c.ecr_public
                    .delete_repository()
                    .repository_name(name)
                    .force(force)
                    .send()
                    .await
            })
            .await;
        deleted(result)
    }

    async fn public_authorization_token(&self, target: &Target) -> BackendResult<AuthToken> {
        let out = self
            .call(target, "ecr-public:GetAuthorizationToken", |c| async move {
                c.ecr_public.get_authorization_token().send().await
            })
            .await?;
        let data = out.authorization_data().ok_or_else(|| {
            BackendError::Unavailable(
                "ecr-public:GetAuthorizationToken returned no authorization data".into(),
            )
        })?;
        let token = data.authorization_token().ok_or_else(|| {
            BackendError::Unavailable("ecr-public:GetAuthorizationToken returned no token".into())
        })?;
        Ok(AuthToken {
            token: secrecy::SecretString::from(token.to_owned()),
            expires_at: data.expires_at().and_then(|t| SystemTime::try_from(*t).ok()),
            proxy_endpoint: format!("https://{PUBLIC_HOST}"),
        })
    }
}
