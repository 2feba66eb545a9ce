//! `Repository`: one Amazon ECR private repository.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::interval::Interval;

use crate::api::common::{PolicyDocument, RegistryRef};

/// An Amazon ECR private repository, kept in sync with this spec by ecr-operator.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ecr-operator.dev",
    version = "v1alpha1",
    doc = "An Amazon ECR private repository managed by ecr-operator.",
    kind = "Repository",
    namespaced,
    status = "RepositoryStatus",
    derive = "PartialEq",
    shortname = "ecrrepo",
    category = "ecr",
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.conditions[0].message"),
    printcolumn(name = "URI", type_ = "string", json_path = ".status.repositoryUri"),
    printcolumn(name = "Images", type_ = "integer", json_path = ".status.insight.imageCount", priority = 1),
    printcolumn(name = "Size", type_ = "string", json_path = ".status.insight.size"),
    printcolumn(name = "Worst", type_ = "string", json_path = ".status.insight.worstSeverity"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("has(self.spec.name) || size(self.metadata.name) >= 2")
        .message("the ECR name defaults to metadata.name, which must then be at least 2 characters; set spec.name"),
    validation = Rule::new("(has(self.spec.name) ? self.spec.name : self.metadata.name) == (has(oldSelf.spec.name) ? oldSelf.spec.name : oldSelf.metadata.name)")
        .message("spec.name is immutable: the ECR repository name cannot change; create a new Repository instead")
)]
#[x_kube(validation = Rule::new("(self.imageTagMutability in ['MutableWithExclusion', 'ImmutableWithExclusion']) == has(self.exclusionFilters)")
    .message("exclusionFilters is required with imageTagMutability MutableWithExclusion or ImmutableWithExclusion, and not allowed otherwise"))]
#[x_kube(validation = Rule::new("!self.forceDelete || self.deletionPolicy == 'Delete'")
    .message("forceDelete requires deletionPolicy: Delete"))]
#[x_kube(validation = Rule::new("has(self.encryption) == has(oldSelf.encryption)")
    .message("encryption is immutable: ECR cannot change a repository's encryption after creation"))]
#[serde(rename_all = "camelCase")]
pub struct RepositorySpec {
    /// The cluster-scoped `Registry` (account, region, credentials) that hosts this repository.
    /// Defaults to the Registry named `default`. Immutable: pointing an existing Repository at
    /// another Registry would create a second ECR repository and leave the first behind.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("registryRef is immutable: to move a repository to another Registry, create a new Repository there (and choose this one's deletionPolicy)"))]
    pub registry_ref: RegistryRef,

    /// Name of the repository in ECR, e.g. `team-a/api`. Defaults to `metadata.name`. 2 to 256
    /// lowercase characters; `/` separates path segments. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 256),
        regex(pattern = r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
    )]
    pub name: Option<String>,

    /// Whether image tags can be overwritten: `Mutable` (default), `Immutable`,
    /// `MutableWithExclusion` (mutable except tags matching `exclusionFilters`) or
    /// `ImmutableWithExclusion` (immutable except tags matching `exclusionFilters`).
    #[serde(default)]
    pub image_tag_mutability: TagMutability,

    /// Wildcard tag filters (`*` matches any characters) that are the exception to
    /// `imageTagMutability`. 1 to 5 filters; required with the `*WithExclusion` values and not
    /// allowed otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 5), inner(regex(pattern = r"^[0-9a-zA-Z._*-]{1,128}$")))]
    pub exclusion_filters: Option<Vec<String>>,

    /// Scan images on push (repository-level basic scanning). Defaults to `false`. A registry
    /// `scanning` configuration takes precedence in ECR.
    #[serde(default)]
    pub scan_on_push: bool,

    /// Encryption at rest. Defaults to `AES256`. Immutable: ECR cannot change it after creation,
    /// so a mismatch with an existing repository is reported, never fixed by recreating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("encryption is immutable: ECR cannot change a repository's encryption after creation"))]
    pub encryption: Option<Encryption>,

    /// Tags on the ECR repository. Keys listed here are authoritative; keys the operator set
    /// earlier and that were removed here are removed; other keys are left alone. At most 49
    /// (ECR allows 50; the operator uses one for `ecr-operator.dev/owner`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 49))]
    #[x_kube(validation = Rule::new("self.all(k, size(k) >= 1 && size(k) <= 128 && !k.startsWith('aws:') && !k.startsWith('ecr-operator.dev/'))")
        .message("tag keys must be 1 to 128 characters and must not start with 'aws:' or 'ecr-operator.dev/'"))]
    #[x_kube(validation = Rule::new("self.all(k, size(self[k]) <= 256)")
        .message("tag values must be at most 256 characters"))]
    pub tags: BTreeMap<String, String>,

    /// The repository permissions policy as a YAML object. Compared with ECR semantically. When
    /// unset, the operator leaves the repository policy alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyDocument>,

    /// What happens in ECR when this object is deleted: `Retain` (default) leaves the repository
    /// and its images; `Delete` deletes the repository, but only if it holds no images unless
    /// `forceDelete` is also set.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// With `deletionPolicy: Delete`, delete the repository even when it still holds images
    /// (they are lost). Defaults to `false`.
    #[serde(default)]
    pub force_delete: bool,

    /// `Full` (default): create and correct the repository. `ObserveOnly`: never write to ECR;
    /// report drift in the status only.
    #[serde(default)]
    pub management_policy: ManagementPolicy,

    /// `AdoptOrCreate` (default): take over an existing ECR repository of the same name that no
    /// other object owns, or create it. `CreateOnly`: refuse an existing repository (reason
    /// `AlreadyExists`).
    #[serde(default)]
    pub adoption: Adoption,

    /// Takes the ECR repository over from the object that owns it, named as its owner tag names
    /// it: `namespace/name` for a Repository of this cluster, or `cluster-id/namespace/name` for
    /// one of another cluster. The explicit way to move a repository to another namespace (or
    /// cluster) when its previous object is gone but still named by the owner tag. Refused
    /// (`OwnedElsewhere`) while that Repository still exists in this cluster: delete it first,
    /// with `deletionPolicy: Retain`, which releases the repository anyway. Has no effect on a
    /// repository owned by anyone else. Remove it once the takeover is done, or leave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 316))]
    #[x_kube(validation = Rule::new("self.matches('^([^/]+/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$')")
        .message("takeOverFrom must be namespace/name, or cluster-id/namespace/name, as the previous owner's ecr-operator.dev/owner tag names it"))]
    pub take_over_from: Option<String>,

    /// How often to re-check ECR for drift, between 10s and 24h, such as `10m` or
    /// `1h30m`. Defaults to the operator's `--default-interval` (10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,

    /// Pause reconciliation: no ECR calls are made while `true`. Defaults to `false`.
    #[serde(default)]
    pub suspend: bool,
}

/// Tag mutability. Kubernetes PascalCase spelling of ECR's `MUTABLE`, `IMMUTABLE`,
/// `MUTABLE_WITH_EXCLUSION` and `IMMUTABLE_WITH_EXCLUSION`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TagMutability {
    #[default]
    Mutable,
    Immutable,
    MutableWithExclusion,
    ImmutableWithExclusion,
}

/// Encryption at rest of a repository.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'AES256' || !has(self.kmsKey)")
    .message("kmsKey is only allowed with encryption type KMS or KMS_DSSE"))]
pub struct Encryption {
    /// `AES256` (Amazon S3-managed keys), `KMS` (AWS KMS; without `kmsKey` the AWS-managed key
    /// `aws/ecr`) or `KMS_DSSE` (dual-layer, AWS GovCloud (US) regions only). ECR's own spelling.
    #[serde(rename = "type")]
    pub type_: EncryptionType,

    /// KMS key ID, alias or ARN in the repository's region (only with `KMS` / `KMS_DSSE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub kms_key: Option<String>,
}

/// Encryption type, in ECR's own spelling.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncryptionType {
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "KMS")]
    Kms,
    #[serde(rename = "KMS_DSSE")]
    KmsDsse,
}

/// What happens to the ECR repository when its `Repository` object is deleted.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Leave the repository and its images in ECR.
    #[default]
    Retain,
    /// Delete the repository (refused while it holds images, unless `forceDelete`).
    Delete,
}

/// Whether the operator writes to ECR.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ManagementPolicy {
    /// Create the repository and correct drift.
    #[default]
    Full,
    /// Never write; report drift only.
    ObserveOnly,
}

/// What to do when the ECR repository already exists.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Adoption {
    /// Adopt an existing repository that no other object owns, or create it.
    #[default]
    AdoptOrCreate,
    /// Only ever create; an existing repository is an error.
    CreateOnly,
}

/// Observed state of a `Repository`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, and `Reconciling` / `Stalled` while true (kstatus), plus `Drifted` for
    /// `ObserveOnly` repositories (True while ECR differs from the spec).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// `<account>.dkr.ecr.<region>.amazonaws.com/<name>`: what `docker push` and Pods use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_uri: Option<String>,

    /// ARN of the ECR repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_arn: Option<String>,

    /// Account ID of the registry holding the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,

    /// When ECR created the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,

    /// Deprecated, no longer written: where a LifecyclePolicy is applied is recorded in that
    /// LifecyclePolicy's `status.repositories`. Objects from earlier versions may still show a
    /// value here; the operator reads it only to remove a policy it put before the upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy: Option<AppliedLifecyclePolicy>,

    /// Tag keys this operator set on the ECR repository, so that keys removed from `spec.tags`
    /// can be removed from ECR while keys set by others are left alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_tag_keys: Vec<String>,

    /// Value of the `ecr-operator.dev/reconcile-requested-at` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// What the repository holds: image count, size, archived images, estimated monthly cost,
    /// and the scan findings of its newest image (docs/insight.md). Refreshed on the drift
    /// interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insight: Option<super::RepositoryInsight>,
}

/// A lifecycle policy the operator applied to a repository.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedLifecyclePolicy {
    /// Name of the `LifecyclePolicy` object in the same namespace.
    pub name: String,
    /// SHA-256 of the canonical policy text that was put.
    pub hash: String,
}

impl Repository {
    /// The ECR repository name: `spec.name`, else `metadata.name`.
    pub fn ecr_name(&self) -> String {
        self.spec
            .name
            .clone()
            .unwrap_or_else(|| kube::ResourceExt::name_any(self))
    }
}
