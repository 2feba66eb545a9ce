//! `RepositoryCreationTemplate`: the settings ECR gives the repositories it creates itself (by a
//! pull-through cache, by replication, or on push) under a prefix.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::common::{PolicyDocument, RegistryRef};
use crate::api::interval::Interval;
use crate::api::v1alpha1::{Encryption, LifecycleRule, TagMutability};

/// One ECR repository creation template. ECR applies it to the repositories it creates whose
/// name starts with `prefix` (or to every such repository without a template of its own, for
/// `ROOT`), for the creation paths in `appliedFor`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ecr-operator.dev",
    version = "v1alpha1",
    doc = "One ECR repository creation template: the settings of the repositories ECR creates under a prefix.",
    kind = "RepositoryCreationTemplate",
    status = "RepositoryCreationTemplateStatus",
    derive = "PartialEq",
    shortname = "ecrrct",
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
    printcolumn(name = "Prefix", type_ = "string", json_path = ".spec.prefix"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("(self.imageTagMutability in ['MutableWithExclusion', 'ImmutableWithExclusion']) == has(self.exclusionFilters)")
    .message("exclusionFilters is required with imageTagMutability MutableWithExclusion or ImmutableWithExclusion, and not allowed otherwise"))]
#[serde(rename_all = "camelCase")]
pub struct RepositoryCreationTemplateSpec {
    /// The `Registry` whose ECR registry holds the template. Defaults to `default`. Immutable.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("registryRef is immutable: create another RepositoryCreationTemplate for another Registry and delete this one"))]
    pub registry_ref: RegistryRef,

    /// The repository-name prefix the template applies to (ECR adds a trailing `/`), e.g.
    /// `docker-hub`, or `ROOT` for every repository without a template of its own. Immutable:
    /// ECR identifies a template by its prefix.
    #[schemars(
        length(min = 1, max = 256),
        regex(pattern = r"^((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?|ROOT)$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("prefix is immutable (ECR identifies a template by it): create another RepositoryCreationTemplate and delete this one"))]
    pub prefix: String,

    /// Which creations the template applies to: `PullThroughCache`, `Replication`,
    /// `CreateOnPush`. At least one, each once.
    #[schemars(length(min = 1, max = 3))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b == a))")
        .message("appliedFor must not repeat a value"))]
    pub applied_for: Vec<AppliedFor>,

    /// Free-text description, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub description: Option<String>,

    /// Tag mutability of the created repositories, as in a `Repository`: `Mutable` (default),
    /// `Immutable`, `MutableWithExclusion` or `ImmutableWithExclusion`.
    #[serde(default)]
    pub image_tag_mutability: TagMutability,

    /// Wildcard tag filters that are the exception to `imageTagMutability`: 1 to 5, required with
    /// the `*WithExclusion` values and not allowed otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 5), inner(regex(pattern = r"^[0-9a-zA-Z._*-]{1,128}$")))]
    pub exclusion_filters: Option<Vec<String>>,

    /// Encryption of the created repositories, as in a `Repository`. Defaults to `AES256`. Unlike
    /// a repository's, a template's encryption can change (it applies to repositories created
    /// afterwards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,

    /// Tags of the created repositories. At most 50.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 50))]
    #[x_kube(validation = Rule::new("self.all(k, size(k) >= 1 && size(k) <= 128 && !k.startsWith('aws:'))")
        .message("resourceTags keys must be 1 to 128 characters and must not start with 'aws:'"))]
    #[x_kube(validation = Rule::new("self.all(k, size(self[k]) <= 256)")
        .message("resourceTags values must be at most 256 characters"))]
    pub resource_tags: BTreeMap<String, String>,

    /// The IAM role ECR assumes to apply the template (needed for KMS encryption or tags with a
    /// pull-through cache or replication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 20, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$')")
        .message("customRoleArn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)"))]
    pub custom_role_arn: Option<String>,

    /// The repository permissions policy of the created repositories, as a YAML object, compared
    /// with ECR semantically. When unset, the template's policy is left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_policy: Option<PolicyDocument>,

    /// The lifecycle rules of the created repositories, in the same typed grammar as a
    /// `LifecyclePolicy` (and checked by the same rules). When unset, the template's lifecycle
    /// policy is left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 50))]
    #[x_kube(validation = Rule::new("self.all(r, self.exists_one(s, s.rulePriority == r.rulePriority))")
        .message("rulePriority values must be unique"))]
    #[x_kube(validation = Rule::new("self.all(r, r.selection.tagStatus != 'any' || self.all(s, (has(s.selection.storageClass) ? s.selection.storageClass : 'standard') != (has(r.selection.storageClass) ? r.selection.storageClass : 'standard') || s.rulePriority <= r.rulePriority))")
        .message("a rule with tagStatus any must have the highest rulePriority among the rules of its storage class"))]
    #[x_kube(validation = Rule::new("self.all(r, r.selection.tagStatus != 'untagged' || self.exists_one(s, s.selection.tagStatus == 'untagged' && (has(s.selection.storageClass) ? s.selection.storageClass : 'standard') == (has(r.selection.storageClass) ? r.selection.storageClass : 'standard')))")
        .message("only one rule per storage class may select untagged images"))]
    pub lifecycle_rules: Option<Vec<LifecycleRule>>,

    /// How often to re-check the template for drift, between 10s and 24h, such as `10m`.
    /// Defaults to the operator's `--default-interval` (10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,

    /// Pause: while `true` nothing is called and the template stays as last applied. Defaults to
    /// `false`.
    #[serde(default)]
    pub suspend: bool,
}

/// A creation path a template applies to.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AppliedFor {
    /// Repositories a pull-through cache rule creates (ECR's `PULL_THROUGH_CACHE`).
    PullThroughCache,
    /// Repositories replication creates (ECR's `REPLICATION`).
    Replication,
    /// Repositories created by a push to a name that does not exist (ECR's `CREATE_ON_PUSH`).
    CreateOnPush,
}

impl AppliedFor {
    /// ECR's spelling.
    pub fn as_ecr(self) -> &'static str {
        match self {
            AppliedFor::PullThroughCache => "PULL_THROUGH_CACHE",
            AppliedFor::Replication => "REPLICATION",
            AppliedFor::CreateOnPush => "CREATE_ON_PUSH",
        }
    }
}

/// Observed state of a `RepositoryCreationTemplate`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryCreationTemplateStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, and `Reconciling` / `Stalled` while true (kstatus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// When ECR created the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,

    /// Account ID of the registry holding the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,

    /// `true` when this object created the template (deleting the object deletes it); `false`
    /// when it found the template in ECR (deleting the object leaves it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,

    /// Value of the `ecr-operator.dev/reconcile-requested-at` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}
