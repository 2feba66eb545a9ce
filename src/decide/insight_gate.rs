//! The `ImagePolicy` gate: the facts the API server checks Pods against (a ConfigMap's data, keyed
//! by digest and by repository and tag), the ValidatingAdmissionPolicy whose CEL reads them, its
//! binding, and the status. No I/O (see [`crate::decide`]); the writes are in
//! `controllers/image_policy.rs`. What is and is not caught: docs/insight.md, "The gate".
//!
//! Keys (a ConfigMap key allows only `[-._a-zA-Z0-9]`): a digest `sha256:<hex>` is
//! `sha256.<hex>`; a tag reference `<host>/<repository>:<tag>` is `<host>/<repository>` with
//! every `/` written `--`, then `..`, then the tag. ECR repository names contain neither `--`
//! nor `..`, so the first `..` ends the repository and no two references share a key. The value
//! is empty for an admitted image and the refusal's text for a denied one; the key `hosts` lists
//! the registry hosts the facts cover (an image on another host is none of the gate's business).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, Time};
use kube::ResourceExt;
use serde_json::{Value, json};

use crate::api::v1alpha1::{ImageFindings, ImagePolicy, ImagePolicyStatus, Severity, UnknownImages};
use crate::decide::insight::SEVERITIES;
use crate::error::Error;
use crate::status::{Outcome, summarize};

/// The namespaces a policy leaves alone unless `allowSystemNamespaces`.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// The ConfigMap key listing the registry hosts the facts cover.
pub const HOSTS: &str = "hosts";

/// The name of the ConfigMap, ValidatingAdmissionPolicy and binding of a policy.
pub fn object_name(policy: &str) -> String {
    format!("ecr-image-policy.{policy}")
}

/// The key of a digest.
pub fn digest_key(digest: &str) -> String {
    digest.replace(':', ".")
}

/// The key of `<host>/<repository>` and a tag.
pub fn tag_key(uri: &str, tag: &str) -> String {
    format!("{}..{tag}", uri.replace('/', "--"))
}

/// The CEL of the key of a Pod's image `i` (the same keys as [`digest_key`] and [`tag_key`]; an
/// image without a tag or digest is `:latest`).
const CEL_KEY: &str = "(i.contains('@') ? i.substring(i.indexOf('@') + 1).replace(':', '.') : (i.substring(i.lastIndexOf('/')).contains(':') ? i.substring(0, i.lastIndexOf(':')).replace('/', '--') + '..' + i.substring(i.lastIndexOf(':') + 1) : i.replace('/', '--') + '..latest'))";

/// The CEL of the images of every container kind of `pod` (`object` or `oldObject`).
fn cel_images(pod: &str) -> String {
    format!(
        "{pod}.spec.containers.map(c, c.image) + (has({pod}.spec.initContainers) ? {pod}.spec.initContainers.map(c, c.image) : []) + (has({pod}.spec.ephemeralContainers) ? {pod}.spec.ephemeralContainers.map(c, c.image) : [])"
    )
}

/// One Repository as the gate reads it: its URI and its newest image's findings.
pub struct Known<'a> {
    pub uri: &'a str,
    pub newest: Option<&'a ImageFindings>,
}

/// What the facts hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    /// The ConfigMap's data.
    pub data: BTreeMap<String, String>,
    /// Keys (digests and tags) known.
    pub known: i64,
    /// Of those, denied.
    pub denied: i64,
}

/// Pure: why `policy` denies an image with these findings, or `None`.
pub fn verdict(policy: &ImagePolicy, image: &ImageFindings) -> Option<String> {
    if let Some(worst) = policy.spec.deny_severity {
        let found: Vec<(&str, i64)> = at_or_above(worst)
            .into_iter()
            .filter_map(|s| image.finding_counts.get(s).filter(|n| **n > 0).map(|n| (s, *n)))
            .collect();
        if !found.is_empty() {
            let total: i64 = found.iter().map(|(_, n)| n).sum();
            let each: Vec<String> = found.iter().map(|(s, n)| format!("{n} {s}")).collect();
            return Some(format!(
                "{total} finding(s) of severity {} or worse ({})",
                worst.as_str(),
                each.join(", ")
            ));
        }
    }
    let scanned = matches!(image.scan_status.as_deref(), Some("COMPLETE" | "ACTIVE"));
    (policy.spec.deny_unscanned && !scanned).then(|| "no completed scan".to_owned())
}

/// Pure: the facts of `policy` over the Repositories it can see.
pub fn facts(policy: &ImagePolicy, repos: &[Known]) -> Facts {
    let mut out = Facts::default();
    let mut hosts: Vec<&str> = Vec::new();
    for repo in repos {
        let Some((host, _)) = repo.uri.split_once('/') else {
            continue;
        };
        if !hosts.contains(&host) {
            hosts.push(host);
        }
        let Some(image) = repo.newest else { continue };
        let why = verdict(policy, image);
        let say = |reference: &str| match &why {
            Some(why) => format!(
                "image {reference} is denied by ImagePolicy {}: {why}",
                policy.name_any()
            ),
            None => String::new(),
        };
        let mut put = |key: String, value: String| {
            out.known += 1;
            out.denied += i64::from(!value.is_empty());
            out.data.insert(key, value);
        };
        put(
            digest_key(&image.digest),
            say(&format!("{}@{}", repo.uri, image.digest)),
        );
        for tag in &image.tags {
            put(
                tag_key(repo.uri, tag),
                say(&format!("{}:{tag} ({})", repo.uri, image.digest)),
            );
        }
    }
    hosts.sort_unstable();
    out.data.insert(HOSTS.to_owned(), hosts.join(","));
    out
}

/// Pure: a `matchExpressions` entry naming a system namespace without `allowSystemNamespaces`
/// (the CRD's CEL checks `matchLabels`; this one would cost more than the API server allows).
pub fn check_spec(policy: &ImagePolicy) -> Result<(), Error> {
    if policy.spec.allow_system_namespaces {
        return Ok(());
    }
    let named = policy
        .spec
        .namespace_selector
        .match_expressions
        .iter()
        .flatten()
        .filter(|e| e.key == "kubernetes.io/metadata.name" && e.operator == "In")
        .flat_map(|e| e.values.iter().flatten())
        .find(|v| SYSTEM_NAMESPACES.contains(&v.as_str()));
    match named {
        Some(ns) => Err(Error::InvalidSpec(format!(
            "spec.namespaceSelector selects the system namespace {ns}: set allowSystemNamespaces: true to gate it on purpose"
        ))),
        None => Ok(()),
    }
}

/// Pure: the binding's namespace selector: the policy's, and unless `allowSystemNamespaces`,
/// not the system namespaces.
pub fn namespace_selector(policy: &ImagePolicy) -> LabelSelector {
    let mut selector = policy.spec.namespace_selector.clone();
    if !policy.spec.allow_system_namespaces {
        selector
            .match_expressions
            .get_or_insert_with(Vec::new)
            .push(LabelSelectorRequirement {
                key: "kubernetes.io/metadata.name".into(),
                operator: "NotIn".into(),
                values: Some(SYSTEM_NAMESPACES.map(String::from).to_vec()),
            });
    }
    selector
}

fn owner(policy: &ImagePolicy) -> Value {
    json!([{
        "apiVersion": "ecr-operator.dev/v1alpha1",
        "kind": "ImagePolicy",
        "name": policy.name_any(),
        "uid": policy.uid().unwrap_or_default(),
    }])
}

fn labels(policy: &ImagePolicy) -> Value {
    json!({"app.kubernetes.io/managed-by": crate::api::OPERATOR_NAME, "ecr-operator.dev/imagepolicy": policy.name_any()})
}

/// Pure: the ConfigMap of facts, owned by the policy (deleted with it).
pub fn config_map(policy: &ImagePolicy, namespace: &str, facts: &Facts) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": object_name(&policy.name_any()), "namespace": namespace,
                     "labels": labels(policy), "ownerReferences": owner(policy)},
        "data": facts.data,
    })
}

/// Pure: the ValidatingAdmissionPolicy: Pods created, or updated with other images (an
/// ephemeral container added included), whose images on a covered host are denied by the facts
/// (and, with `unknown: Deny`, whose images the facts do not know). An update that changes no
/// image (a label, a finalizer's removal) is never checked, so a Pod admitted before the policy
/// can still be managed and deleted.
pub fn admission_policy(policy: &ImagePolicy) -> Value {
    let name = policy.name_any();
    let mut validations = vec![json!({
        "expression": "size(variables.denied) == 0",
        "messageExpression": "variables.denied.map(k, params.data[k]).join('; ')",
        "reason": "Forbidden",
    })];
    if policy.spec.unknown == UnknownImages::Deny {
        validations.push(json!({
            "expression": "size(variables.unknown) == 0",
            "messageExpression": format!("'images unknown to ecr-operator are denied by ImagePolicy {name}: ' + variables.unknown.join(', ')"),
            "reason": "Forbidden",
        }));
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": object_name(&name), "labels": labels(policy), "ownerReferences": owner(policy)},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"], "resources": ["pods", "pods/ephemeralcontainers"],
            }]},
            "matchConditions": [{
                "name": "images-set-or-changed",
                "expression": format!("request.operation == 'CREATE' || {} != {}", cel_images("object"), cel_images("oldObject")),
            }],
            "variables": [
                {"name": "hosts", "expression": format!("has(params.data) && '{HOSTS}' in params.data ? params.data['{HOSTS}'].split(',') : []")},
                {"name": "images", "expression": cel_images("object")},
                {"name": "ecr", "expression": "variables.images.filter(i, i.split('/')[0] in variables.hosts)"},
                {"name": "denied", "expression": format!("variables.ecr.map(i, {CEL_KEY}).filter(k, k in params.data && params.data[k] != '')")},
                {"name": "unknown", "expression": format!("variables.ecr.filter(i, !({CEL_KEY} in params.data))")},
            ],
            "validations": validations,
        },
    })
}

/// Pure: the binding of the policy to its facts and namespaces.
pub fn binding(policy: &ImagePolicy, namespace: &str) -> Value {
    let name = object_name(&policy.name_any());
    let missing = match policy.spec.unknown {
        UnknownImages::Allow => "Allow",
        UnknownImages::Deny => "Deny",
    };
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": labels(policy), "ownerReferences": owner(policy)},
        "spec": {
            "policyName": name,
            "paramRef": {"name": name, "namespace": namespace, "parameterNotFoundAction": missing},
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": namespace_selector(policy)},
        },
    })
}

/// What one reconcile did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gated {
    pub facts: Facts,
    pub namespace: String,
}

/// Pure: the next status.
pub fn next_status(policy: &ImagePolicy, outcome: &Result<Gated, Error>, now: &Time) -> ImagePolicyStatus {
    let prev = policy.status.clone().unwrap_or_default();
    let generation = policy.metadata.generation;
    let mut status = ImagePolicyStatus {
        observed_generation: generation,
        last_handled_reconcile_at: policy
            .annotations()
            .get(crate::api::RECONCILE_REQUESTED_AT)
            .cloned(),
        ..prev.clone()
    };
    let summary = match outcome {
        Ok(g) => {
            let name = object_name(&policy.name_any());
            status.parameters = Some(format!("{}/{name}", g.namespace));
            status.admission_policy = Some(name);
            status.known_images = g.facts.known;
            status.denied_images = g.facts.denied;
            Outcome::InSync(format!(
                "Enforced by the API server: {} image reference(s) known, {} denied",
                g.facts.known, g.facts.denied
            ))
        }
        Err(e) => Outcome::Failed(e),
    };
    status.conditions = summarize(&prev.conditions, generation, &summary, now);
    status
}

/// Pure: the Normal event of a reconcile: `Created` the first time, `Updated` when the facts'
/// counts changed, nothing otherwise.
pub fn event(policy: &ImagePolicy, gated: &Gated) -> Option<(&'static str, String)> {
    let counts = format!(
        "{} image reference(s) known, {} denied",
        gated.facts.known, gated.facts.denied
    );
    match policy.status.as_ref().filter(|s| s.admission_policy.is_some()) {
        None => Some((
            "Created",
            format!(
                "Admission policy {} enforced: {counts}",
                object_name(&policy.name_any())
            ),
        )),
        Some(s) if (s.known_images, s.denied_images) != (gated.facts.known, gated.facts.denied) => {
            Some(("Updated", format!("Facts updated: {counts}")))
        }
        Some(_) => None,
    }
}

/// The severities `severity` and worse, worst first.
pub fn at_or_above(severity: Severity) -> Vec<&'static str> {
    SEVERITIES
        .iter()
        .copied()
        .take_while(|s| *s != severity.as_str())
        .chain(std::iter::once(severity.as_str()))
        .collect()
}

#[cfg(test)]
mod tests;
