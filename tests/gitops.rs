//! `docs/gitops.md`'s Argo CD health check, run in a Lua 5.1 interpreter against the statuses the
//! operator writes (kstatus-shaped). The chart e2e test also runs it against real objects.

// Test code: helpers may unwrap (the standard forbids unwrap outside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use ecr_operator_testenv::gitops::{argocd_health, argocd_health_checks};
use serde_json::{Value, json};

fn object(generation: i64, status: Value) -> Value {
    json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
           "metadata": {"name": "web", "namespace": "shop", "generation": generation}, "status": status})
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2026-11-22T10:00:00Z", "observedGeneration": 2})
}

#[test]
fn docs_define_one_health_check_per_kind() {
    let kinds: BTreeSet<String> = argocd_health_checks()
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let expected: BTreeSet<String> = ecr_operator::api::crds()
        .into_iter()
        .map(|c| c.spec.names.kind)
        .collect();
    assert_eq!(kinds, expected);
}

#[test]
fn health_follows_kstatus() {
    let ready = condition("Ready", "True", "Succeeded", "ECR repository shop/web is in sync");
    let not_ready = condition(
        "Ready",
        "False",
        "DependencyNotReady",
        "Registry \"default\" is not ready",
    );
    let reconciling = condition("Reconciling", "True", "DependencyNotReady", "waiting");
    let stalled = condition("Stalled", "True", "OwnedElsewhere", "owned by other/web");
    let suspended = condition(
        "Suspended",
        "True",
        "Suspended",
        ecr_operator::status::SUSPENDED_MESSAGE,
    );
    let cases = [
        ("no status yet", object(1, Value::Null), "Progressing", "Waiting"),
        ("empty status", object(1, json!({})), "Progressing", "Waiting"),
        (
            "ready",
            object(2, json!({"observedGeneration": 2, "conditions": [ready]})),
            "Healthy",
            "in sync",
        ),
        (
            "ready for an older generation",
            object(3, json!({"observedGeneration": 2, "conditions": [ready]})),
            "Progressing",
            "generation 3",
        ),
        (
            "waiting",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [not_ready.clone(), reconciling]}),
            ),
            "Progressing",
            "not ready",
        ),
        (
            "stalled",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [condition("Ready", "False", "OwnedElsewhere", "x"), stalled]}),
            ),
            "Degraded",
            "OwnedElsewhere: owned by other/web",
        ),
        (
            "suspended",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [suspended.clone()]}),
            ),
            "Suspended",
            "spec.suspend is true",
        ),
        (
            // Suspended by an older generation: the new spec is not observed yet.
            "suspended for an older generation",
            object(
                3,
                json!({"observedGeneration": 2, "conditions": [suspended.clone()]}),
            ),
            "Progressing",
            "generation 3",
        ),
        (
            // Only Suspended=True says Suspended; a Ready=False is still progressing.
            "not ready for another reason",
            object(2, json!({"observedGeneration": 2, "conditions": [not_ready]})),
            "Progressing",
            "not ready",
        ),
        (
            // Suspended=False (as a suspension ends) says nothing: Ready decides.
            "no longer suspended",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [ready.clone(), condition("Suspended", "False", "Resumed", "x")]}),
            ),
            "Healthy",
            "in sync",
        ),
        (
            // A Stalled object is Degraded, whatever Ready says.
            "stalled while suspended",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [suspended, condition("Stalled", "True", "InvalidSpec", "bad")]}),
            ),
            "Degraded",
            "InvalidSpec: bad",
        ),
    ];
    for (kind, script) in argocd_health_checks().unwrap() {
        for (case, obj, status, message) in &cases {
            let (got, msg) = argocd_health(&script, obj).unwrap();
            assert_eq!(&got, status, "{kind}: {case}");
            assert!(msg.contains(message), "{kind}: {case}: {msg}");
        }
    }
}
