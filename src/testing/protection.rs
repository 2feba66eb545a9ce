//! LifecyclePolicy protection of images in use against the mock API server and the in-memory
//! backend: the tag goes on before the policy is put, with the protection rule first; a settled
//! reconcile writes nothing; a policy the rule does not fit is stalled before any call; with
//! protection off, no tag and no protection rule.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::{Harness, Routes, condition, ready_registry, with_status};
use crate::api::FINALIZER;
use crate::api::v1alpha1::LifecyclePolicy;
use crate::backend::ImageInfo;
use crate::controllers::lifecycle_policy::LifecyclePolicyController;
use crate::decide::protection::{MARK_PREFIX, cluster_token, mark};
use crate::inventory::{Entry, Kind, ObjectKey, reference};

const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn image(n: u8, tags: &[&str], days_ago: u64) -> ImageInfo {
    ImageInfo {
        digest: digest(n),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        pushed_at: Some(SystemTime::now() - Duration::from_secs(days_ago * 86_400)),
        last_pulled_at: None,
        archived: false,
        archived_at: None,
        last_activated_at: None,
        size_bytes: None,
        scan: None,
    }
}

fn policy(rules: Value, protection: Option<Value>) -> LifecyclePolicy {
    let mut spec = json!({"repositories": ["api"], "rules": rules});
    if let Some(p) = protection {
        spec["protection"] = p;
    }
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "LifecyclePolicy",
        "metadata": {"name": "std", "namespace": "team-a", "uid": "uid-std", "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z", "finalizers": [FINALIZER]},
        "spec": spec,
    }))
    .unwrap()
}

fn keep_one() -> Value {
    json!([{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}])
}

/// The mock cluster: Repository `team-a/api` Ready, images v1 (old, in use by a Deployment) and
/// v2 (new), the inventory listed.
fn harness(lp: &LifecyclePolicy) -> Harness {
    let mut routes = Routes::default();
    let repo = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": "api", "namespace": "team-a", "generation": 1},
        "spec": {"name": "team-a/api"},
        "status": {"repositoryArn": "arn:aws:ecr:us-east-1:123456789012:repository/team-a/api"}});
    routes.lists.insert(
        "/apis/ecr-operator.dev/v1alpha1/namespaces/team-a/repositories".into(),
        vec![repo],
    );
    routes.lists.insert(
        "/apis/ecr-operator.dev/v1alpha1/namespaces/team-a/lifecyclepolicies".into(),
        vec![serde_json::to_value(lp).unwrap()],
    );
    let h = Harness::new(routes, &[ready_registry("default")]);
    h.backend.seed_repository(
        "us-east-1",
        "team-a/api",
        vec![image(1, &["v1"], 30), image(2, &["v2"], 1)],
    );
    let inventory = &h.ctx.protection.inventory;
    for kind in Kind::ALL {
        inventory.replace(kind, None, vec![]);
    }
    let web = ObjectKey {
        kind: Kind::Deployment,
        namespace: "shop".into(),
        name: "web".into(),
    };
    let entry = Entry {
        images: vec![std::sync::Arc::new(
            reference::parse(&format!("{HOST}/team-a/api:v1")).unwrap(),
        )],
        owner: None,
        revision: None,
        active: true,
    };
    inventory.apply(web, Some(entry));
    h
}

fn lifecycle_text(h: &Harness) -> String {
    h.backend.state.lock().unwrap().lifecycle_policies["team-a/api"].clone()
}

#[tokio::test]
async fn the_image_in_use_is_tagged_before_the_protected_policy_is_put_then_silence() {
    let lp = policy(keep_one(), None);
    let h = harness(&lp);
    h.reconcile::<LifecyclePolicyController>(&lp).await.unwrap();
    assert_eq!(h.backend.writes(), ["PutImage", "PutLifecyclePolicy"]);
    let tags = h.backend.state.lock().unwrap().images["team-a/api"][0]
        .tags
        .clone();
    let ours = mark(&cluster_token(&h.ctx.tunables.cluster_id), &digest(1));
    assert_eq!(tags, ["v1".to_owned(), ours]);
    let text: Value = serde_json::from_str(&lifecycle_text(&h)).unwrap();
    assert_eq!(text["rules"][0]["rulePriority"], 1);
    assert_eq!(
        text["rules"][0]["selection"]["tagPrefixList"],
        json!([MARK_PREFIX])
    );
    assert_eq!(text["rules"][1]["rulePriority"], 2, "the user's rule follows");
    let requests = h.take_requests();
    let writes = Harness::status_writes(&requests);
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0]["repositories"][0]["protectedImages"], 1);
    let rule = &writes[0]["preview"]["rules"][0];
    assert_eq!(
        (rule["expiring"].as_i64(), rule["keptInUse"].as_i64()),
        (Some(0), Some(1)),
        "{rule}"
    );
    assert_eq!(rule["inUseBy"], json!(["Deployment shop/web"]));
    assert!(
        requests
            .iter()
            .any(|r| r.path.contains("events") && r.body.to_string().contains("Protected")),
        "a Protected event"
    );

    let settled = with_status(&lp, &writes[0]);
    h.reconcile::<LifecyclePolicyController>(&settled).await.unwrap();
    assert_eq!(h.backend.writes().len(), 2, "in sync: no tag, no put");
    assert!(h.take_requests().iter().all(|r| !r.is_write()));
}

#[tokio::test]
async fn a_policy_the_protection_rule_does_not_fit_is_stalled_before_any_call() {
    let rules = json!([{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": [MARK_PREFIX], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]);
    let lp = policy(rules, None);
    let h = harness(&lp);
    let result = h.reconcile::<LifecyclePolicyController>(&lp).await;
    assert!(result.is_err());
    assert!(h.backend.calls().is_empty(), "{:?}", h.backend.calls());
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Stalled"),
        Some(("True".into(), "ProtectionDoesNotFit".into()))
    );
}

#[tokio::test]
async fn with_protection_off_nothing_is_tagged_and_the_policy_is_the_users() {
    let lp = policy(keep_one(), Some(json!({"enabled": false})));
    let h = harness(&lp);
    h.reconcile::<LifecyclePolicyController>(&lp).await.unwrap();
    assert_eq!(h.backend.writes(), ["PutLifecyclePolicy"]);
    let text: Value = serde_json::from_str(&lifecycle_text(&h)).unwrap();
    assert_eq!(text["rules"].as_array().map(Vec::len), Some(1));
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(writes[0]["preview"]["rules"][0]["expiring"], 1, "v1 would expire");
    assert!(writes[0]["preview"]["rules"][0].get("keptInUse").is_none());
}
