//! `PullThroughCacheRule`: one ECR pull-through cache rule of a registry, and optionally the
//! Secrets Manager secret holding its upstream credentials, copied from a Kubernetes Secret.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::common::RegistryRef;
use crate::api::interval::Interval;

/// The prefix every Secrets Manager secret of a pull-through cache rule must carry (ECR refuses
/// others).
pub const CREDENTIAL_SECRET_PREFIX: &str = "ecr-pullthroughcache/";

/// Repository prefixes ECR keeps for itself; refused at admission.
pub const RESERVED_PREFIXES: [&str; 2] = ["aws", "ecr"];

/// A pull-through cache rule: images pulled from `<registry>/<ecrRepositoryPrefix>/...` are
/// fetched from the upstream registry and cached in ECR. ECR cannot change a rule's prefix or
/// upstream: those fields are immutable; the credentials and the custom role can change.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ecr-operator.dev",
    version = "v1alpha1",
    doc = "One ECR pull-through cache rule, and optionally its upstream credentials copied from a Kubernetes Secret into Secrets Manager.",
    kind = "PullThroughCacheRule",
    status = "PullThroughCacheRuleStatus",
    derive = "PartialEq",
    shortname = "ecrptc",
    category = "ecr",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[0].message"
    ),
    printcolumn(name = "Prefix", type_ = "string", json_path = ".spec.ecrRepositoryPrefix"),
    printcolumn(name = "Upstream", type_ = "string", json_path = ".spec.upstreamRegistryUrl"),
    printcolumn(name = "Valid", type_ = "string", json_path = ".status.upstreamValid"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("(self.upstreamRegistry == 'ecr-public' && self.upstreamRegistryUrl == 'public.ecr.aws') || (self.upstreamRegistry == 'k8s' && self.upstreamRegistryUrl == 'registry.k8s.io') || (self.upstreamRegistry == 'quay' && self.upstreamRegistryUrl == 'quay.io') || (self.upstreamRegistry == 'docker-hub' && self.upstreamRegistryUrl == 'registry-1.docker.io') || (self.upstreamRegistry == 'github-container-registry' && self.upstreamRegistryUrl == 'ghcr.io') || (self.upstreamRegistry == 'gitlab-container-registry' && self.upstreamRegistryUrl == 'registry.gitlab.com') || (self.upstreamRegistry == 'chainguard' && self.upstreamRegistryUrl == 'cgr.dev') || (self.upstreamRegistry == 'azure-container-registry' && self.upstreamRegistryUrl.matches('^[a-zA-Z0-9-]+\\\\.azurecr\\\\.io$')) || (self.upstreamRegistry == 'ecr' && self.upstreamRegistryUrl.matches('^[0-9]{12}\\\\.dkr\\\\.ecr(-fips)?\\\\.[a-z0-9-]+\\\\.amazonaws\\\\.com(\\\\.cn)?$'))")
    .message("upstreamRegistryUrl does not match upstreamRegistry: ecr-public is public.ecr.aws, k8s registry.k8s.io, quay quay.io, docker-hub registry-1.docker.io, github-container-registry ghcr.io, gitlab-container-registry registry.gitlab.com, chainguard cgr.dev, azure-container-registry <name>.azurecr.io, ecr <account>.dkr.ecr.<region>.amazonaws.com"))]
#[x_kube(validation = Rule::new("!(has(self.credentialArn) && has(self.credentialsSecretRef))")
    .message("set at most one of credentialArn and credentialsSecretRef"))]
#[x_kube(validation = Rule::new("!(self.upstreamRegistry in ['docker-hub', 'github-container-registry', 'gitlab-container-registry', 'azure-container-registry', 'chainguard']) || has(self.credentialArn) || has(self.credentialsSecretRef)")
    .message("this upstream registry requires authentication: set credentialArn or credentialsSecretRef"))]
#[x_kube(validation = Rule::new("self.upstreamRegistry != 'ecr' || (!has(self.credentialArn) && !has(self.credentialsSecretRef))")
    .message("an ecr upstream authenticates with customRoleArn, not with credentialArn or credentialsSecretRef"))]
#[x_kube(validation = Rule::new("!has(self.customRoleArn) || self.upstreamRegistry == 'ecr'")
    .message("customRoleArn is only used with upstreamRegistry ecr"))]
#[x_kube(validation = Rule::new("!has(self.upstreamRepositoryPrefix) || (self.upstreamRegistry == 'ecr' && self.ecrRepositoryPrefix != 'ROOT')")
    .message("upstreamRepositoryPrefix needs upstreamRegistry ecr and an ecrRepositoryPrefix other than ROOT"))]
#[x_kube(validation = Rule::new("has(self.upstreamRepositoryPrefix) == has(oldSelf.upstreamRepositoryPrefix)")
    .message("upstreamRepositoryPrefix cannot be added or removed (ECR cannot change it): create another PullThroughCacheRule and delete this one"))]
#[serde(rename_all = "camelCase")]
pub struct PullThroughCacheRuleSpec {
    /// The `Registry` whose ECR registry holds the rule. Defaults to `default`. Immutable.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("registryRef is immutable: create another PullThroughCacheRule for another Registry and delete this one"))]
    pub registry_ref: RegistryRef,

    /// The ECR repository-name prefix images are cached under (ECR adds a trailing `/`), e.g.
    /// `docker-hub`, or `ROOT` for every repository without another rule. 2 to 30 characters;
    /// `aws` and `ecr` are reserved. Immutable: ECR cannot change it.
    #[schemars(
        length(min = 2, max = 30),
        regex(pattern = r"^((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?|ROOT)$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("ecrRepositoryPrefix is immutable (ECR cannot change it): create another PullThroughCacheRule and delete this one"))]
    #[x_kube(validation = Rule::new("!(self.replace('/', '') in ['aws', 'ecr'])")
        .message("ecrRepositoryPrefix aws and ecr are reserved by ECR: choose another prefix"))]
    pub ecr_repository_prefix: String,

    /// Which kind of registry the upstream is, in ECR's spelling. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("upstreamRegistry is immutable (ECR cannot change it): create another PullThroughCacheRule and delete this one"))]
    pub upstream_registry: UpstreamRegistry,

    /// The upstream registry's host, as ECR names it for `upstreamRegistry`: `public.ecr.aws`,
    /// `registry.k8s.io`, `quay.io`, `registry-1.docker.io`, `ghcr.io`, `registry.gitlab.com`,
    /// `cgr.dev`, `<name>.azurecr.io` or `<account>.dkr.ecr.<region>.amazonaws.com`. Immutable.
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("upstreamRegistryUrl is immutable (ECR cannot change it): create another PullThroughCacheRule and delete this one"))]
    pub upstream_registry_url: String,

    /// For an `ecr` upstream: the upstream repository prefix the ECR prefix maps to. Defaults to
    /// `ROOT` (any upstream repository). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 30),
        regex(pattern = r"^((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?|ROOT)$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("upstreamRepositoryPrefix is immutable (ECR cannot change it): create another PullThroughCacheRule and delete this one"))]
    pub upstream_repository_prefix: Option<String>,

    /// The ARN of an existing Secrets Manager secret with the upstream credentials (JSON with
    /// `username` and `accessToken`); its name must start with `ecr-pullthroughcache/`. The
    /// operator never writes or deletes it. At most one of this and `credentialsSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 50, max = 612))]
    #[x_kube(validation = Rule::new("self.matches('^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:ecr-pullthroughcache/[a-zA-Z0-9/_+=.@-]+$')")
        .message("credentialArn must be the ARN of a Secrets Manager secret whose name starts with ecr-pullthroughcache/"))]
    pub credential_arn: Option<String>,

    /// A Kubernetes Secret with the upstream credentials (keys `username` and `accessToken`):
    /// the operator copies it into a Secrets Manager secret under `ecr-pullthroughcache/`, keeps
    /// that secret equal to it, and deletes the secret with the rule when the operator created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,

    /// For an `ecr` upstream: the IAM role ECR assumes to pull from it (cross-account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 20, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$')")
        .message("customRoleArn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)"))]
    pub custom_role_arn: Option<String>,

    /// How often to re-check the rule, its validation and the credentials secret for drift,
    /// between 10s and 24h, such as `10m`. Defaults to the operator's `--default-interval` (10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,

    /// Pause: while `true` nothing is called, and the rule stays as last applied. Defaults to
    /// `false`.
    #[serde(default)]
    pub suspend: bool,
}

/// The kind of an upstream registry, in ECR's spelling.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpstreamRegistry {
    /// Amazon ECR Public (`public.ecr.aws`).
    #[serde(rename = "ecr-public")]
    EcrPublic,
    /// The Kubernetes registry (`registry.k8s.io`).
    #[serde(rename = "k8s")]
    K8s,
    /// Quay (`quay.io`).
    #[serde(rename = "quay")]
    Quay,
    /// Docker Hub (`registry-1.docker.io`); requires credentials.
    #[serde(rename = "docker-hub")]
    DockerHub,
    /// GitHub Container Registry (`ghcr.io`); requires credentials.
    #[serde(rename = "github-container-registry")]
    GithubContainerRegistry,
    /// GitLab Container Registry (`registry.gitlab.com`); requires credentials.
    #[serde(rename = "gitlab-container-registry")]
    GitlabContainerRegistry,
    /// Azure Container Registry (`<name>.azurecr.io`); requires credentials.
    #[serde(rename = "azure-container-registry")]
    AzureContainerRegistry,
    /// Chainguard (`cgr.dev`); requires credentials.
    #[serde(rename = "chainguard")]
    Chainguard,
    /// A private Amazon ECR registry, in another account or region.
    #[serde(rename = "ecr")]
    Ecr,
}

impl UpstreamRegistry {
    /// ECR's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamRegistry::EcrPublic => "ecr-public",
            UpstreamRegistry::K8s => "k8s",
            UpstreamRegistry::Quay => "quay",
            UpstreamRegistry::DockerHub => "docker-hub",
            UpstreamRegistry::GithubContainerRegistry => "github-container-registry",
            UpstreamRegistry::GitlabContainerRegistry => "gitlab-container-registry",
            UpstreamRegistry::AzureContainerRegistry => "azure-container-registry",
            UpstreamRegistry::Chainguard => "chainguard",
            UpstreamRegistry::Ecr => "ecr",
        }
    }
}

/// A Kubernetes Secret holding upstream registry credentials.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of the Secret (keys `username` and `accessToken`).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Secret. The chart lets the operator read Secrets only in its own
    /// namespace and those listed in `rbac.credentialSecretNamespaces`.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Name of the Secrets Manager secret, after `ecr-pullthroughcache/`. Defaults to the
    /// PullThroughCacheRule's name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 400), regex(pattern = r"^[a-zA-Z0-9/_+=.@-]+$"))]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("credentialsSecretRef.secretName is immutable: the operator would leave the old secret behind"))]
    pub secret_name: Option<String>,
}

/// Observed state of a `PullThroughCacheRule`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PullThroughCacheRuleStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, and `Reconciling` / `Stalled` while true (kstatus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// When ECR created the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,

    /// Account ID of the registry holding the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,

    /// `true` when this object created the rule in ECR (deleting the object deletes the rule);
    /// `false` when it found the rule there (deleting the object leaves it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,

    /// Whether ECR validates the rule's upstream access (ValidatePullThroughCacheRule), as of the
    /// last check: `"True"`, or `"False"` with `upstreamFailure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_valid: Option<String>,

    /// Why ECR does not validate the upstream access, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_failure: Option<String>,

    /// ARN of the Secrets Manager secret the rule uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_arn: Option<String>,

    /// `true` when the operator created that secret from `credentialsSecretRef` (deleting the
    /// object deletes it); `false` when the secret existed before (it is kept in sync, never
    /// deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_created: Option<bool>,

    /// Value of the `ecr-operator.dev/reconcile-requested-at` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}
