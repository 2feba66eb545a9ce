//! `ReplicationRule`: one rule inside a registry's single replication configuration.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::interval::Interval;

use crate::api::common::RegistryRef;

/// One rule of a registry's replication configuration. ECR holds a single replication
/// configuration per registry; the operator merges every ReplicationRule of a Registry into it
/// (ordered by `priority`, then name), checks ECR's limits (10 rules, 25 distinct destinations)
/// and writes it once.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ecr-operator.dev",
    version = "v1alpha1",
    doc = "One rule of a registry's ECR replication configuration.",
    kind = "ReplicationRule",
    status = "ReplicationRuleStatus",
    derive = "PartialEq",
    shortname = "ecrrr",
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
    printcolumn(name = "Registry", type_ = "string", json_path = ".spec.registryRef.name"),
    printcolumn(name = "Position", type_ = "integer", json_path = ".status.position"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationRuleSpec {
    /// The source `Registry` whose replication configuration holds this rule. Defaults to
    /// `default`. Immutable: create another ReplicationRule for another Registry.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("registryRef is immutable: create another ReplicationRule for another Registry and delete this one"))]
    pub registry_ref: RegistryRef,

    /// Where images are replicated to: 1 to 25 distinct (region, registryId) pairs.
    #[schemars(length(min = 1, max = 25))]
    #[x_kube(validation = Rule::new("self.all(d, self.exists_one(e, e.region == d.region && e.registryId == d.registryId))")
        .message("destinations must be distinct (region, registryId) pairs"))]
    pub destinations: Vec<ReplicationDestination>,

    /// Which repositories replicate, by repository-name prefix. Up to 100 filters; without
    /// filters every repository of the registry replicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(validation = Rule::new("self.all(f, self.exists_one(g, g.filter == f.filter))")
        .message("repositoryFilters must not repeat a filter"))]
    pub repository_filters: Option<Vec<RepositoryFilter>>,

    /// Position of the rule among the registry's rules: lower first, ties broken by name.
    /// Defaults to 0. When ECR's limits are exceeded, the rules that come last are left out.
    #[serde(default)]
    #[schemars(range(min = -1000, max = 1000))]
    pub priority: i32,

    /// How often to re-check ECR's replication configuration for drift from this rule, between
    /// 10s and 24h, such as `10m` or `1h30m`. The registry's one configuration is re-checked at
    /// the shortest interval of its rules and its Registry (which defaults to the operator's
    /// `--default-interval`, 10m): a rule can make the check more frequent, never less.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,

    /// Pause: while `true` the rule's entry in ECR is kept as last applied, neither changed nor
    /// removed. Defaults to `false`.
    #[serde(default)]
    pub suspend: bool,
}

/// A replication destination.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationDestination {
    /// Destination AWS region, e.g. `us-west-2`: the same format as `Registry.spec.region` (two
    /// lowercase letters, one or more lowercase words and a number, separated by dashes).
    #[schemars(transform = crate::api::common::region_rules)]
    pub region: String,
    /// 12-digit account ID of the destination registry.
    #[schemars(length(min = 12, max = 12), regex(pattern = r"^[0-9]{12}$"))]
    pub registry_id: String,
}

/// A repository filter of a replication rule.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryFilter {
    /// Repository-name prefix, e.g. `prod/`.
    #[schemars(
        length(min = 2, max = 256),
        regex(pattern = r"^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$")
    )]
    pub filter: String,
    /// `PREFIX_MATCH` (ECR's spelling; the only type ECR supports). Defaults to `PREFIX_MATCH`.
    #[serde(default)]
    pub filter_type: RepositoryFilterType,
}

/// Replication filter type, in ECR's spelling.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RepositoryFilterType {
    #[default]
    #[serde(rename = "PREFIX_MATCH")]
    PrefixMatch,
}

/// Observed state of a `ReplicationRule`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationRuleStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, and `Reconciling` / `Stalled` while true (kstatus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// 0-based index of this rule in the registry's replication configuration, while applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i32>,

    /// Account ID of the source registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,

    /// Value of the `ecr-operator.dev/reconcile-requested-at` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}
