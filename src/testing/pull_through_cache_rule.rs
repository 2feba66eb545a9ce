//! PullThroughCacheRule reconciles against the mock API server and the in-memory backend.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Harness, Routes, class, condition, ready_registry, with_status};
use crate::api::v1alpha1::PullThroughCacheRule;
use crate::api::{FINALIZER, OWNER_TAG};
use crate::backend::BackendError;
use crate::controllers::pull_through_cache_rule::PullThroughCacheRuleController;
use crate::error::ErrorClass;

fn rule() -> PullThroughCacheRule {
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullThroughCacheRule",
        "metadata": {"name": "hub", "uid": "uid-hub", "generation": 1, "finalizers": [FINALIZER]},
        "spec": {"ecrRepositoryPrefix": "docker-hub", "upstreamRegistry": "docker-hub",
            "upstreamRegistryUrl": "registry-1.docker.io",
            "credentialsSecretRef": {"name": "hub-creds", "namespace": "ops"}},
    }))
    .unwrap()
}

fn credentials(token: &str) -> serde_json::Value {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hub-creds", "namespace": "ops"},
        "data": {"username": b64("bot"), "accessToken": b64(token)}})
}

fn harness(token: &str) -> Harness {
    let mut routes = Routes::default();
    routes.objects.insert(
        "/api/v1/namespaces/ops/secrets/hub-creds".into(),
        credentials(token),
    );
    Harness::new(routes, &[ready_registry("default")])
}

fn secret_value(h: &Harness) -> serde_json::Value {
    let state = h.backend.state.lock().unwrap();
    let (_, _, value) = state.secrets.get("ecr-pullthroughcache/hub").unwrap();
    serde_json::from_str(value).unwrap()
}

#[tokio::test]
async fn a_new_rule_copies_the_credentials_then_a_settled_one_writes_nothing() {
    let h = harness("t0k");
    let r = rule();
    h.reconcile::<PullThroughCacheRuleController>(&r).await.unwrap();
    assert_eq!(h.backend.writes(), ["CreateSecret", "CreatePullThroughCacheRule"]);
    assert_eq!(secret_value(&h), json!({"username": "bot", "accessToken": "t0k"}));
    {
        let state = h.backend.state.lock().unwrap();
        let (arn, tags, _) = state.secrets.get("ecr-pullthroughcache/hub").unwrap();
        assert_eq!(
            tags.get(OWNER_TAG).map(String::as_str),
            Some("c1/pullthroughcacherule/hub")
        );
        let created = state.cache_rules.get("docker-hub").unwrap();
        assert_eq!(
            created.credential_arn.as_ref(),
            Some(arn),
            "the rule uses the secret written"
        );
    }
    let requests = h.take_requests();
    let writes = Harness::status_writes(&requests);
    assert_eq!(writes.len(), 1);
    assert_eq!(
        condition(&writes[0], "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    assert_eq!(writes[0]["created"], true);
    assert_eq!(writes[0]["secretCreated"], true);
    assert_eq!(writes[0]["upstreamValid"], "True");
    assert_eq!(writes[0]["createdAt"], "2023-11-14T22:13:20Z");
    let status_write = requests.iter().find(|r| r.is_status_write()).unwrap();
    assert_eq!(
        status_write.field_manager().as_deref(),
        Some("ecr-operator/pull-through-cache")
    );
    assert_eq!(
        Harness::events(&requests),
        [("Normal".to_owned(), "Created".to_owned())]
    );
    // No token in the status or the events.
    assert!(!requests.iter().any(|r| r.body.to_string().contains("t0k")));

    // In sync: only reads, no write to either side.
    let settled = with_status(&r, &writes[0]);
    let before = h.backend.writes().len();
    h.reconcile::<PullThroughCacheRuleController>(&settled)
        .await
        .unwrap();
    assert_eq!(h.backend.writes().len(), before, "{:?}", h.backend.calls());
    assert!(!h.take_requests().iter().any(|r| r.is_write()));
}

#[tokio::test]
async fn a_changed_kubernetes_secret_is_one_put_and_the_rule_is_left_alone() {
    let h = harness("t0k");
    let r = rule();
    h.reconcile::<PullThroughCacheRuleController>(&r).await.unwrap();
    let settled = with_status(&r, &Harness::status_writes(&h.take_requests())[0]);
    h.routes.lock().unwrap().objects.insert(
        "/api/v1/namespaces/ops/secrets/hub-creds".into(),
        credentials("rotated"),
    );
    let before = h.backend.writes().len();
    h.reconcile::<PullThroughCacheRuleController>(&settled)
        .await
        .unwrap();
    assert_eq!(h.backend.writes()[before..], ["PutSecretValue"]);
    assert_eq!(secret_value(&h)["accessToken"], "rotated");
    let events = Harness::events(&h.take_requests());
    assert_eq!(events, [("Normal".to_owned(), "Updated".to_owned())]);
}

#[tokio::test]
async fn a_throttled_create_is_transient_and_invalid_credentials_stall() {
    let h = harness("t0k");
    h.backend.fail_next(
        "CreatePullThroughCacheRule",
        BackendError::Throttled("slow down".into()),
    );
    let result = h.reconcile::<PullThroughCacheRuleController>(&rule()).await;
    assert_eq!(class(&result), Some(ErrorClass::Transient));

    h.take_requests();
    h.backend.state.lock().unwrap().cache_rule_failure = Some("Invalid credentials".into());
    let result = h.reconcile::<PullThroughCacheRuleController>(&rule()).await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Stalled"),
        Some(("True".into(), "UpstreamInvalid".into()))
    );
    assert_eq!(writes[0]["upstreamValid"], "False");
}

#[tokio::test]
async fn a_secret_without_an_access_token_stalls_before_any_write() {
    let mut routes = Routes::default();
    let mut secret = credentials("x");
    secret["data"].as_object_mut().unwrap().remove("accessToken");
    routes
        .objects
        .insert("/api/v1/namespaces/ops/secrets/hub-creds".into(), secret);
    let h = Harness::new(routes, &[ready_registry("default")]);
    let result = h.reconcile::<PullThroughCacheRuleController>(&rule()).await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    assert!(h.backend.writes().is_empty(), "{:?}", h.backend.calls());
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Stalled"),
        Some(("True".into(), "InvalidSpec".into()))
    );
}

#[tokio::test]
async fn deletion_removes_what_the_operator_created_and_leaves_a_pre_existing_secret() {
    // Created by the operator: the rule and the secret go.
    let h = harness("t0k");
    let r = rule();
    h.reconcile::<PullThroughCacheRuleController>(&r).await.unwrap();
    let mut deleting = with_status(&r, &Harness::status_writes(&h.take_requests())[0]);
    deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(2_000_000_000).unwrap(),
    ));
    h.reconcile::<PullThroughCacheRuleController>(&deleting)
        .await
        .unwrap();
    {
        let state = h.backend.state.lock().unwrap();
        assert!(state.cache_rules.is_empty());
        assert!(state.secrets.is_empty());
    }

    // A secret of that name existed before: kept in sync, never deleted.
    let h = harness("t0k");
    h.backend.state.lock().unwrap().secrets.insert(
        "ecr-pullthroughcache/hub".into(),
        (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub-Pre123".into(),
            BTreeMap::new(),
            "{}".into(),
        ),
    );
    h.reconcile::<PullThroughCacheRuleController>(&r).await.unwrap();
    assert_eq!(
        h.backend.writes(),
        ["PutSecretValue", "CreatePullThroughCacheRule"]
    );
    let status = Harness::status_writes(&h.take_requests())[0].clone();
    assert_eq!(status["secretCreated"], false);
    let mut deleting = with_status(&r, &status);
    deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(2_000_000_000).unwrap(),
    ));
    h.reconcile::<PullThroughCacheRuleController>(&deleting)
        .await
        .unwrap();
    let state = h.backend.state.lock().unwrap();
    assert!(state.cache_rules.is_empty(), "the rule it created goes");
    assert!(
        state.secrets.contains_key("ecr-pullthroughcache/hub"),
        "the pre-existing secret stays"
    );
    assert!(!state.calls.contains(&"DeleteSecret"));
}

/// `rule()` renamed and created at `created` (seconds).
fn named(name: &str, created: i64) -> PullThroughCacheRule {
    let mut r = rule();
    r.metadata.name = Some(name.into());
    r.metadata.uid = Some(format!("uid-{name}"));
    r.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(created).unwrap(),
    ));
    r
}

#[tokio::test]
async fn a_second_object_for_the_same_prefix_writes_and_deletes_nothing() {
    let h = harness("t0k");
    let first = named("hub", 100);
    let second = named("hub-too", 200);
    h.routes.lock().unwrap().lists.insert(
        "/apis/ecr-operator.dev/v1alpha1/pullthroughcacherules".into(),
        vec![
            serde_json::to_value(&first).unwrap(),
            serde_json::to_value(&second).unwrap(),
        ],
    );
    h.reconcile::<PullThroughCacheRuleController>(&first)
        .await
        .unwrap();
    let rules_before = h.backend.state.lock().unwrap().cache_rules.clone();
    h.take_requests();
    let writes_before = h.backend.writes().len();

    let result = h.reconcile::<PullThroughCacheRuleController>(&second).await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    assert_eq!(h.backend.writes().len(), writes_before, "{:?}", h.backend.calls());
    let status = Harness::status_writes(&h.take_requests())[0].clone();
    let (_, reason) = condition(&status, "Stalled").unwrap();
    assert_eq!(reason, "Conflict");
    let message = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Stalled")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("PullThroughCacheRule hub (older)"), "{message}");

    // Even with a `created` recorded (say, before the older one existed), its deletion leaves
    // the rule the other object holds.
    let mut deleting = with_status(&second, &json!({"created": true, "secretCreated": true}));
    deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(2_000_000_000).unwrap(),
    ));
    h.reconcile::<PullThroughCacheRuleController>(&deleting)
        .await
        .unwrap();
    let state = h.backend.state.lock().unwrap();
    assert_eq!(state.cache_rules, rules_before);
    assert!(
        state.secrets.contains_key("ecr-pullthroughcache/hub"),
        "the holder's secret stays"
    );
}

#[tokio::test]
async fn a_secret_another_object_created_is_not_overwritten() {
    let h = harness("t0k");
    h.backend.state.lock().unwrap().secrets.insert(
        "ecr-pullthroughcache/hub".into(),
        (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub-Oth123".into(),
            BTreeMap::from([(
                OWNER_TAG.to_owned(),
                "other-cluster/pullthroughcacherule/hub".to_owned(),
            )]),
            r#"{"username":"them","accessToken":"theirs"}"#.into(),
        ),
    );
    let result = h.reconcile::<PullThroughCacheRuleController>(&rule()).await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    assert!(h.backend.writes().is_empty(), "{:?}", h.backend.calls());
    let status = Harness::status_writes(&h.take_requests())[0].clone();
    assert_eq!(
        condition(&status, "Stalled").map(|c| c.1).as_deref(),
        Some("Conflict")
    );
    assert_eq!(secret_value(&h)["accessToken"], "theirs");
}
