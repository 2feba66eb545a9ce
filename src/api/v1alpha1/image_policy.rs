//! `ImagePolicy`: an API-server gate on Pods whose ECR images have scan findings, enforced by a
//! ValidatingAdmissionPolicy the operator maintains (docs/insight.md, "The gate").

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::interval::Interval;

/// Denies, in the namespaces it selects, Pods whose ECR images have scan findings of a severity
/// or above (or are unscanned), checked by the API server itself through a
/// ValidatingAdmissionPolicy and its binding, with the facts in a ConfigMap the operator keeps
/// current: it keeps enforcing the last facts while the operator is down.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ecr-operator.dev",
    version = "v1alpha1",
    doc = "An API-server gate on Pods whose ECR images have scan findings.",
    kind = "ImagePolicy",
    status = "ImagePolicyStatus",
    derive = "PartialEq",
    shortname = "ecrip",
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
    printcolumn(name = "Denied", type_ = "integer", json_path = ".status.deniedImages"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("has(self.denySeverity) || self.denyUnscanned")
    .message("set denySeverity, denyUnscanned, or both: otherwise the policy denies nothing"))]
#[x_kube(validation = Rule::new("self.allowSystemNamespaces || !has(self.namespaceSelector.matchLabels) || !('kubernetes.io/metadata.name' in self.namespaceSelector.matchLabels) || !(self.namespaceSelector.matchLabels['kubernetes.io/metadata.name'] in ['kube-system', 'kube-public', 'kube-node-lease'])")
    .message("namespaceSelector selects a system namespace (kube-system, kube-public, kube-node-lease): set allowSystemNamespaces: true to gate it on purpose"))]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicySpec {
    /// The namespaces whose Pods are checked (`{}`: every namespace). System namespaces
    /// (`kube-system`, `kube-public`, `kube-node-lease`) are left out unless
    /// `allowSystemNamespaces`; without it, a selector naming one is refused at admission
    /// (`matchLabels`) or stalls the policy with `InvalidSpec` (`matchExpressions`, which CEL
    /// cannot check within the API server's cost budget).
    #[schemars(transform = crate::api::selector::admission_rules)]
    pub namespace_selector: LabelSelector,

    /// Let `namespaceSelector` reach the system namespaces. Defaults to `false`: a gate on
    /// `kube-system` can stop the cluster's own Pods, so it must be asked for.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_system_namespaces: bool,

    /// Deny Pods with an image whose scan has findings of this severity or worse (`CRITICAL` >
    /// `HIGH` > `MEDIUM` > `LOW` > `INFORMATIONAL` > `UNDEFINED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_severity: Option<Severity>,

    /// Deny Pods with an image the operator knows has no completed scan. Defaults to `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deny_unscanned: bool,

    /// What to do with an image on a registry the operator serves whose digest or tag it has no
    /// facts for (an image other than its repository's newest, a tag pushed after the last
    /// refresh, a repository without a Repository object): `Allow` (default) or `Deny`. Also
    /// applies while the facts ConfigMap is missing.
    #[serde(default)]
    pub unknown: UnknownImages,

    /// How often to rebuild the facts from the Repositories' status, between 10s and 24h.
    /// Defaults to the operator's `--default-interval` (10m); a Repository's status change
    /// rebuilds them at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,

    /// Pause: while `true` the facts are not updated (the API server keeps enforcing the last
    /// ones). Defaults to `false`.
    #[serde(default)]
    pub suspend: bool,
}

/// A finding severity, as ECR names it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Informational,
    Undefined,
}

impl Severity {
    /// ECR's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Medium => "MEDIUM",
            Severity::Low => "LOW",
            Severity::Informational => "INFORMATIONAL",
            Severity::Undefined => "UNDEFINED",
        }
    }
}

/// What the gate does with an image it has no facts for.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnknownImages {
    /// Admit it.
    #[default]
    Allow,
    /// Refuse it.
    Deny,
}

/// Observed state of an `ImagePolicy`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, and `Reconciling` / `Stalled` while true (kstatus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The ConfigMap holding the facts, `<namespace>/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<String>,

    /// The ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding (same name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission_policy: Option<String>,

    /// Image references (digests and tags) the facts cover.
    #[serde(default)]
    pub known_images: i64,

    /// Of those, how many the policy denies.
    #[serde(default)]
    pub denied_images: i64,

    /// Value of the `ecr-operator.dev/reconcile-requested-at` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}
