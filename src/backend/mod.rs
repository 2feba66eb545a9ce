//! What the controllers need from ECR, in domain terms. Knows nothing about Kubernetes;
//! `ecr/` is the only code that sees aws-sdk-ecr types.

pub mod ecr;
pub mod ecr_public;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod lanes;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::SystemTime;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Where a registry lives and how to reach it. Resolved from a `Registry` object.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// AWS region, e.g. `us-east-1`.
    pub region: String,
    /// ECR endpoint URL override.
    pub endpoint: Option<String>,
    /// Which identity to use.
    pub credentials: Credentials,
}

impl Target {
    /// A stable key identifying (region, endpoint, identity): one SDK client and one rate
    /// limiter per key. Static keys enter only as a hash.
    pub fn key(&self) -> String {
        let identity = match &self.credentials {
            Credentials::Default => "default".to_owned(),
            Credentials::AssumeRole {
                role_arn,
                external_id,
                session_name,
            } => format!(
                "role={role_arn};ext={};session={}",
                external_id.as_deref().unwrap_or_default(),
                session_name.as_deref().unwrap_or_default()
            ),
            Credentials::Static(keys) => format!("static={}", keys.fingerprint()),
            // The role, not the session: one ECR token per (region, endpoint, role), shared by
            // every namespace that assumed the role itself (see `client_key`).
            Credentials::WebIdentity { role_arn, .. } => format!("webidentity={role_arn}"),
        };
        format!(
            "{}|{}|{identity}",
            self.region,
            self.endpoint.as_deref().unwrap_or_default()
        )
    }

    /// The key of the SDK client that makes the calls: [`Target::key`], plus a hash of the
    /// session for a web identity, whose credentials change with every session.
    pub fn client_key(&self) -> String {
        match &self.credentials {
            Credentials::WebIdentity { session, .. } => {
                format!("{}|session={}", self.key(), session.fingerprint())
            }
            _ => self.key(),
        }
    }
}

/// How to authenticate to AWS.
#[derive(Clone, Debug, PartialEq)]
pub enum Credentials {
    /// The AWS SDK default chain (environment, IRSA, EKS Pod Identity, instance metadata).
    Default,
    /// Assume a role on top of the default chain.
    AssumeRole {
        role_arn: String,
        external_id: Option<String>,
        session_name: Option<String>,
    },
    /// Static keys read from a Secret.
    Static(StaticKeys),
    /// The session credentials of an IAM role assumed with a ServiceAccount's token (STS
    /// `AssumeRoleWithWebIdentity`, see [`RegistryBackend::assume_role_with_web_identity`]).
    WebIdentity { role_arn: String, session: StaticKeys },
}

/// Temporary credentials from STS. `Debug` never prints the secret parts.
#[derive(Clone, Debug)]
pub struct Session {
    pub keys: StaticKeys,
    pub expires_at: SystemTime,
    /// The assumed role's session ARN (`arn:aws:sts::<account>:assumed-role/<role>/<session>`).
    pub assumed_role_arn: Option<String>,
}

/// Static AWS keys. `Debug` never prints the secret parts.
#[derive(Clone)]
pub struct StaticKeys {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

impl StaticKeys {
    /// A short hash of the keys, for cache keys (never the keys themselves).
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.access_key_id.as_bytes());
        h.update([0]);
        h.update(self.secret_access_key.expose_secret().as_bytes());
        h.update([0]);
        if let Some(t) = &self.session_token {
            h.update(t.expose_secret().as_bytes());
        }
        h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

impl PartialEq for StaticKeys {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint() == other.fingerprint()
    }
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// What DescribeRegistry and GetCallerIdentity say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryInfo {
    pub registry_id: String,
    /// The caller's ARN, where it could be read.
    pub identity: Option<String>,
}

/// Tag mutability in domain terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    Mutable,
    Immutable,
    MutableWithExclusion,
    ImmutableWithExclusion,
}

/// Encryption of a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptionSettings {
    /// `AES256`, `KMS` or `KMS_DSSE`.
    pub encryption_type: String,
    pub kms_key: Option<String>,
}

/// A repository as ECR describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteRepository {
    pub name: String,
    pub arn: String,
    pub uri: String,
    pub registry_id: String,
    pub created_at: Option<SystemTime>,
    pub mutability: Mutability,
    pub exclusion_filters: Vec<String>,
    pub scan_on_push: bool,
    pub encryption: EncryptionSettings,
}

/// Everything CreateRepository sets in one call.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRepository {
    pub name: String,
    pub mutability: Mutability,
    pub exclusion_filters: Vec<String>,
    pub scan_on_push: bool,
    pub encryption: Option<EncryptionSettings>,
    pub tags: BTreeMap<String, String>,
}

/// One change to an existing repository.
#[derive(Clone, Debug, PartialEq)]
pub enum RepositoryChange {
    PutTagMutability {
        mutability: Mutability,
        exclusion_filters: Vec<String>,
    },
    PutScanOnPush(bool),
    TagResource(BTreeMap<String, String>),
    UntagResource(Vec<String>),
    /// The policy document as JSON text.
    SetPolicy(String),
    DeletePolicy,
}

impl RepositoryChange {
    /// The ECR operation this change calls.
    pub fn operation(&self) -> &'static str {
        match self {
            RepositoryChange::PutTagMutability { .. } => "PutImageTagMutability",
            RepositoryChange::PutScanOnPush(_) => "PutImageScanningConfiguration",
            RepositoryChange::TagResource(_) => "TagResource",
            RepositoryChange::UntagResource(_) => "UntagResource",
            RepositoryChange::SetPolicy(_) => "SetRepositoryPolicy",
            RepositoryChange::DeletePolicy => "DeleteRepositoryPolicy",
        }
    }
}

/// Registry-wide scanning configuration in domain terms.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ScanningSettings {
    /// `BASIC` or `ENHANCED`.
    pub scan_type: String,
    pub rules: Vec<ScanningRuleSettings>,
}

/// One registry scanning rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanningRuleSettings {
    /// `SCAN_ON_PUSH`, `CONTINUOUS_SCAN` or `MANUAL`.
    pub frequency: String,
    /// Wildcard filters, sorted.
    pub filters: Vec<String>,
}

/// One rule of a registry's replication configuration, in domain terms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplicationRuleSettings {
    /// (region, registryId) pairs.
    pub destinations: Vec<(String, String)>,
    /// Repository-name prefixes (PREFIX_MATCH); empty: every repository.
    pub filters: Vec<String>,
}

impl ReplicationRuleSettings {
    /// Order-insensitive form: destinations and filters sorted and de-duplicated.
    pub fn canonical(&self) -> Self {
        let mut c = self.clone();
        c.destinations.sort();
        c.destinations.dedup();
        c.filters.sort();
        c.filters.dedup();
        c
    }

    /// A short stable hash of the canonical form: how the operator recognises the rules it wrote.
    pub fn fingerprint(&self) -> String {
        let c = self.canonical();
        let mut h = Sha256::new();
        for (region, id) in &c.destinations {
            h.update(format!("d:{region}/{id};"));
        }
        for f in &c.filters {
            h.update(format!("f:{f};"));
        }
        h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// An image as DescribeImages reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageInfo {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: Option<SystemTime>,
    pub last_pulled_at: Option<SystemTime>,
    pub archived: bool,
    pub archived_at: Option<SystemTime>,
    pub last_activated_at: Option<SystemTime>,
    /// `imageSizeInBytes`.
    pub size_bytes: Option<u64>,
    /// `imageScanStatus` and `imageScanFindingsSummary`, when ECR reports a scan.
    pub scan: Option<ImageScan>,
}

/// What DescribeImages says of an image's scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageScan {
    /// `imageScanStatus.status`: `COMPLETE`, `IN_PROGRESS`, `FAILED`, `ACTIVE`, ...
    pub status: Option<String>,
    /// `imageScanFindingsSummary.imageScanCompletedAt`.
    pub completed_at: Option<SystemTime>,
    /// `imageScanFindingsSummary.findingSeverityCounts`.
    pub counts: BTreeMap<String, i64>,
}

/// An ECR authorization token (GetAuthorizationToken). `Debug` never prints the token.
#[derive(Clone)]
pub struct AuthToken {
    /// base64 of `AWS:<password>`, exactly as ECR returns it.
    pub token: SecretString,
    /// When ECR says it expires (`None` when it said nothing).
    pub expires_at: Option<SystemTime>,
    /// `https://<account>.dkr.ecr.<region>.amazonaws.com`.
    pub proxy_endpoint: String,
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthToken")
            .field("expires_at", &self.expires_at)
            .field("proxy_endpoint", &self.proxy_endpoint)
            .finish_non_exhaustive()
    }
}

/// One rule of a registry's signing configuration, in domain terms.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SigningRuleSettings {
    pub signing_profile_arn: String,
    /// Wildcard filters, sorted.
    pub filters: Vec<String>,
}

/// A repository creation template in domain terms: what the operator sets (`None`: not managed,
/// left as ECR holds it), and what ECR describes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TemplateSettings {
    pub prefix: String,
    /// ECR spelling (`PULL_THROUGH_CACHE`, ...), sorted.
    pub applied_for: Vec<String>,
    pub description: Option<String>,
    pub mutability: Option<Mutability>,
    /// Sorted.
    pub exclusion_filters: Vec<String>,
    pub encryption: Option<EncryptionSettings>,
    pub tags: BTreeMap<String, String>,
    pub custom_role_arn: Option<String>,
    /// JSON text.
    pub repository_policy: Option<String>,
    /// JSON text.
    pub lifecycle_policy: Option<String>,
}

/// A repository creation template as ECR describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteTemplate {
    pub settings: TemplateSettings,
    pub registry_id: String,
    pub created_at: Option<SystemTime>,
}

/// A pull-through cache rule as ECR should hold it (CreatePullThroughCacheRule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheRuleSettings {
    pub prefix: String,
    /// ECR's upstream registry kind (`docker-hub`, ...).
    pub upstream_registry: String,
    pub upstream_url: String,
    /// `None`: ECR's default (`ROOT`).
    pub upstream_prefix: Option<String>,
    pub credential_arn: Option<String>,
    pub custom_role_arn: Option<String>,
}

/// A pull-through cache rule as ECR describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteCacheRule {
    pub prefix: String,
    pub upstream_registry: Option<String>,
    pub upstream_url: String,
    pub upstream_prefix: Option<String>,
    pub credential_arn: Option<String>,
    pub custom_role_arn: Option<String>,
    pub registry_id: String,
    pub created_at: Option<SystemTime>,
}

/// What ValidatePullThroughCacheRule says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheRuleValidation {
    pub valid: bool,
    pub failure: Option<String>,
}

/// A Secrets Manager secret: its ARN, tags and current value. `Debug` never prints the value.
#[derive(Clone)]
pub struct RemoteSecret {
    pub arn: String,
    pub tags: BTreeMap<String, String>,
    /// The current `SecretString`; `None` when it has none.
    pub value: Option<SecretString>,
}

impl fmt::Debug for RemoteSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSecret")
            .field("arn", &self.arn)
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

/// An ECR call failure, classified at the SDK boundary.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackendError {
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("request rejected: {0}")]
    Rejected(String),
    #[error("service quota exceeded: {0}")]
    QuotaExceeded(String),
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("ECR unavailable: {0}")]
    Unavailable(String),
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("repository not empty: {0}")]
    NotEmpty(String),
}

impl BackendError {
    /// The condition/event/metric reason.
    pub fn reason(&self) -> &'static str {
        match self {
            BackendError::AccessDenied(_) => "AccessDenied",
            BackendError::Rejected(_) => "EcrRejected",
            BackendError::QuotaExceeded(_) => "QuotaExceeded",
            BackendError::Throttled(_) => "Throttled",
            BackendError::Unavailable(_) => "EcrUnavailable",
            BackendError::Credentials(_) => "CredentialsUnavailable",
            BackendError::NotFound(_) => "EcrNotFound",
            BackendError::AlreadyExists(_) => "EcrAlreadyExists",
            BackendError::NotEmpty(_) => "RepositoryNotEmpty",
        }
    }
}

pub type BackendResult<T> = Result<T, BackendError>;

/// The ECR capabilities the controllers use. Every method is one ECR operation (or one
/// paginated listing).
pub trait RegistryBackend: ecr_public::EcrPublicBackend + Send + Sync + 'static {
    /// DescribeRegistry, plus the caller's ARN (STS GetCallerIdentity) where available.
    fn describe_registry(&self, target: &Target) -> impl Future<Output = BackendResult<RegistryInfo>> + Send;

    /// Every repository of the registry (DescribeRepositories, up to 1,000 per page).
    fn list_repositories(
        &self,
        target: &Target,
    ) -> impl Future<Output = BackendResult<Vec<RemoteRepository>>> + Send;

    /// One repository, or `None` when it does not exist.
    fn describe_repository(
        &self,
        target: &Target,
        name: &str,
    ) -> impl Future<Output = BackendResult<Option<RemoteRepository>>> + Send;

    /// CreateRepository with every setting and tag.
    fn create_repository(
        &self,
        target: &Target,
        repo: &NewRepository,
    ) -> impl Future<Output = BackendResult<RemoteRepository>> + Send;

    /// ListTagsForResource.
    fn list_tags(
        &self,
        target: &Target,
        arn: &str,
    ) -> impl Future<Output = BackendResult<BTreeMap<String, String>>> + Send;

    /// GetRepositoryPolicy; `None` when the repository has no policy.
    fn get_repository_policy(
        &self,
        target: &Target,
        name: &str,
    ) -> impl Future<Output = BackendResult<Option<String>>> + Send;

    /// Applies one change to an existing repository.
    fn apply_change(
        &self,
        target: &Target,
        repo: &RemoteRepository,
        change: &RepositoryChange,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// How many images the repository holds (ListImages, all pages).
    fn count_images(&self, target: &Target, name: &str) -> impl Future<Output = BackendResult<u64>> + Send;

    /// DeleteRepository; `Ok(false)` when it was already gone.
    fn delete_repository(
        &self,
        target: &Target,
        name: &str,
        force: bool,
    ) -> impl Future<Output = BackendResult<bool>> + Send;

    /// GetRegistryScanningConfiguration.
    fn get_registry_scanning(
        &self,
        target: &Target,
    ) -> impl Future<Output = BackendResult<ScanningSettings>> + Send;

    /// PutRegistryScanningConfiguration.
    fn put_registry_scanning(
        &self,
        target: &Target,
        settings: &ScanningSettings,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// GetRegistryPolicy; `None` when there is none.
    fn get_registry_policy(
        &self,
        target: &Target,
    ) -> impl Future<Output = BackendResult<Option<String>>> + Send;

    /// PutRegistryPolicy.
    fn put_registry_policy(
        &self,
        target: &Target,
        policy: &str,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// The registry's replication configuration (DescribeRegistry).
    fn get_replication(
        &self,
        target: &Target,
    ) -> impl Future<Output = BackendResult<Vec<ReplicationRuleSettings>>> + Send;

    /// PutReplicationConfiguration: replaces the whole document.
    fn put_replication(
        &self,
        target: &Target,
        rules: &[ReplicationRuleSettings],
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// GetLifecyclePolicy; `None` when the repository has none.
    fn get_lifecycle_policy(
        &self,
        target: &Target,
        repo: &str,
    ) -> impl Future<Output = BackendResult<Option<String>>> + Send;

    /// PutLifecyclePolicy (replaces the whole policy).
    fn put_lifecycle_policy(
        &self,
        target: &Target,
        repo: &str,
        text: &str,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// DeleteLifecyclePolicy; `Ok(false)` when there was none.
    fn delete_lifecycle_policy(
        &self,
        target: &Target,
        repo: &str,
    ) -> impl Future<Output = BackendResult<bool>> + Send;

    /// Every image of a repository (DescribeImages, all pages).
    fn describe_images(
        &self,
        target: &Target,
        repo: &str,
    ) -> impl Future<Output = BackendResult<Vec<ImageInfo>>> + Send;

    /// Puts the manifest of image `digest` again under `tag` (BatchGetImage, then PutImage): an
    /// extra tag on an existing image. A tag that already names this image is success.
    fn tag_image(
        &self,
        target: &Target,
        repo: &str,
        digest: &str,
        tag: &str,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// Removes `tag` (BatchDeleteImage by tag; an image whose last tag it was is deleted with it).
    /// `Ok(false)` when no image had it.
    fn untag_image(
        &self,
        target: &Target,
        repo: &str,
        tag: &str,
    ) -> impl Future<Output = BackendResult<bool>> + Send;
    /// One page of DescribeImages (at most `page_size` images) from `next_token`, and the token
    /// of the page after it (`None`: this was the last).
    fn describe_images_page(
        &self,
        target: &Target,
        repo: &str,
        next_token: Option<String>,
        page_size: i32,
    ) -> impl Future<Output = BackendResult<(Vec<ImageInfo>, Option<String>)>> + Send;

    /// GetAccountSetting: the setting's current value.
    fn get_account_setting(
        &self,
        target: &Target,
        name: &str,
    ) -> impl Future<Output = BackendResult<String>> + Send;

    /// PutAccountSetting.
    fn put_account_setting(
        &self,
        target: &Target,
        name: &str,
        value: &str,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// ListPullTimeUpdateExclusions (all pages), sorted.
    fn list_pull_time_exclusions(
        &self,
        target: &Target,
    ) -> impl Future<Output = BackendResult<Vec<String>>> + Send;

    /// RegisterPullTimeUpdateExclusion (`register`) or DeregisterPullTimeUpdateExclusion.
    fn set_pull_time_exclusion(
        &self,
        target: &Target,
        principal_arn: &str,
        register: bool,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// GetSigningConfiguration; `None` when the registry has none. Rules as ECR holds them.
    fn get_signing(
        &self,
        target: &Target,
    ) -> impl Future<Output = BackendResult<Option<Vec<SigningRuleSettings>>>> + Send;

    /// PutSigningConfiguration: replaces the whole configuration.
    fn put_signing(
        &self,
        target: &Target,
        rules: &[SigningRuleSettings],
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// DescribeRepositoryCreationTemplates for one prefix; `None` when there is none.
    fn describe_template(
        &self,
        target: &Target,
        prefix: &str,
    ) -> impl Future<Output = BackendResult<Option<RemoteTemplate>>> + Send;

    /// CreateRepositoryCreationTemplate with every setting that is set.
    fn create_template(
        &self,
        target: &Target,
        template: &TemplateSettings,
    ) -> impl Future<Output = BackendResult<RemoteTemplate>> + Send;

    /// UpdateRepositoryCreationTemplate with every setting that is set.
    fn update_template(
        &self,
        target: &Target,
        template: &TemplateSettings,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// DeleteRepositoryCreationTemplate; `Ok(false)` when it was already gone.
    fn delete_template(
        &self,
        target: &Target,
        prefix: &str,
    ) -> impl Future<Output = BackendResult<bool>> + Send;

    /// DescribePullThroughCacheRules for one prefix; `None` when there is no such rule.
    fn describe_cache_rule(
        &self,
        target: &Target,
        prefix: &str,
    ) -> impl Future<Output = BackendResult<Option<RemoteCacheRule>>> + Send;

    /// CreatePullThroughCacheRule.
    fn create_cache_rule(
        &self,
        target: &Target,
        rule: &CacheRuleSettings,
    ) -> impl Future<Output = BackendResult<RemoteCacheRule>> + Send;

    /// UpdatePullThroughCacheRule: the credentials and the custom role (nothing else can change).
    fn update_cache_rule(
        &self,
        target: &Target,
        rule: &CacheRuleSettings,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// DeletePullThroughCacheRule; `Ok(false)` when it was already gone.
    fn delete_cache_rule(
        &self,
        target: &Target,
        prefix: &str,
    ) -> impl Future<Output = BackendResult<bool>> + Send;

    /// ValidatePullThroughCacheRule: whether ECR can reach the upstream with the rule's credentials.
    fn validate_cache_rule(
        &self,
        target: &Target,
        prefix: &str,
    ) -> impl Future<Output = BackendResult<CacheRuleValidation>> + Send;

    /// Secrets Manager DescribeSecret and GetSecretValue in the target's region; `None` when no
    /// secret has that name (or it is scheduled for deletion).
    fn get_secret(
        &self,
        target: &Target,
        name: &str,
    ) -> impl Future<Output = BackendResult<Option<RemoteSecret>>> + Send;

    /// Secrets Manager CreateSecret with a value and tags; returns its ARN.
    fn create_secret(
        &self,
        target: &Target,
        name: &str,
        value: &SecretString,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = BackendResult<String>> + Send;

    /// Secrets Manager PutSecretValue: a new current version.
    fn put_secret_value(
        &self,
        target: &Target,
        arn: &str,
        value: &SecretString,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// Secrets Manager DeleteSecret without a recovery window (a secret of the same name can be
    /// created again at once); `Ok(false)` when it was already gone.
    fn delete_secret(&self, target: &Target, arn: &str) -> impl Future<Output = BackendResult<bool>> + Send;

    /// GetAuthorizationToken: a registry login valid for any registry the identity may reach
    /// in the target's region.
    fn authorization_token(&self, target: &Target) -> impl Future<Output = BackendResult<AuthToken>> + Send;

    /// STS AssumeRoleWithWebIdentity in `region`: `role_arn`'s session credentials for the
    /// holder of `token` (a ServiceAccount token with audience `sts.amazonaws.com`). Unsigned:
    /// the token is the proof, checked by STS against the role's trust policy.
    fn assume_role_with_web_identity(
        &self,
        region: &str,
        role_arn: &str,
        session_name: &str,
        token: &SecretString,
    ) -> impl Future<Output = BackendResult<Session>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_keys_never_print_and_only_enter_keys_as_a_hash() {
        let keys = StaticKeys {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG"),
            session_token: Some(SecretString::from("session-token-value")),
        };
        let target = Target {
            region: "us-east-1".into(),
            endpoint: None,
            credentials: Credentials::Static(keys.clone()),
        };
        for text in [format!("{keys:?}"), format!("{target:?}"), target.key()] {
            assert!(!text.contains("wJalrXUtnFEMI"), "{text}");
            assert!(!text.contains("session-token-value"), "{text}");
        }
        assert_eq!(target.key(), target.clone().key(), "stable");
    }
}
