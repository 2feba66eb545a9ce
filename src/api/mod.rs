//! The `ecr-operator.dev` API: CRD types only, no I/O.
//!
//! Every CRD the operator serves comes from the Rust types in [`v1alpha1`]; `crds/` and the Helm
//! chart's copy are generated from [`crds`] by `ecr-operator crd --out-dir crds`.

pub mod common;
pub mod interval;
pub mod selector;
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
        PullThroughCacheRule::crd(),
        RepositoryCreationTemplate::crd(),
        PublicRepository::crd(),
        ImagePolicy::crd(),
    ]
    .into_iter()
    .map(|crd| {
        // Serialising a derived CRD and reading it back cannot fail; keep it as it is if it did.
        serde_json::to_value(&crd)
            .map(|mut v| {
                unwrap_descriptions(&mut v);
                v
            })
            .and_then(serde_json::from_value)
            .unwrap_or(crd)
    })
    .collect()
}

/// Rustdoc wraps lines at 100 columns; `kubectl explain` should show sentences, not those
/// breaks. Joins the lines of each paragraph of every `description`, keeping blank lines and
/// list items (`- `) on lines of their own.
fn unwrap_descriptions(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                match child {
                    serde_json::Value::String(text) if k == "description" => *text = unwrap_text(text),
                    _ => unwrap_descriptions(child),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// Pure: joins wrapped lines with a space; a blank line or a line starting a list item starts a
/// new line.
pub fn unwrap_text(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.trim_end();
        let starts_item = line.trim_start().starts_with("- ");
        if out.is_empty() {
            out.push_str(line);
        } else if line.is_empty() {
            out.push_str("\n\n");
        } else if out.ends_with('\n') || starts_item {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(line);
        } else {
            out.push(' ');
            out.push_str(line.trim_start());
        }
    }
    // A run of blank lines is one paragraph break.
    while out.contains("\n\n\n") {
        out = out.replace("\n\n\n", "\n\n");
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_read_as_sentences() {
        assert_eq!(
            unwrap_text("How often to re-check ECR for drift, between 10s and 24h,\nsuch as `10m`."),
            "How often to re-check ECR for drift, between 10s and 24h, such as `10m`."
        );
        assert_eq!(unwrap_text("One.\n\nTwo\nlines."), "One.\n\nTwo lines.");
        assert_eq!(
            unwrap_text("Either:\n- a\n- b, wrapped\n  on two lines"),
            "Either:\n- a\n- b, wrapped on two lines"
        );
        // A field whose rustdoc wraps over three lines reads as one paragraph in the CRD.
        let crd = serde_json::to_value(&crds()[1]).unwrap_or_default();
        let registry_ref = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["registryRef"]["description"];
        let text = registry_ref.as_str().unwrap_or_default();
        assert!(
            text.contains("Defaults to the Registry named `default`. Immutable:"),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
    }
}
