//! `Registry`: the connection to one Amazon ECR private registry and its registry-wide settings.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::interval::Interval;

use crate::api::common::PolicyDocument;

/// An Amazon ECR private registry (one account in one region), how to reach it, and the
/// registry-wide settings ecr-operator keeps in sync. Repositories, lifecycle policies,
/// replication rules and pull secrets refer to a Registry by name; objects that name none use
/// the Registry called `default`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ecr-operator.dev",
    version = "v1alpha1",
    doc = "An Amazon ECR private registry (account + region + identity) and its registry-wide settings.",
    kind = "Registry",
    plural = "registries",
    status = "RegistryStatus",
    derive = "PartialEq",
    shortname = "ecrreg",
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
    printcolumn(name = "Host", type_ = "string", json_path = ".status.registryHost"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySpec {
    /// AWS region of the registry, e.g. `eu-west-1`: two lowercase letters, one or more lowercase
    /// words and a number, separated by dashes. Required. Immutable: a Registry is one
    /// registry, and its Repositories would silently be created again in another region; create
    /// another Registry for another region.
    #[schemars(transform = crate::api::common::region_rules)]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("region is immutable: a Registry is one registry; create another Registry for another region"))]
    pub region: String,

    /// 12-digit AWS account ID of the registry. Optional: when unset it is discovered with
    /// DescribeRegistry for the identity in use and shown in `status.registryId`. When set, the
    /// operator refuses to work if the identity reaches a different account. When unset and an
    /// edit of `endpoint` or `auth` reaches another account than the one in `status.registryId`,
    /// the Registry is `Stalled` (`AccountMismatch`) and the objects that use it wait, instead of
    /// silently moving to that account: restore the edit, or set this field to the new account to
    /// move on purpose (their ECR objects are then created there; those in the old account stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub account_id: Option<String>,

    /// Override of the ECR API endpoint URL, for VPC interface endpoints, FIPS endpoints or a
    /// local test endpoint, e.g. `https://vpce-0abc.api.ecr.eu-west-1.vpce.amazonaws.com`.
    /// Defaults to the regional AWS endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''")
        .message("endpoint must be an absolute http(s) URL, e.g. https://api.ecr.eu-west-1.amazonaws.com"))]
    pub endpoint: Option<String>,

    /// How the operator authenticates to AWS for this registry. Defaults to the AWS SDK default
    /// credential chain of the operator Pod (environment, IRSA web identity, EKS Pod Identity,
    /// instance metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RegistryAuth>,

    /// Registry-wide image scanning configuration. When set, the operator owns the registry's
    /// scanning configuration and reverts drift; when unset, it is left as it is in ECR. When an
    /// older Registry reaching the same registry (account, region) sets it too, that one owns it
    /// and this one writes nothing of it (condition `SettingsConflict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanning: Option<ScanningConfiguration>,

    /// The registry permissions policy, as a YAML object. When set, the operator owns the
    /// registry policy (compared semantically) and reverts drift; when unset, it is left alone.
    /// When an older Registry reaching the same registry (account, region) sets it too, that one
    /// owns it and this one writes nothing of it (condition `SettingsConflict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyDocument>,

    /// The registry's account settings (PutAccountSetting). Each setting that is set is owned
    /// (drift reverted); one that is unset is left as it is in ECR. Owned, like `scanning`, by the
    /// oldest Registry of the registry that sets any of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_settings: Option<AccountSettings>,

    /// IAM principals (role or user ARNs) whose pulls do not update an image's last-pull time,
    /// so that scanners and other automation do not keep images alive for `sinceImagePulled`
    /// lifecycle rules. At most 20, each once. When set, the list is authoritative: ECR's
    /// exclusions are made equal to it (an empty list removes them all); when unset, ECR's are
    /// left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20), inner(length(min = 20, max = 256)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[x_kube(validation = Rule::new("self.all(p, p.matches('^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$'))")
        .message("pullTimeUpdateExclusions must be IAM role or user ARNs (arn:aws:iam::<account>:role/<name>)"))]
    pub pull_time_update_exclusions: Option<Vec<String>>,

    /// The registry's managed signing configuration (PutSigningConfiguration): which AWS Signer
    /// profile signs the images pushed to which repositories. When set, owned and kept in sync;
    /// when unset, left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<SigningConfiguration>,

    /// Which namespaces may place Repositories, LifecyclePolicies and PullSecrets on this
    /// registry. A label selector over namespaces; unset allows every namespace. Objects in other
    /// namespaces report `Stalled` with reason `NotAllowed`. `matchExpressions` may use the
    /// operators `In`, `NotIn` (each with at least one value), `Exists` and `DoesNotExist`
    /// (without values), checked at admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = crate::api::selector::admission_rules)]
    pub allowed_namespaces: Option<LabelSelector>,

    /// Tenants must bring their own identity: a PullSecret using this Registry without
    /// `spec.identity` (its namespace's ServiceAccount and IAM role) gets no Secret and reports
    /// `Stalled` with reason `TenantIdentityRequired`, so no namespace pulls with the operator's
    /// (or this Registry's) identity. Repositories and the other kinds are not affected. Defaults
    /// to `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_tenant_identity: bool,

    /// Rules for the ECR names of Repositories on this registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_name_policy: Option<RepositoryNamePolicy>,

    /// How this registry's single replication configuration is shared with rules created outside
    /// the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<RegistryReplication>,

    /// Storage prices for the estimated monthly cost in its Repositories' `status.insight`
    /// (docs/insight.md). Defaults to the region's published prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<super::StoragePricing>,

    /// How often to re-check ECR for drift, between 10s and 24h, such as `10m` or `1h30m`.
    /// Defaults to the operator's `--default-interval` (10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,

    /// Pause reconciliation: while `true` the operator makes no ECR calls for this registry's own
    /// settings. Defaults to `false`.
    #[serde(default)]
    pub suspend: bool,
}

/// Credentials for a registry. Set at most one of `assumeRole`, `secretRef` and `webIdentity`;
/// with none the AWS SDK default credential chain is used.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.assumeRole), has(self.secretRef), has(self.webIdentity)].filter(x, x).size() <= 1")
    .message("auth: set at most one of assumeRole, secretRef and webIdentity"))]
pub struct RegistryAuth {
    /// Assume this IAM role on top of the default credential chain (cross-account access).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role: Option<AssumeRole>,

    /// Static access keys from a Secret with the keys `accessKeyId`, `secretAccessKey` and
    /// optionally `sessionToken`. Discouraged: use it only for clusters outside AWS. The Secret is
    /// read on every reconcile of the Registry, and the keys read are shared by the objects that
    /// use it for at most 60 seconds: rotated keys are used by every reconcile that starts 60
    /// seconds or more after the Secret changed, or right after a reconcile of the Registry
    /// (request one with the `ecr-operator.dev/reconcile-requested-at` annotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,

    /// Serve this Registry as the IAM role of a ServiceAccount: the operator requests a
    /// short-lived token for it (audience `sts.amazonaws.com`) and exchanges it with STS
    /// `AssumeRoleWithWebIdentity`, so the Registry is reached with a role other than the
    /// operator's own, without chaining an assume-role from it. The role's trust policy must
    /// allow `system:serviceaccount:<namespace>:<name>` (docs/security.md). The session is
    /// renewed before it expires; a changed role annotation is used from the Registry's next
    /// reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_identity: Option<RegistryWebIdentity>,
}

/// A ServiceAccount whose IAM role is a Registry's identity.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegistryWebIdentity {
    /// The ServiceAccount (in any namespace: a Registry is cluster-scoped). One that does not
    /// exist makes the Registry `Stalled` (`IdentityNotFound`).
    pub service_account: ServiceAccountReference,

    /// ARN of the IAM role to assume. Defaults to the ServiceAccount's
    /// `eks.amazonaws.com/role-arn` annotation; with neither, the Registry is `Stalled`
    /// (`InvalidIdentity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$"))]
    pub role_arn: Option<String>,
}

/// A reference to a ServiceAccount in a given namespace.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountReference {
    /// Name of the ServiceAccount.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// Namespace of the ServiceAccount.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: String,
}

/// An IAM role to assume.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AssumeRole {
    /// ARN of the role, e.g. `arn:aws:iam::111122223333:role/ecr-operator`.
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$"))]
    pub role_arn: String,

    /// External ID the role's trust policy requires, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224), regex(pattern = r"^[\w+=,.@:/-]*$"))]
    pub external_id: Option<String>,

    /// Session name shown in CloudTrail. Defaults to `ecr-operator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 64), regex(pattern = r"^[\w+=,.@-]*$"))]
    pub session_name: Option<String>,
}

/// A reference to a Secret in a given namespace.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Secret.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
}

/// Registry-wide scanning configuration (ECR PutRegistryScanningConfiguration).
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.scanType == 'Enhanced' || !has(self.rules) || self.rules.all(r, r.scanFrequency != 'ContinuousScan')")
    .message("scanning: scanFrequency ContinuousScan requires scanType Enhanced"))]
pub struct ScanningConfiguration {
    /// `Basic` (ECR's own scanner) or `Enhanced` (Amazon Inspector). Defaults to `Basic`.
    #[serde(default)]
    pub scan_type: ScanType,

    /// Up to 2 rules saying which repositories are scanned how often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2))]
    pub rules: Option<Vec<ScanningRule>>,
}

/// ECR scan type. Kubernetes PascalCase spelling of ECR's `BASIC` / `ENHANCED`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScanType {
    #[default]
    Basic,
    Enhanced,
}

/// One registry scanning rule.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScanningRule {
    /// How often matching repositories are scanned.
    pub scan_frequency: ScanFrequency,

    /// Repository name filters: `*` matches any characters; a filter without `*` matches names
    /// containing it. 1 to 100 filters.
    #[schemars(
        length(min = 1, max = 100),
        inner(
            length(min = 1, max = 255),
            regex(pattern = r"^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$")
        )
    )]
    pub repository_filters: Vec<String>,
}

/// Scan frequency. Kubernetes PascalCase spelling of ECR's `SCAN_ON_PUSH` / `CONTINUOUS_SCAN` / `MANUAL`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanFrequency {
    ScanOnPush,
    ContinuousScan,
    Manual,
}

/// Naming rules for Repositories on a registry.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryNamePolicy {
    /// When `true`, a Repository in namespace `team-a` must have an ECR name starting with
    /// `team-a/`; others report `Stalled` with reason `NotAllowed`. Defaults to `false`.
    #[serde(default)]
    pub require_namespace_prefix: bool,
}

/// Replication settings of a registry.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegistryReplication {
    /// When `true`, replication rules in ECR that no ReplicationRule object produced are removed.
    /// Defaults to `false`: such rules are kept after the operator's own.
    #[serde(default)]
    pub exclusive: bool,
}

/// Account settings of a registry, in ECR's spelling. Each is owned only when set.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccountSettings {
    /// `BASIC_SCAN_TYPE_VERSION`: `AWS_NATIVE` or `CLAIR` (basic scanning's engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(AWS_NATIVE|CLAIR)$"))]
    pub basic_scan_type_version: Option<String>,
    /// `REGISTRY_POLICY_SCOPE`: `V1` (only `ecr:ReplicateImage`, `ecr:BatchImportUpstreamImage`
    /// and `ecr:CreateRepository` in registry policies) or `V2` (every ECR action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(V1|V2)$"))]
    pub registry_policy_scope: Option<String>,
    /// `BLOB_MOUNTING`: `ENABLED` or `DISABLED` (layers mounted across repositories on push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(ENABLED|DISABLED)$"))]
    pub blob_mounting: Option<String>,
}

/// A registry's managed signing configuration.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SigningConfiguration {
    /// 1 to 10 rules.
    #[schemars(length(min = 1, max = 10))]
    pub rules: Vec<SigningRule>,
}

/// One signing rule: a Signer profile and the repositories whose pushed images it signs.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SigningRule {
    /// The AWS Signer signing profile ARN, `arn:aws:signer:<region>:<account>:/signing-profiles/<name>`.
    #[schemars(length(min = 20, max = 256))]
    #[x_kube(validation = Rule::new("self.matches('^arn:aws[a-z-]*:signer:[a-z0-9-]+:[0-9]{12}:/signing-profiles/[A-Za-z0-9_.-]+$')")
        .message("signingProfileArn must be an AWS Signer signing profile ARN (arn:aws:signer:<region>:<account>:/signing-profiles/<name>)"))]
    pub signing_profile_arn: String,
    /// Wildcard repository-name filters (`*` matches any characters), at most 100; none: every
    /// repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 256)))]
    pub repository_filters: Vec<String>,
}

/// Observed state of a `Registry`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistryStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, and `Reconciling` / `Stalled` while true (kstatus); `SettingsConflict` while an
    /// older Registry of the same registry owns registry-wide settings this one sets, and `InUse`
    /// while its deletion waits for the objects that use it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The 12-digit account ID of the registry, as reported by ECR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,

    /// Host name images are pulled from: `<account>.dkr.ecr.<region>.amazonaws.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_host: Option<String>,

    /// The AWS identity (ARN) the operator uses for this registry. Never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,

    /// Value of the `ecr-operator.dev/reconcile-requested-at` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// How often the operator re-checks objects on this Registry that use the default interval
    /// (`--default-interval`), as of the Registry's last reconcile, e.g. `10m`. Longer than the
    /// default when the Repositories' drift checks would need more ECR calls per second than
    /// the background share of the rate limit (`--ecr-rate-limit` × `--ecr-background-share`):
    /// the interval then stretches so that every object is still checked, evenly spread.
    /// Objects with their own `spec.interval` stretch by the same factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_check_interval: Option<String>,

    /// The replication rules ecr-operator wrote into this registry's replication configuration
    /// (so that a deleted ReplicationRule is removed from ECR and a rule written by someone else
    /// never is). Written by the replication controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<RegistryReplicationStatus>,
}

/// Replication rules of a registry.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistryReplicationStatus {
    /// Rules written by ecr-operator, in document order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<AppliedReplicationRule>,
    /// How many rules in ECR were not written by ecr-operator (kept unless `replication.exclusive`).
    #[serde(default)]
    pub foreign_rules: i32,
}

/// One rule ecr-operator wrote.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedReplicationRule {
    /// Name of the ReplicationRule object.
    pub name: String,
    /// Hash of the rule's canonical content as written to ECR.
    pub fingerprint: String,
}
