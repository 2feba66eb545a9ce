//! `EcrBackend`: [`RegistryBackend`] on aws-sdk-ecr. The only module that sees SDK types.

mod cache_rules;
mod convert;
mod errors;
mod images;
mod public;
mod registry_settings;
mod templates;

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_config::BehaviorVersion;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_ecr::config::{Region, SharedCredentialsProvider};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use super::lanes::{self, LaneLimiter};
use super::{
    AuthToken, BackendError, BackendResult, Credentials, NewRepository, RegistryBackend, RegistryInfo,
    RemoteRepository, ReplicationRuleSettings, RepositoryChange, ScanningSettings, Target,
};
use crate::metrics::Metrics;
use errors::classify;

/// Limits on ECR calls.
#[derive(Clone, Copy, Debug)]
pub struct EcrLimits {
    /// Sustained ECR calls per second per registry key (region, endpoint, identity).
    pub requests_per_second: NonZeroU32,
    /// Calls allowed in a burst above the sustained rate.
    pub burst: NonZeroU32,
    /// The part of the rate (0 to 1) kept for background calls while user calls wait
    /// (`super::lanes`); background calls get all of it when no user call waits.
    pub background_share: f64,
}

struct Clients {
    ecr: aws_sdk_ecr::Client,
    sts: aws_sdk_sts::Client,
    /// Secrets Manager, for pull-through cache credentials: the SDK's endpoint for the region
    /// (`AWS_ENDPOINT_URL_SECRETS_MANAGER` overrides it), never the Registry's ECR endpoint.
    secrets: aws_sdk_secretsmanager::Client,
    /// ECR Public (`public.rs`): always us-east-1, the SDK's endpoint
    /// (`AWS_ENDPOINT_URL_ECR_PUBLIC` overrides it), never the Registry's ECR endpoint.
    ecr_public: aws_sdk_ecrpublic::Client,
    limiter: LaneLimiter,
}

/// ECR through aws-sdk-ecr: one SDK client and one token-bucket rate limiter per
/// (region, endpoint, identity), created on first use and shared by every controller.
pub struct EcrBackend {
    clients: Mutex<HashMap<String, Arc<OnceCell<Arc<Clients>>>>>,
    limits: EcrLimits,
    metrics: Arc<Metrics>,
    /// `--ecr-public-endpoint`: the ECR Public endpoint, when not the SDK's.
    public_endpoint: Option<String>,
}

impl EcrBackend {
    pub fn new(limits: EcrLimits, metrics: Arc<Metrics>) -> Self {
        Self {
            clients: Mutex::default(),
            limits,
            metrics,
            public_endpoint: None,
        }
    }

    /// Sends ECR Public's calls to `endpoint` instead of the SDK's (`--ecr-public-endpoint`).
    pub fn with_public_endpoint(mut self, endpoint: Option<String>) -> Self {
        self.public_endpoint = endpoint;
        self
    }

    async fn clients(&self, target: &Target) -> BackendResult<Arc<Clients>> {
        let cell = {
            let mut map = self
                .clients
                .lock()
                .map_err(|_| BackendError::Unavailable("client cache poisoned".into()))?;
            // A web identity's earlier sessions are over once a new one is used: drop their clients.
            if let Credentials::WebIdentity { .. } = &target.credentials {
                let (prefix, current) = (format!("{}|session=", target.key()), target.client_key());
                map.retain(|k, _| !k.starts_with(&prefix) || *k == current);
            }
            map.entry(target.client_key()).or_default().clone()
        };
        cell.get_or_try_init(|| self.build(target)).await.cloned()
    }

    async fn build(&self, target: &Target) -> BackendResult<Arc<Clients>> {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(target.region.clone()));
        if let Credentials::Static(keys) | Credentials::WebIdentity { session: keys, .. } =
            &target.credentials
        {
            loader = loader.credentials_provider(aws_sdk_ecr::config::Credentials::new(
                keys.access_key_id.clone(),
                keys.secret_access_key.expose_secret().to_owned(),
                keys.session_token.as_ref().map(|t| t.expose_secret().to_owned()),
                None,
                "ecr-operator-secret",
            ));
        }
        let base = loader.load().await;
        let assumed = match &target.credentials {
            Credentials::AssumeRole {
                role_arn,
                external_id,
                session_name,
            } => {
                let mut b = AssumeRoleProvider::builder(role_arn.clone())
                    .session_name(session_name.clone().unwrap_or_else(|| "ecr-operator".into()))
                    .configure(&base);
                if let Some(ext) = external_id {
                    b = b.external_id(ext.clone());
                }
                Some(SharedCredentialsProvider::new(b.build().await))
            }
            _ => None,
        };
        let mut ecr = aws_sdk_ecr::config::Builder::from(&base);
        let mut sts = aws_sdk_sts::config::Builder::from(&base);
        let mut secrets = aws_sdk_secretsmanager::config::Builder::from(&base);
        let mut ecr_public = aws_sdk_ecrpublic::config::Builder::from(&base)
            .region(Region::new(super::ecr_public::PUBLIC_REGION));
        if let Some(provider) = assumed {
            ecr = ecr.credentials_provider(provider.clone());
            sts = sts.credentials_provider(provider.clone());
            secrets = secrets.credentials_provider(provider.clone());
            ecr_public = ecr_public.credentials_provider(provider);
        }
        if let Some(endpoint) = &target.endpoint {
            ecr = ecr.endpoint_url(endpoint);
        }
        if let Some(endpoint) = &self.public_endpoint {
            ecr_public = ecr_public.endpoint_url(endpoint);
        }
        Ok(Arc::new(Clients {
            ecr: aws_sdk_ecr::Client::from_conf(ecr.build()),
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            secrets: aws_sdk_secretsmanager::Client::from_conf(secrets.build()),
            ecr_public: aws_sdk_ecrpublic::Client::from_conf(ecr_public.build()),
            limiter: LaneLimiter::new(
                self.limits.requests_per_second,
                self.limits.burst,
                self.limits.background_share,
            ),
        }))
    }

    /// Waits for the rate limiter in the running task's lane and records the wait.
    async fn admit(&self, clients: &Clients) {
        let lane = lanes::current();
        let waited = clients.limiter.until_ready(lane).await;
        self.metrics.lane_call(lane.as_str(), waited);
    }

    /// Runs one ECR call: waits for the rate limiter (in the lane of the running task), times
    /// it, records the outcome, and classifies the error.
    async fn call<T, E, F, Fut>(&self, target: &Target, operation: &'static str, f: F) -> BackendResult<T>
    where
        F: FnOnce(Arc<Clients>) -> Fut,
        Fut: Future<
            Output = Result<T, aws_sdk_ecr::error::SdkError<E, aws_sdk_ecr::config::http::HttpResponse>>,
        >,
        E: aws_sdk_ecr::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let clients = self.clients(target).await?;
        self.admit(&clients).await;
        let start = Instant::now();
        let result = f(clients).await.map_err(|e| classify(operation, e));
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        };
        self.metrics.backend_call(operation, outcome, start.elapsed());
        if let Err(e) = &result {
            tracing::debug!(operation, error = %e, "ECR call failed");
        }
        result
    }
}

impl RegistryBackend for EcrBackend {
    async fn get_account_setting(&self, target: &Target, name: &str) -> BackendResult<String> {
        self.get_account_setting_impl(target, name).await
    }

    async fn put_account_setting(&self, target: &Target, name: &str, value: &str) -> BackendResult<()> {
        self.put_account_setting_impl(target, name, value).await
    }

    async fn list_pull_time_exclusions(&self, target: &Target) -> BackendResult<Vec<String>> {
        self.list_pull_time_exclusions_impl(target).await
    }

    async fn set_pull_time_exclusion(
        &self,
        target: &Target,
        principal_arn: &str,
        register: bool,
    ) -> BackendResult<()> {
        self.set_pull_time_exclusion_impl(target, principal_arn, register)
            .await
    }

    async fn get_signing(&self, target: &Target) -> BackendResult<Option<Vec<super::SigningRuleSettings>>> {
        self.get_signing_impl(target).await
    }

    async fn put_signing(&self, target: &Target, rules: &[super::SigningRuleSettings]) -> BackendResult<()> {
        self.put_signing_impl(target, rules).await
    }

    async fn describe_template(
        &self,
        target: &Target,
        prefix: &str,
    ) -> BackendResult<Option<super::RemoteTemplate>> {
        self.describe_template_impl(target, prefix).await
    }

    async fn create_template(
        &self,
        target: &Target,
        template: &super::TemplateSettings,
    ) -> BackendResult<super::RemoteTemplate> {
        self.create_template_impl(target, template).await
    }

    async fn update_template(
        &self,
        target: &Target,
        template: &super::TemplateSettings,
    ) -> BackendResult<()> {
        self.update_template_impl(target, template).await
    }

    async fn delete_template(&self, target: &Target, prefix: &str) -> BackendResult<bool> {
        self.delete_template_impl(target, prefix).await
    }

    async fn describe_cache_rule(
        &self,
        target: &Target,
        prefix: &str,
    ) -> BackendResult<Option<super::RemoteCacheRule>> {
        self.describe_cache_rule_impl(target, prefix).await
    }

    async fn create_cache_rule(
        &self,
        target: &Target,
        rule: &super::CacheRuleSettings,
    ) -> BackendResult<super::RemoteCacheRule> {
        self.create_cache_rule_impl(target, rule).await
    }

    async fn update_cache_rule(&self, target: &Target, rule: &super::CacheRuleSettings) -> BackendResult<()> {
        self.update_cache_rule_impl(target, rule).await
    }

    async fn delete_cache_rule(&self, target: &Target, prefix: &str) -> BackendResult<bool> {
        self.delete_cache_rule_impl(target, prefix).await
    }

    async fn validate_cache_rule(
        &self,
        target: &Target,
        prefix: &str,
    ) -> BackendResult<super::CacheRuleValidation> {
        self.validate_cache_rule_impl(target, prefix).await
    }

    async fn get_secret(&self, target: &Target, name: &str) -> BackendResult<Option<super::RemoteSecret>> {
        self.get_secret_impl(target, name).await
    }

    async fn create_secret(
        &self,
        target: &Target,
        name: &str,
        value: &secrecy::SecretString,
        tags: &BTreeMap<String, String>,
    ) -> BackendResult<String> {
        self.create_secret_impl(target, name, value, tags).await
    }

    async fn put_secret_value(
        &self,
        target: &Target,
        arn: &str,
        value: &secrecy::SecretString,
    ) -> BackendResult<()> {
        self.put_secret_value_impl(target, arn, value).await
    }

    async fn delete_secret(&self, target: &Target, arn: &str) -> BackendResult<bool> {
        self.delete_secret_impl(target, arn).await
    }

    async fn assume_role_with_web_identity(
        &self,
        region: &str,
        role_arn: &str,
        session_name: &str,
        token: &secrecy::SecretString,
    ) -> BackendResult<super::Session> {
        const OPERATION: &str = "AssumeRoleWithWebIdentity";
        // Unsigned (the token is the proof), so no credentials; the STS endpoint is the SDK's
        // (AWS_ENDPOINT_URL_STS overrides it). Rare: once per ServiceAccount and role per session.
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .no_credentials()
            .load()
            .await;
        let sts = aws_sdk_sts::Client::new(&config);
        let start = Instant::now();
        let result = sts
            .assume_role_with_web_identity()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .web_identity_token(token.expose_secret())
            .send()
            .await
            .map_err(|e| classify(OPERATION, e));
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        };
        self.metrics.backend_call(OPERATION, outcome, start.elapsed());
        let out = result?;
        let credentials = out
            .credentials()
            .ok_or_else(|| BackendError::Unavailable(format!("{OPERATION} returned no credentials")))?;
        Ok(super::Session {
            keys: super::StaticKeys {
                access_key_id: credentials.access_key_id().to_owned(),
                secret_access_key: secrecy::SecretString::from(credentials.secret_access_key().to_owned()),
                session_token: Some(secrecy::SecretString::from(
                    credentials.session_token().to_owned(),
                )),
            },
            expires_at: std::time::SystemTime::try_from(*credentials.expiration())
                .unwrap_or_else(|_| std::time::SystemTime::now()),
            assumed_role_arn: out.assumed_role_user().map(|u| u.arn().to_owned()),
        })
    }

    async fn describe_registry(&self, target: &Target) -> BackendResult<RegistryInfo> {
        let out = self
            .call(target, "DescribeRegistry", |c| async move {
                c.ecr.describe_registry().send().await
            })
            .await?;
        let registry_id = out
            .registry_id()
            .map(str::to_owned)
            .ok_or_else(|| BackendError::Unavailable("DescribeRegistry returned no registryId".into()))?;
        // The caller's ARN is informative only: a failure (no STS endpoint reachable) is not an error.
        let clients = self.clients(target).await?;
        self.admit(&clients).await;
        let identity = match clients.sts.get_caller_identity().send().await {
            Ok(out) => out.arn().map(str::to_owned),
            Err(e) => {
                tracing::debug!(error = %aws_sdk_sts::error::DisplayErrorContext(&e), "GetCallerIdentity failed");
                None
            }
        };
        Ok(RegistryInfo {
            registry_id,
            identity,
        })
    }

    async fn list_repositories(&self, target: &Target) -> BackendResult<Vec<RemoteRepository>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let next = token.clone();
            let page = self
                .call(target, "DescribeRepositories", |c| async move {
                    c.ecr
                        .describe_repositories()
                        .max_results(1000)
                        .set_next_token(next)
                        .send()
                        .await
                })
                .await?;
            for r in page.repositories() {
                out.push(convert::repository(r)?);
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    async fn describe_repository(
        &self,
        target: &Target,
        name: &str,
    ) -> BackendResult<Option<RemoteRepository>> {
        let name = name.to_owned();
        let result = self
            .call(target, "DescribeRepositories", |c| async move {
                c.ecr.describe_repositories().repository_names(name).send().await
            })
            .await;
        match result {
            Ok(out) => out.repositories().first().map(convert::repository).transpose(),
            Err(BackendError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_repository(
        &self,
        target: &Target,
        repo: &NewRepository,
    ) -> BackendResult<RemoteRepository> {
        let req = convert::create_request(repo)?;
        let out = self
            .call(target, "CreateRepository", |c| async move {
                c.ecr
                    .create_repository()
                    .repository_name(req.name)
                    .image_tag_mutability(req.mutability)
                    .set_image_tag_mutability_exclusion_filters(req.exclusion_filters)
                    .image_scanning_configuration(req.scanning)
                    .set_encryption_configuration(req.encryption)
                    .set_tags(Some(req.tags))
                    .send()
                    .await
            })
            .await?;
        let created = out
            .repository()
            .ok_or_else(|| BackendError::Unavailable("CreateRepository returned nothing".into()))?;
        convert::repository(created)
    }

    async fn list_tags(&self, target: &Target, arn: &str) -> BackendResult<BTreeMap<String, String>> {
        let arn = arn.to_owned();
        let out = self
            .call(target, "ListTagsForResource", |c| async move {
                c.ecr.list_tags_for_resource().resource_arn(arn).send().await
            })
            .await?;
        Ok(out
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }

    async fn get_repository_policy(&self, target: &Target, name: &str) -> BackendResult<Option<String>> {
        let name = name.to_owned();
        let result = self
            .call(target, "GetRepositoryPolicy", |c| async move {
                c.ecr.get_repository_policy().repository_name(name).send().await
            })
            .await;
        match result {
            Ok(out) => Ok(out.policy_text().map(str::to_owned)),
            Err(BackendError::NotFound(m)) if m.contains("Policy") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn apply_change(
        &self,
        target: &Target,
        repo: &RemoteRepository,
        change: &RepositoryChange,
    ) -> BackendResult<()> {
        let name = repo.name.clone();
        let arn = repo.arn.clone();
        let op = change.operation();
        match change.clone() {
            RepositoryChange::PutTagMutability {
                mutability,
                exclusion_filters,
            } => {
                let (m, filters) = convert::mutability(mutability, &exclusion_filters)?;
                self.call(target, op, |c| async move {
                    c.ecr
                        .put_image_tag_mutability()
                        .repository_name(name)
                        .image_tag_mutability(m)
                        .set_image_tag_mutability_exclusion_filters(filters)
                        .send()
                        .await
                })
                .await
                .map(drop)
            }
            RepositoryChange::PutScanOnPush(on) => self
                .call(target, op, |c| async move {
                    c.ecr
                        .put_image_scanning_configuration()
                        .repository_name(name)
                        .image_scanning_configuration(convert::scanning(on))
                        .send()
                        .await
                })
                .await
                .map(drop),
            RepositoryChange::TagResource(tags) => {
                let tags = convert::tags(&tags)?;
                self.call(target, op, |c| async move {
                    c.ecr
                        .tag_resource()
                        .resource_arn(arn)
                        .set_tags(Some(tags))
                        .send()
                        .await
                })
                .await
                .map(drop)
            }
            RepositoryChange::UntagResource(keys) => self
                .call(target, op, |c| async move {
                    c.ecr
                        .untag_resource()
                        .resource_arn(arn)
                        .set_tag_keys(Some(keys))
                        .send()
                        .await
                })
                .await
                .map(drop),
            RepositoryChange::SetPolicy(text) => self
                .call(target, op, |c| async move {
                    c.ecr
                        .set_repository_policy()
                        .repository_name(name)
                        .policy_text(text)
                        .send()
                        .await
                })
                .await
                .map(drop),
            RepositoryChange::DeletePolicy => {
                let result = self
                    .call(target, op, |c| async move {
                        c.ecr
                            .delete_repository_policy()
                            .repository_name(name)
                            .send()
                            .await
                    })
                    .await;
                match result {
                    Ok(_) => Ok(()),
                    Err(BackendError::NotFound(m)) if m.contains("Policy") => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn count_images(&self, target: &Target, name: &str) -> BackendResult<u64> {
        count_pages(|next| {
            let name = name.to_owned();
            async move {
                let page = self
                    .call(target, "ListImages", |c| async move {
                        c.ecr
                            .list_images()
                            .repository_name(name)
                            .max_results(1000)
                            .set_next_token(next)
                            .send()
                            .await
                    })
                    .await?;
                Ok((page.image_ids().len(), page.next_token().map(str::to_owned)))
            }
        })
        .await
    }

    async fn delete_repository(&self, target: &Target, name: &str, force: bool) -> BackendResult<bool> {
        let name = name.to_owned();
        let result = self
            .call(target, "DeleteRepository", |c| async move {
                c.ecr
                    .delete_repository()
                    .repository_name(name)
                    .force(force)
                    .send()
                    .await
            })
            .await;
        deleted(result)
    }

    async fn get_registry_scanning(&self, target: &Target) -> BackendResult<ScanningSettings> {
        let out = self
            .call(target, "GetRegistryScanningConfiguration", |c| async move {
                c.ecr.get_registry_scanning_configuration().send().await
            })
            .await?;
        Ok(out
            .scanning_configuration()
            .map(convert::scanning_settings)
            .unwrap_or_default())
    }

    async fn put_registry_scanning(&self, target: &Target, settings: &ScanningSettings) -> BackendResult<()> {
        let (scan_type, rules) = convert::scanning_request(settings)?;
        self.call(target, "PutRegistryScanningConfiguration", |c| async move {
            c.ecr
                .put_registry_scanning_configuration()
                .scan_type(scan_type)
                .set_rules(Some(rules))
                .send()
                .await
        })
        .await
        .map(drop)
    }

    async fn get_registry_policy(&self, target: &Target) -> BackendResult<Option<String>> {
        let result = self
            .call(target, "GetRegistryPolicy", |c| async move {
                c.ecr.get_registry_policy().send().await
            })
            .await;
        match result {
            Ok(out) => Ok(out.policy_text().map(str::to_owned)),
            Err(BackendError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put_registry_policy(&self, target: &Target, policy: &str) -> BackendResult<()> {
        let policy = policy.to_owned();
        self.call(target, "PutRegistryPolicy", |c| async move {
            c.ecr.put_registry_policy().policy_text(policy).send().await
        })
        .await
        .map(drop)
    }

    async fn authorization_token(&self, target: &Target) -> BackendResult<AuthToken> {
        let out = self
            .call(target, "GetAuthorizationToken", |c| async move {
                c.ecr.get_authorization_token().send().await
            })
            .await?;
        let data = out.authorization_data().first().ok_or_else(|| {
            BackendError::Unavailable("GetAuthorizationToken returned no authorization data".into())
        })?;
        let token = data
            .authorization_token()
            .ok_or_else(|| BackendError::Unavailable("GetAuthorizationToken returned no token".into()))?;
        Ok(AuthToken {
            token: secrecy::SecretString::from(token.to_owned()),
            expires_at: data
                .expires_at()
                .and_then(|t| std::time::SystemTime::try_from(*t).ok()),
            proxy_endpoint: data.proxy_endpoint().unwrap_or_default().to_owned(),
        })
    }

    async fn get_replication(&self, target: &Target) -> BackendResult<Vec<ReplicationRuleSettings>> {
        let out = self
            .call(target, "DescribeRegistry", |c| async move {
                c.ecr.describe_registry().send().await
            })
            .await?;
        Ok(out
            .replication_configuration()
            .map(convert::replication_rules)
            .unwrap_or_default())
    }

    async fn put_replication(&self, target: &Target, rules: &[ReplicationRuleSettings]) -> BackendResult<()> {
        let config = convert::replication_configuration(rules)?;
        self.call(target, "PutReplicationConfiguration", |c| async move {
            c.ecr
                .put_replication_configuration()
                .replication_configuration(config)
                .send()
                .await
        })
        .await
        .map(drop)
    }

    async fn get_lifecycle_policy(&self, target: &Target, repo: &str) -> BackendResult<Option<String>> {
        let repo = repo.to_owned();
        let result = self
            .call(target, "GetLifecyclePolicy", |c| async move {
                c.ecr.get_lifecycle_policy().repository_name(repo).send().await
            })
            .await;
        match result {
            Ok(out) => Ok(out.lifecycle_policy_text().map(str::to_owned)),
            Err(BackendError::NotFound(m)) if m.contains("LifecyclePolicyNotFound") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put_lifecycle_policy(&self, target: &Target, repo: &str, text: &str) -> BackendResult<()> {
        let (repo, text) = (repo.to_owned(), text.to_owned());
        self.call(target, "PutLifecyclePolicy", |c| async move {
            c.ecr
                .put_lifecycle_policy()
                .repository_name(repo)
                .lifecycle_policy_text(text)
                .send()
                .await
        })
        .await
        .map(drop)
    }

    async fn delete_lifecycle_policy(&self, target: &Target, repo: &str) -> BackendResult<bool> {
        let repo = repo.to_owned();
        let result = self
            .call(target, "DeleteLifecyclePolicy", |c| async move {
                c.ecr.delete_lifecycle_policy().repository_name(repo).send().await
            })
            .await;
        deleted(result)
    }

    async fn tag_image(&self, target: &Target, repo: &str, digest: &str, tag: &str) -> BackendResult<()> {
        self.tag_image_impl(target, repo, digest, tag).await
    }

    async fn untag_image(&self, target: &Target, repo: &str, tag: &str) -> BackendResult<bool> {
        self.untag_image_impl(target, repo, tag).await
    }

    async fn describe_images_page(
        &self,
        target: &Target,
        repo: &str,
        next_token: Option<String>,
        page_size: i32,
    ) -> BackendResult<(Vec<super::ImageInfo>, Option<String>)> {
        let repo = repo.to_owned();
        let page = self
            .call(target, "DescribeImages", |c| async move {
                c.ecr
                    .describe_images()
                    .repository_name(repo)
                    .max_results(page_size.clamp(1, 1000))
                    .set_next_token(next_token)
                    .send()
                    .await
            })
            .await?;
        let next = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        Ok((page.image_details().iter().map(convert::image).collect(), next))
    }

    async fn describe_images(&self, target: &Target, repo: &str) -> BackendResult<Vec<super::ImageInfo>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (repo, next) = (repo.to_owned(), token.clone());
            let page = self
                .call(target, "DescribeImages", |c| async move {
                    c.ecr
                        .describe_images()
                        .repository_name(repo)
                        .max_results(1000)
                        .set_next_token(next)
                        .send()
                        .await
                })
                .await?;
            out.extend(page.image_details().iter().map(convert::image));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }
}

/// A delete's outcome: whether there was something to delete (`NotFound` is `false`, not an
/// error, so a retried or repeated delete succeeds).
fn deleted<T>(result: BackendResult<T>) -> BackendResult<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(BackendError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Counts what a paginated listing holds: `page(next_token)` reads one page and says how many
/// items it has and the next token (none or empty: the last page).
pub(super) async fn count_pages<F, Fut>(mut page: F) -> BackendResult<u64>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = BackendResult<(usize, Option<String>)>>,
{
    let mut count = 0u64;
    let mut token: Option<String> = None;
    loop {
        let (items, next) = page(token.take()).await?;
        count += items as u64;
        match next {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(count),
        }
    }
}
