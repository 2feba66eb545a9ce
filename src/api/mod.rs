//! The `ecr-operator.dev` API: CRD types only, no I/O.
//!
//! Every CRD the operator serves comes from the Rust types in [`v1alpha1`]; `crds/` and the Helm
//! chart's copy are generated from [`crds`] by `ecr-operator crd --out-dir crds`.

pub mod common;
pub mod interval;
pub mod v1alpha1;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of every kind.
pub const GROUP: &str = "ecr-operator.dev";
/// The name of the operator: binary, chart, image, `app.kubernetes.io/managed-by` value.
pub const OPERATOR_NAME: &str = "ecr-operator";
/// The finalizer the controllers put on objects whose deletion must clean up ECR.
pub const FINALIZER: &str = "ecr-operator.dev/finalizer";
/// The ECR tag that records which object owns a repository: `<cluster-id>/<namespace>/<name>`.
pub const OWNER_TAG: &str = "ecr-operator.dev/owner";
/// Any new value of this annotation triggers a reconcile; it is echoed in `status.lastHandledReconcileAt`.
pub const RECONCILE_REQUESTED_AT: &str = "ecr-operator.dev/reconcile-requested-at";
/// The kubectl category of every kind: `kubectl get ecr -A` lists them all.
pub const CATEGORY: &str = "ecr";

/// Every CRD this operator serves, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    use v1alpha1::*;
    vec![
        Registry::crd(),
        Repository::crd(),
        LifecyclePolicy::crd(),
        ReplicationRule::crd(),
        PullSecret::crd(),
        ClusterPullSecret::crd(),
    ]
}

/// The file name of a CRD in `crds/`: `<plural>.<group>.yaml`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// The YAML of one CRD as committed in `crds/`, with a do-not-edit header.
pub fn render_crd(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::ser::Error> {
    let body = serde_saphyr::to_string(crd)?;
    Ok(format!(
        "# Generated from the Rust types in src/api by `ecr-operator crd --out-dir crds`. Do not edit.\n{body}"
    ))
}

/// All CRDs as one multi-document YAML stream (what `ecr-operator crd` prints).
pub fn render_all() -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&render_crd(&crd)?);
    }
    Ok(out)
}
