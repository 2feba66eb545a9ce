//! Pull-through cache rules (ECR) and their upstream credentials (Secrets Manager) on the SDK.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_sdk_ecr::types::{PullThroughCacheRule, UpstreamRegistry};
use secrecy::{ExposeSecret, SecretString};

use super::{EcrBackend, deleted};
use crate::backend::{
    BackendError, BackendResult, CacheRuleSettings, CacheRuleValidation, RemoteCacheRule, RemoteSecret,
    Target,
};

fn rule(r: &PullThroughCacheRule) -> RemoteCacheRule {
    RemoteCacheRule {
        prefix: r.ecr_repository_prefix().unwrap_or_default().to_owned(),
        upstream_registry: r.upstream_registry().map(|u| u.as_str().to_owned()),
        upstream_url: r.upstream_registry_url().unwrap_or_default().to_owned(),
        upstream_prefix: r.upstream_repository_prefix().map(str::to_owned),
        credential_arn: r.credential_arn().map(str::to_owned),
        custom_role_arn: r.custom_role_arn().map(str::to_owned),
        registry_id: r.registry_id().unwrap_or_default().to_owned(),
        created_at: r.created_at().and_then(|t| SystemTime::try_from(*t).ok()),
    }
}

impl EcrBackend {
    pub(super) async fn describe_cache_rule_impl(
        &self,
        target: &Target,
        prefix: &str,
    ) -> BackendResult<Option<RemoteCacheRule>> {
        let prefix = prefix.to_owned();
        let result = self
            .call(target, "DescribePullThroughCacheRules", |c| async move {
                c.ecr
                    .describe_pull_through_cache_rules()
                    .ecr_repository_prefixes(prefix)
                    .send()
                    .await
            })
            .await;
        match result {
            Ok(out) => Ok(out.pull_through_cache_rules().first().map(rule)),
            Err(BackendError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn create_cache_rule_impl(
        &self,
        target: &Target,
        settings: &CacheRuleSettings,
    ) -> BackendResult<RemoteCacheRule> {
        let s = settings.clone();
        let out = self
            .call(target, "CreatePullThroughCacheRule", |c| async move {
                c.ecr
                    .create_pull_through_cache_rule()
                    .ecr_repository_prefix(s.prefix)
                    .upstream_registry(UpstreamRegistry::from(s.upstream_registry.as_str()))
                    .upstream_registry_url(s.upstream_url)
                    .set_upstream_repository_prefix(s.upstream_prefix)
                    .set_credential_arn(s.credential_arn)
                    .set_custom_role_arn(s.custom_role_arn)
                    .send()
                    .await
            })
            .await?;
        Ok(RemoteCacheRule {
            prefix: out.ecr_repository_prefix().unwrap_or_default().to_owned(),
            upstream_registry: out.upstream_registry().map(|u| u.as_str().to_owned()),
            upstream_url: out.upstream_registry_url().unwrap_or_default().to_owned(),
            upstream_prefix: out.upstream_repository_prefix().map(str::to_owned),
            credential_arn: out.credential_arn().map(str::to_owned),
            custom_role_arn: out.custom_role_arn().map(str::to_owned),
            registry_id: out.registry_id().unwrap_or_default().to_owned(),
            created_at: out.created_at().and_then(|t| SystemTime::try_from(*t).ok()),
        })
    }

    pub(super) async fn update_cache_rule_impl(
        &self,
        target: &Target,
        settings: &CacheRuleSettings,
    ) -> BackendResult<()> {
        let s = settings.clone();
        self.call(target, "UpdatePullThroughCacheRule", |c| async move {
            c.ecr
                .update_pull_through_cache_rule()
                .ecr_repository_prefix(s.prefix)
                .set_credential_arn(s.credential_arn)
                .set_custom_role_arn(s.custom_role_arn)
                .send()
                .await
        })
        .await
        .map(drop)
    }

    pub(super) async fn delete_cache_rule_impl(&self, target: &Target, prefix: &str) -> BackendResult<bool> {
        let prefix = prefix.to_owned();
        let result = self
            .call(target, "DeletePullThroughCacheRule", |c| async move {
                c.ecr
                    .delete_pull_through_cache_rule()
                    .ecr_repository_prefix(prefix)
                    .send()
                    .await
            })
            .await;
        deleted(result)
    }

    pub(super) async fn validate_cache_rule_impl(
        &self,
        target: &Target,
        prefix: &str,
    ) -> BackendResult<CacheRuleValidation> {
        let prefix = prefix.to_owned();
        let out = self
            .call(target, "ValidatePullThroughCacheRule", |c| async move {
                c.ecr
                    .validate_pull_through_cache_rule()
                    .ecr_repository_prefix(prefix)
                    .send()
                    .await
            })
            .await?;
        Ok(CacheRuleValidation {
            valid: out.is_valid(),
            failure: out.failure().map(str::to_owned),
        })
    }

    pub(super) async fn get_secret_impl(
        &self,
        target: &Target,
        name: &str,
    ) -> BackendResult<Option<RemoteSecret>> {
        let id = name.to_owned();
        let described = self
            .call(target, "DescribeSecret", |c| async move {
                c.secrets.describe_secret().secret_id(id).send().await
            })
            .await;
        let described = match described {
            Ok(d) if d.deleted_date().is_none() => d,
            Ok(_) | Err(BackendError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let arn = described
            .arn()
            .ok_or_else(|| BackendError::Unavailable("DescribeSecret returned no ARN".into()))?
            .to_owned();
        let tags = described
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect();
        let id = arn.clone();
        let value = self
            .call(target, "GetSecretValue", |c| async move {
                c.secrets.get_secret_value().secret_id(id).send().await
            })
            .await;
        let value = match value {
            Ok(v) => v.secret_string().map(|s| SecretString::from(s.to_owned())),
            // A secret without a value yet (no version) answers ResourceNotFoundException.
            Err(BackendError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        Ok(Some(RemoteSecret { arn, tags, value }))
    }

    pub(super) async fn create_secret_impl(
        &self,
        target: &Target,
        name: &str,
        value: &SecretString,
        tags: &BTreeMap<String, String>,
    ) -> BackendResult<String> {
        let (name, value) = (name.to_owned(), value.expose_secret().to_owned());
        let tags: Vec<_> = tags
            .iter()
            .map(|(k, v)| {
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
            })
            .collect();
        let out = self
            .call(target, "CreateSecret", |c| async move {
                c.secrets
                    .create_secret()
                    .name(name)
                    .secret_string(value)
                    .set_tags(Some(tags))
                    .send()
                    .await
            })
            .await?;
        out.arn()
            .map(str::to_owned)
            .ok_or_else(|| BackendError::Unavailable("CreateSecret returned no ARN".into()))
    }

    pub(super) async fn put_secret_value_impl(
        &self,
        target: &Target,
        arn: &str,
        value: &SecretString,
    ) -> BackendResult<()> {
        let (arn, value) = (arn.to_owned(), value.expose_secret().to_owned());
        self.call(target, "PutSecretValue", |c| async move {
            c.secrets
                .put_secret_value()
                .secret_id(arn)
                .secret_string(value)
                .send()
                .await
        })
        .await
        .map(drop)
    }

    pub(super) async fn delete_secret_impl(&self, target: &Target, arn: &str) -> BackendResult<bool> {
        let arn = arn.to_owned();
        let result = self
            .call(target, "DeleteSecret", |c| async move {
                c.secrets
                    .delete_secret()
                    .secret_id(arn)
                    .force_delete_without_recovery(true)
                    .send()
                    .await
            })
            .await;
        deleted(result)
    }
}
