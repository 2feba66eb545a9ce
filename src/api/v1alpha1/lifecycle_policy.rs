//! `LifecyclePolicy`: ECR lifecycle rules applied to the Repositories it selects.
//!
//! The rule fields and their values use ECR's own lifecycle-policy spelling (`rulePriority`,
//! `tagStatus: tagged`, `countType: imageCountMoreThan`, ...), so the `rules` of an existing ECR
//! policy document paste in unchanged.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::interval::Interval;

/// Image expiry and archiving rules, applied as the ECR lifecycle policy of every Repository
/// this object selects in its namespace. A repository has one lifecycle policy: when two
/// LifecyclePolicies select the same Repository the older one wins and the other reports
/// `Conflict`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ecr-operator.dev",
    version = "v1alpha1",
    doc = "ECR lifecycle rules applied to the Repositories selected in this namespace.",
    kind = "LifecyclePolicy",
    plural = "lifecyclepolicies",
    namespaced,
    status = "LifecyclePolicyStatus",
    derive = "PartialEq",
    shortname = "ecrlp",
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
    printcolumn(name = "DryRun", type_ = "boolean", json_path = ".spec.dryRun"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("has(self.repositorySelector) != has(self.repositories)")
    .message("set exactly one of repositorySelector and repositories"))]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicySpec {
    /// Selects the Repositories (in this namespace) by label. Exactly one of
    /// `repositorySelector` and `repositories` is required. A selector that matches no
    /// Repository leaves the policy Ready with the reason `NoRepositorySelected`. `matchExpressions` may use the
    /// operators `In`, `NotIn` (each with at least one value), `Exists` and `DoesNotExist`
    /// (without values), checked at admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = crate::api::selector::admission_rules)]
    pub repository_selector: Option<LabelSelector>,

    /// Names of the Repository objects (in this namespace) to apply the policy to. Exactly one of
    /// `repositorySelector` and `repositories` is required. A name no Repository has makes the
    /// policy report `NamedRepositoryNotFound` (not Ready) until that Repository exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1000), inner(length(min = 1, max = 253)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub repositories: Option<Vec<String>>,

    /// The lifecycle rules, in ECR's grammar. 1 to 50 rules; `rulePriority` values are unique; a
    /// `tagStatus: any` rule has the highest priority number among the rules of its storage
    /// class; at most one `untagged` rule per storage class.
    #[schemars(length(min = 1, max = 50))]
    #[x_kube(validation = Rule::new("self.all(r, self.exists_one(s, s.rulePriority == r.rulePriority))")
        .message("rulePriority values must be unique"))]
    #[x_kube(validation = Rule::new("self.all(r, r.selection.tagStatus != 'any' || self.all(s, (has(s.selection.storageClass) ? s.selection.storageClass : 'standard') != (has(r.selection.storageClass) ? r.selection.storageClass : 'standard') || s.rulePriority <= r.rulePriority))")
        .message("a rule with tagStatus any must have the highest rulePriority among the rules of its storage class"))]
    #[x_kube(validation = Rule::new("self.all(r, r.selection.tagStatus != 'untagged' || self.exists_one(s, s.selection.tagStatus == 'untagged' && (has(s.selection.storageClass) ? s.selection.storageClass : 'standard') == (has(r.selection.storageClass) ? r.selection.storageClass : 'standard')))")
        .message("only one rule per storage class may select untagged images"))]
    pub rules: Vec<LifecycleRule>,

    /// Compute `status.preview` without putting the policy on any repository. Defaults to `false`.
    #[serde(default)]
    pub dry_run: bool,

    /// How often to re-check ECR for drift and refresh the preview, between 10s and 24h,
    /// such as `10m` or `1h30m`. Defaults to the operator's `--default-interval` (10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,

    /// Pause reconciliation: no ECR calls are made while `true`. Defaults to `false`.
    #[serde(default)]
    pub suspend: bool,

    /// Protection of the images this cluster uses: they are never expired or archived by the
    /// policy the operator puts, whatever the rules say (docs/lifecycle-policies.md, "Images in
    /// use"). On unless `enabled: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protection: Option<Protection>,
}

/// Protection of the images in use (`spec.protection`).
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Protection {
    /// Whether images in use are protected. Defaults to `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,

    /// How long an image stays protected after this cluster stops using it, between 10s and 24h,
    /// such as `30m` or `24h`. Defaults to `24h`. The clock starts when the operator first sees
    /// the image out of use, and starts again after an operator restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<Interval>,

    /// How many previous revisions of each Deployment (its ReplicaSets scaled to zero, newest
    /// first, as many as its `revisionHistoryLimit` keeps) stay protected for a rollback, 0 to
    /// 100. Defaults to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub rollback_revisions: Option<i32>,
}

/// One ECR lifecycle rule.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.selection.countType != 'sinceImagePulled' || self.action.type == 'transition'")
    .message("countType sinceImagePulled can only be used with action type transition"))]
#[x_kube(validation = Rule::new("self.selection.countType != 'sinceImageTransitioned' || self.action.type == 'expire'")
    .message("countType sinceImageTransitioned can only be used with action type expire"))]
pub struct LifecycleRule {
    /// Order of evaluation, lowest first. A positive integer, unique within the policy.
    #[schemars(range(min = 1, max = 1000000))]
    pub rule_priority: i32,

    /// Free-text description of the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,

    /// Which images the rule applies to.
    pub selection: LifecycleSelection,

    /// What happens to the selected images.
    pub action: LifecycleAction,
}

/// The images a lifecycle rule selects.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.tagStatus != 'tagged' || (has(self.tagPrefixList) != has(self.tagPatternList))")
    .message("tagStatus tagged requires exactly one of tagPrefixList and tagPatternList"))]
#[x_kube(validation = Rule::new("self.tagStatus == 'tagged' || (!has(self.tagPrefixList) && !has(self.tagPatternList))")
    .message("tagPrefixList and tagPatternList are only allowed with tagStatus tagged"))]
#[x_kube(validation = Rule::new("has(self.countUnit) == (self.countType != 'imageCountMoreThan')")
    .message("countUnit: days is required with the since* count types and not allowed with imageCountMoreThan"))]
#[x_kube(validation = Rule::new("(self.countType == 'sinceImageTransitioned') == (has(self.storageClass) && self.storageClass == 'archive')")
    .message("storageClass archive is required with countType sinceImageTransitioned and not allowed with other count types"))]
#[x_kube(validation = Rule::new("self.countType != 'sinceImageTransitioned' || self.countNumber >= 90")
    .message("archived images must be kept at least 90 days: countNumber must be at least 90 with sinceImageTransitioned"))]
pub struct LifecycleSelection {
    /// `tagged`, `untagged` or `any`.
    pub tag_status: TagStatus,

    /// Tag prefixes (only with `tagStatus: tagged`). An image matches when every prefix matches
    /// one of its tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100), inner(length(min = 1, max = 300)))]
    pub tag_prefix_list: Option<Vec<String>>,

    /// Tag wildcard patterns such as `prod*` (only with `tagStatus: tagged`); at most 4 `*` per
    /// pattern. An image matches when every pattern matches one of its tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100), inner(length(min = 1, max = 300)))]
    #[x_kube(validation = Rule::new("self.all(p, !p.matches('([*][^*]*){5}'))")
        .message("a tagPatternList pattern may contain at most 4 wildcards (*)"))]
    pub tag_pattern_list: Option<Vec<String>>,

    /// `standard` (default) or `archive`; `archive` only with `countType: sinceImageTransitioned`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<StorageClass>,

    /// `imageCountMoreThan` (keep the newest `countNumber` images), `sinceImagePushed`,
    /// `sinceImagePulled` (only with `transition`) or `sinceImageTransitioned` (archived images,
    /// only with `expire`).
    pub count_type: CountType,

    /// `days`; required with the `since*` count types, not allowed with `imageCountMoreThan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_unit: Option<CountUnit>,

    /// The image count or the number of days. At least 1 (at least 90 with `sinceImageTransitioned`).
    #[schemars(range(min = 1, max = 1000000))]
    pub count_number: i32,
}

/// What a lifecycle rule does.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(self.type == 'transition') == has(self.targetStorageClass)")
    .message("targetStorageClass: archive is required with action type transition and not allowed with expire"))]
pub struct LifecycleAction {
    /// `expire` (delete the images) or `transition` (move them to the archive storage class).
    #[serde(rename = "type")]
    pub type_: ActionType,

    /// `archive`; required with `type: transition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_storage_class: Option<TargetStorageClass>,
}

/// ECR `tagStatus`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

/// ECR storage class.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum StorageClass {
    #[default]
    Standard,
    Archive,
}

/// ECR `countType`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum CountType {
    ImageCountMoreThan,
    SinceImagePushed,
    SinceImagePulled,
    SinceImageTransitioned,
}

/// ECR `countUnit`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum CountUnit {
    Days,
}

/// ECR lifecycle action type.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum ActionType {
    Expire,
    Transition,
}

/// ECR `targetStorageClass`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum TargetStorageClass {
    Archive,
}

/// Observed state of a `LifecyclePolicy`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, and `Reconciling` / `Stalled` while true (kstatus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Where the policy is applied and where it is not, one entry per selected Repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub repositories: Vec<LifecyclePolicyTarget>,

    /// What the rules would do to the images in the selected repositories now, computed by the
    /// operator from ECR's documented evaluation rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<LifecyclePreview>,

    /// Value of the `ecr-operator.dev/reconcile-requested-at` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// The state of the policy on one selected Repository.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyTarget {
    /// Name of the Repository object.
    pub name: String,
    /// Where the policy stands on this repository.
    pub state: TargetState,
    /// One sentence on the state, e.g. which LifecyclePolicy holds the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The ECR repository this operator put the policy on (set while the policy is there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr_name: Option<String>,
    /// The Registry of that ECR repository (set while the policy is there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Images of this repository protected because this cluster uses them (or used them within
    /// the grace period), when protection is on and the policy is put.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_images: Option<i64>,
    /// SHA-256 of the canonical policy text this operator put there. The policy is removed from
    /// ECR only while ECR still holds exactly this text, so an edit made by someone else is never
    /// deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// Where a LifecyclePolicy stands on one Repository.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TargetState {
    /// The policy is in ECR.
    Applied,
    /// `dryRun: true`: previewed, not put.
    Previewed,
    /// Waiting for the Repository (or its Registry) to be Ready, or, for a name in
    /// `spec.repositories`, for a Repository of that name to exist.
    #[default]
    Pending,
    /// An older LifecyclePolicy holds this repository.
    Conflict,
    /// The last attempt failed; the message says why.
    Failed,
    /// No longer selected (or the policy is being deleted): the policy this operator put is being
    /// removed from ECR, which waits for the Registry to be Ready.
    Releasing,
}

/// A local preview of the policy.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePreview {
    /// When the images were evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_at: Option<Time>,
    /// One entry per rule, in priority order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RulePreview>,
}

/// What one rule would do.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RulePreview {
    /// The rule's `rulePriority`.
    pub rule_priority: i32,
    /// Images the rule's selection matches, over all selected repositories.
    pub matched: i64,
    /// Images the rule would expire.
    pub expiring: i64,
    /// Images the rule would move to the archive storage class.
    pub transitioning: i64,
    /// Sum of `imageSizeInBytes` of the images the rule would expire: what it would reclaim
    /// (layers shared with images that stay are counted too, so the bill may shrink by less).
    #[serde(default)]
    pub expiring_bytes: i64,
    /// Sum of `imageSizeInBytes` of the images the rule would move to the archive storage class.
    #[serde(default)]
    pub transitioning_bytes: i64,
    /// Estimated monthly storage saving in US dollars, 4 decimals: expired bytes at the price of
    /// the storage class they are in, plus transitioned bytes at the standard price less the
    /// archive price, with each repository's Registry prices (docs/insight.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_monthly_savings_usd: Option<String>,
    /// A few of the affected images, as `repository:tag` or `repository@digest`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    /// Images the rule would expire or archive that are kept because this cluster uses them
    /// (`spec.protection`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kept_in_use: i64,
    /// Up to three workloads using those images, such as `Deployment shop/web`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_use_by: Vec<String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}
