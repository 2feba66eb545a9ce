//! PullSecret and ClusterPullSecret reconciles against the mock API server and the in-memory
//! backend.

use serde_json::{Value, json};

use super::{Harness, Recorded, Routes, class, condition, ready_registry, with_status};
use crate::api::FINALIZER;
use crate::api::v1alpha1::{ClusterPullSecret, PullSecret};
use crate::backend::BackendError;
use crate::controllers::pull_secret::{ClusterPullSecretController, PullSecretController};
use crate::error::ErrorClass;

fn pull_secret(finalizer: bool, registries: &[&str]) -> PullSecret {
    let finalizers = if finalizer { json!([FINALIZER]) } else { json!([]) };
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret",
        "metadata": {"name": "ecr", "namespace": "team-a", "uid": "uid-ecr", "generation": 1, "finalizers": finalizers},
        "spec": {"registries": registries},
    }))
    .unwrap()
}

fn secret_writes(requests: &[Recorded]) -> Vec<&Recorded> {
    requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/secrets/"))
        .collect()
}

#[tokio::test]
async fn the_first_reconcile_adds_the_finalizer_and_fetches_no_token() {
    let h = Harness::new(Routes::default(), &[ready_registry("default")]);
    h.reconcile::<PullSecretController>(&pull_secret(false, &["default"]))
        .await
        .unwrap();
    assert_eq!(h.take_requests().len(), 1);
    assert!(h.backend.calls().is_empty());
}

#[tokio::test]
async fn the_secret_is_written_once_and_an_in_sync_secret_is_left_alone() {
    let mut h = Harness::new(Routes::default(), &[ready_registry("default")]);
    let ps = pull_secret(true, &["default"]);
    h.reconcile::<PullSecretController>(&ps).await.unwrap();
    assert_eq!(h.backend.calls(), ["GetAuthorizationToken"]);
    let requests = h.take_requests();
    let written = secret_writes(&requests);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].path, "/api/v1/namespaces/team-a/secrets/ecr");
    assert_eq!(written[0].body["type"], "kubernetes.io/dockerconfigjson");
    assert!(
        !written[0].query.contains("force"),
        "a Secret not known as ours is never forced"
    );
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    // No token in the status.
    assert!(!status.to_string().contains("AWS:"));
    assert_eq!(
        Harness::events(&requests),
        [("Normal".to_owned(), "TokenRefreshed".to_owned())]
    );

    // The watch now holds our Secret: the next reconcile writes nothing and fetches no token.
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(written[0].body.clone()).unwrap();
    h.cache_secret(secret);
    h.reconcile::<PullSecretController>(&with_status(&ps, &status))
        .await
        .unwrap();
    assert_eq!(h.backend.calls().len(), 1, "the cached token serves it");
    let requests = h.take_requests();
    assert!(requests.iter().all(|r| !r.is_write()), "{requests:?}");
}

#[tokio::test]
async fn a_missing_registry_waits_and_a_throttled_token_retries() {
    let h = Harness::new(Routes::default(), &[ready_registry("default")]);
    let result = h
        .reconcile::<PullSecretController>(&pull_secret(true, &["default", "eu"]))
        .await;
    assert_eq!(class(&result), Some(ErrorClass::Waiting));
    let status = Harness::status_writes(&h.take_requests())[0].clone();
    assert_eq!(
        condition(&status, "Reconciling"),
        Some(("True".into(), "DependencyNotReady".into()))
    );
    assert!(h.backend.calls().is_empty());

    h.backend
        .fail_next("GetAuthorizationToken", BackendError::Throttled("slow".into()));
    let result = h
        .reconcile::<PullSecretController>(&pull_secret(true, &["default"]))
        .await;
    assert_eq!(class(&result), Some(ErrorClass::Transient));
    assert!(
        secret_writes(&h.take_requests()).is_empty(),
        "no Secret without a token"
    );
}

#[tokio::test]
async fn a_foreign_secret_of_that_name_stalls_with_secret_exists() {
    let mut h = Harness::new(Routes::default(), &[ready_registry("default")]);
    let mut theirs: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "ecr", "namespace": "team-a", "labels": {"app.kubernetes.io/managed-by": "ecr-operator"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "someone-else"}]},
    }))
    .unwrap();
    theirs.type_ = Some("Opaque".into());
    h.cache_secret(theirs);
    let result = h
        .reconcile::<PullSecretController>(&pull_secret(true, &["default"]))
        .await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    let requests = h.take_requests();
    assert!(secret_writes(&requests).is_empty());
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Stalled"),
        Some(("True".into(), "SecretExists".into()))
    );
}

fn cluster_pull_secret() -> ClusterPullSecret {
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ClusterPullSecret",
        "metadata": {"name": "ecr-all", "uid": "uid-all", "generation": 1, "finalizers": [FINALIZER]},
        "spec": {"registries": ["default"], "namespaceSelector": {"matchLabels": {"pull": "yes"}}},
    }))
    .unwrap()
}

fn namespace(name: &str, pull: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"pull": if pull {"yes"} else {"no"}}}})
}

fn cluster_harness() -> Harness {
    let mut routes = Routes::default();
    routes.lists.insert(
        "/api/v1/namespaces".into(),
        vec![namespace("a", true), namespace("b", true), namespace("c", false)],
    );
    Harness::new(routes, &[ready_registry("default")])
}

#[tokio::test]
async fn the_cluster_secret_fans_out_to_matching_namespaces_with_one_token() {
    let h = cluster_harness();
    let cps = cluster_pull_secret();
    h.reconcile::<ClusterPullSecretController>(&cps).await.unwrap();
    assert_eq!(h.backend.calls(), ["GetAuthorizationToken"]);
    let requests = h.take_requests();
    let paths: Vec<&str> = secret_writes(&requests).iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/a/secrets/ecr-all",
            "/api/v1/namespaces/b/secrets/ecr-all"
        ]
    );
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(status["namespaceCount"], 2);
    assert_eq!(
        condition(&status, "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    // The field manager its objects were first written with.
    let w = requests.iter().find(|r| r.is_status_write()).unwrap();
    assert_eq!(w.field_manager().as_deref(), Some("ecr-operator/pull-secret"));
}

#[tokio::test]
async fn a_partial_fan_out_keeps_the_root_causes_reason_and_counts_the_namespaces() {
    let mut h = cluster_harness();
    let foreign: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "ecr-all", "namespace": "b", "labels": {"app.kubernetes.io/managed-by": "ecr-operator"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "someone-else"}]},
    }))
    .unwrap();
    h.cache_secret(foreign);
    let result = h
        .reconcile::<ClusterPullSecretController>(&cluster_pull_secret())
        .await;
    assert_eq!(
        result.as_ref().unwrap_err().reason(),
        "SecretExists",
        "not a synthetic InvalidSpec"
    );
    let requests = h.take_requests();
    assert_eq!(secret_writes(&requests).len(), 1, "namespace a is still served");
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Stalled"),
        Some(("True".into(), "SecretExists".into()))
    );
    assert_eq!(status["failedNamespaces"], json!(["b"]));
    assert!(
        status["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("1 of 2 namespaces failed, first b")
    );
}

#[tokio::test]
async fn a_suspended_cluster_pull_secret_calls_nothing() {
    let h = cluster_harness();
    let mut cps = cluster_pull_secret();
    cps.spec.suspend = true;
    h.reconcile::<ClusterPullSecretController>(&cps).await.unwrap();
    assert!(h.backend.calls().is_empty());
    let requests = h.take_requests();
    // Only its own status: no Secret, no ServiceAccount is touched.
    assert!(
        requests
            .iter()
            .filter(|r| r.is_write())
            .all(|r| r.is_status_write() || r.path.contains("/events")),
        "{requests:?}"
    );
    let writes = Harness::status_writes(&requests);
    assert_eq!(writes.len(), 1);
    assert_eq!(
        condition(&writes[0], "Suspended"),
        Some(("True".into(), "Suspended".into()))
    );
    assert_eq!(writes[0]["observedGeneration"], json!(cps.metadata.generation));
}

#[tokio::test]
async fn a_throttled_token_fails_the_whole_fan_out_transiently() {
    let h = cluster_harness();
    h.backend
        .fail_next("GetAuthorizationToken", BackendError::Throttled("slow".into()));
    let result = h
        .reconcile::<ClusterPullSecretController>(&cluster_pull_secret())
        .await;
    assert_eq!(class(&result), Some(ErrorClass::Transient));
    let requests = h.take_requests();
    assert!(secret_writes(&requests).is_empty());
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Reconciling"),
        Some(("True".into(), "ProgressingWithRetry".into()))
    );
}

/// A `namespaceSelector` stored before the selector rules: Stalled `InvalidSpec` naming the bad
/// operator, before any ECR call and before any Secret is written, even when `namespaces.include`
/// would keep every namespace from reaching the selector.
#[tokio::test]
async fn an_invalid_namespace_selector_stalls_before_any_ecr_call() {
    for include in [None, Some(json!(["c"]))] {
        let h = cluster_harness();
        let mut cps = cluster_pull_secret();
        cps.spec.namespace_selector = serde_json::from_value(json!({"matchExpressions": [
            {"key": "pull", "operator": "Equals", "values": ["yes"]}]}))
        .unwrap();
        cps.spec.namespaces = include.map(|i| serde_json::from_value(json!({"include": i})).unwrap());
        let result = h.reconcile::<ClusterPullSecretController>(&cps).await;
        assert_eq!(class(&result), Some(ErrorClass::Stalled));
        assert!(h.backend.calls().is_empty(), "{:?}", h.backend.calls());
        let requests = h.take_requests();
        assert!(secret_writes(&requests).is_empty());
        let status = Harness::status_writes(&requests)[0].clone();
        assert_eq!(
            condition(&status, "Stalled"),
            Some(("True".into(), "InvalidSpec".into()))
        );
        let message = status["conditions"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("invalid namespaceSelector: matchExpressions[].operator must be one of In, NotIn, Exists, DoesNotExist (matchExpressions[0].operator is \"Equals\")"),
            "{message}"
        );
    }
}

fn service_account(namespace: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"}})
}

fn service_account_patches(requests: &[Recorded]) -> Vec<&str> {
    requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/serviceaccounts/"))
        .map(|r| r.path.as_str())
        .collect()
}

/// A PullSecret naming a ServiceAccount that does not exist: the Secret is still written and the
/// existing account still gets it, but the object waits (`Reconciling`, `ServiceAccountNotFound`,
/// naming the account) with one Warning; it is not retried on a timer (the ServiceAccount watch
/// re-queues it), a repeat reconcile writes and publishes nothing, and the account appearing
/// makes it Ready.
#[tokio::test]
async fn a_missing_service_account_is_reported_and_the_secret_still_written() {
    let mut h = Harness::new(Routes::default(), &[ready_registry("default")]);
    let sa = |name| {
        serde_json::from_value::<k8s_openapi::api::core::v1::ServiceAccount>(service_account("team-a", name))
            .unwrap()
    };
    h.serve(&sa("default"));
    let mut ps = pull_secret(true, &["default"]);
    ps.spec.service_accounts = vec!["default".into(), "runner".into()];
    let action = h.reconcile::<PullSecretController>(&ps).await.unwrap();
    assert_ne!(
        action,
        kube::runtime::controller::Action::requeue(h.ctx.tunables.waiting_requeue),
        "not polled: the ServiceAccount watch re-queues it"
    );
    let requests = h.take_requests();
    assert_eq!(secret_writes(&requests).len(), 1, "the Secret is written anyway");
    assert_eq!(
        service_account_patches(&requests),
        ["/api/v1/namespaces/team-a/serviceaccounts/default"]
    );
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Ready"),
        Some(("False".into(), "ServiceAccountNotFound".into()))
    );
    assert_eq!(
        condition(&status, "Reconciling"),
        Some(("True".into(), "ServiceAccountNotFound".into()))
    );
    let message = status["conditions"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("ServiceAccount runner does not exist in namespace team-a"),
        "{message}"
    );
    assert!(
        status["expiresAt"].is_string(),
        "the Secret's status is still reported"
    );
    assert_eq!(
        Harness::events(&requests),
        [
            ("Normal".to_owned(), "TokenRefreshed".to_owned()),
            ("Warning".to_owned(), "ServiceAccountNotFound".to_owned())
        ]
    );

    // Again, as stored (the Secret cached, the entry in place): nothing is written or published.
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(secret_writes(&requests)[0].body.clone()).unwrap();
    h.cache_secret(secret);
    let mut with_entry = sa("default");
    with_entry.image_pull_secrets = Some(vec![k8s_openapi::api::core::v1::LocalObjectReference {
        name: "ecr".into(),
    }]);
    h.serve(&with_entry);
    let stored = with_status(&ps, &status);
    h.reconcile::<PullSecretController>(&stored).await.unwrap();
    let requests = h.take_requests();
    assert!(requests.iter().all(|r| !r.is_write()), "{requests:?}");

    // The account appears: it gets the entry and the PullSecret is Ready, with no Warning.
    h.serve(&sa("runner"));
    h.reconcile::<PullSecretController>(&stored).await.unwrap();
    let requests = h.take_requests();
    assert_eq!(
        service_account_patches(&requests),
        ["/api/v1/namespaces/team-a/serviceaccounts/runner"]
    );
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    assert_eq!(condition(&status, "Reconciling"), None);
    assert!(Harness::events(&requests).is_empty());
}

/// `*` never reports a missing ServiceAccount, even in a namespace that has none.
#[tokio::test]
async fn every_service_account_of_an_empty_namespace_is_nothing_missing() {
    let mut routes = Routes::default();
    routes
        .lists
        .insert("/api/v1/namespaces/team-a/serviceaccounts".into(), vec![]);
    let h = Harness::new(routes, &[ready_registry("default")]);
    let mut ps = pull_secret(true, &["default"]);
    ps.spec.service_accounts = vec!["*".into()];
    h.reconcile::<PullSecretController>(&ps).await.unwrap();
    let status = Harness::status_writes(&h.take_requests())[0].clone();
    assert_eq!(
        condition(&status, "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
}

/// A ClusterPullSecret whose `namespaces.include` names a namespace that does not exist: the
/// others are served, and it waits (`NamespaceNotFound`, naming it) with one Warning; with a
/// named ServiceAccount missing in a served namespace, the message says that too.
#[tokio::test]
async fn an_included_namespace_that_does_not_exist_is_reported() {
    let h = cluster_harness();
    h.routes.lock().unwrap().objects.insert(
        "/api/v1/namespaces/a/serviceaccounts/builder".into(),
        service_account("a", "builder"),
    );
    let mut cps = cluster_pull_secret();
    cps.spec.namespaces = serde_json::from_value(json!({"include": ["a", "b", "team-x"]})).unwrap();
    cps.spec.service_accounts = vec!["builder".into()];
    let action = h.reconcile::<ClusterPullSecretController>(&cps).await.unwrap();
    assert_ne!(
        action,
        kube::runtime::controller::Action::requeue(h.ctx.tunables.waiting_requeue)
    );
    let requests = h.take_requests();
    let paths: Vec<&str> = secret_writes(&requests).iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/a/secrets/ecr-all",
            "/api/v1/namespaces/b/secrets/ecr-all"
        ]
    );
    assert_eq!(
        service_account_patches(&requests),
        ["/api/v1/namespaces/a/serviceaccounts/builder"]
    );
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Reconciling"),
        Some(("True".into(), "NamespaceNotFound".into()))
    );
    assert_eq!(status["namespaceCount"], 2);
    assert_eq!(status["failedNamespaces"], Value::Null, "nothing failed");
    let message = status["conditions"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("namespaces.include names team-x, which does not exist")
            && message.contains("ServiceAccount builder does not exist in namespace b")
            && message.ends_with("Secret ecr-all is in 2 namespaces"),
        "{message}"
    );
    assert_eq!(
        Harness::events(&requests),
        [
            ("Normal".to_owned(), "TokenRefreshed".to_owned()),
            ("Warning".to_owned(), "NamespaceNotFound".to_owned())
        ]
    );

    // Only the ServiceAccount is missing: its own reason.
    cps.spec.namespaces = serde_json::from_value(json!({"include": ["a", "b"]})).unwrap();
    h.reconcile::<ClusterPullSecretController>(&cps).await.unwrap();
    let status = Harness::status_writes(&h.take_requests())[0].clone();
    assert_eq!(
        condition(&status, "Reconciling"),
        Some(("True".into(), "ServiceAccountNotFound".into()))
    );
}

/// `namespaceSelector: {}` serves every namespace but the cluster's own three; a Secret an
/// earlier version put in kube-system is removed; `namespaces.include` naming kube-system serves
/// it.
#[tokio::test]
async fn an_empty_selector_leaves_the_system_namespaces_alone_unless_included() {
    let mut routes = Routes::default();
    let plain = |name: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    routes.lists.insert(
        "/api/v1/namespaces".into(),
        ["a", "default", "kube-node-lease", "kube-public", "kube-system"]
            .into_iter()
            .map(plain)
            .collect(),
    );
    let mut h = Harness::new(routes, &[ready_registry("default")]);
    let mut cps = cluster_pull_secret();
    cps.spec.namespace_selector = Some(Default::default());
    let earlier: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "ecr-all", "namespace": "kube-system",
            "labels": {"app.kubernetes.io/managed-by": "ecr-operator", "ecr-operator.dev/clusterpullsecret": "ecr-all"},
            "ownerReferences": [{"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ClusterPullSecret", "name": "ecr-all", "uid": "uid-all", "controller": true}]},
    }))
    .unwrap();
    h.cache_secret(earlier);
    h.reconcile::<ClusterPullSecretController>(&cps).await.unwrap();
    let requests = h.take_requests();
    let paths: Vec<&str> = secret_writes(&requests).iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/a/secrets/ecr-all",
            "/api/v1/namespaces/default/secrets/ecr-all"
        ]
    );
    let deleted: Vec<&str> = requests
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(deleted, ["/api/v1/namespaces/kube-system/secrets/ecr-all"]);
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(status["namespaceCount"], 2);
    assert_eq!(
        condition(&status, "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );

    cps.spec.namespaces = serde_json::from_value(json!({"include": ["kube-system"]})).unwrap();
    h.reconcile::<ClusterPullSecretController>(&cps).await.unwrap();
    let requests = h.take_requests();
    let paths: Vec<&str> = secret_writes(&requests).iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/api/v1/namespaces/kube-system/secrets/ecr-all"]);
}

/// The `auths` hosts of a written pull Secret.
fn auths(written: &Recorded) -> Vec<String> {
    use base64::Engine;
    let encoded = written.body["data"][".dockerconfigjson"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    let config: Value = serde_json::from_slice(&bytes).unwrap();
    config["auths"].as_object().unwrap().keys().cloned().collect()
}

/// `registries` names what the Secret holds: a Registry removed from the list leaves no `auths`
/// entry behind (the Secret is rendered whole from the list and rewritten).
#[tokio::test]
async fn a_registry_removed_from_the_list_leaves_no_entry_in_the_secret() {
    let mut west = ready_registry("west");
    west.spec.region = "eu-west-1".into();
    west.status.as_mut().unwrap().registry_host = Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com".into());
    let mut h = Harness::new(Routes::default(), &[ready_registry("default"), west]);
    let both = pull_secret(true, &["default", "west"]);
    h.reconcile::<PullSecretController>(&both).await.unwrap();
    let requests = h.take_requests();
    let written = secret_writes(&requests);
    assert_eq!(
        auths(written[0]),
        [
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        ]
    );
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(written[0].body.clone()).unwrap();
    h.cache_secret(secret);
    let status = Harness::status_writes(&requests)[0].clone();

    let mut one = with_status(&both, &status);
    one.spec.registries = vec!["default".into()];
    one.metadata.generation = Some(2);
    h.reconcile::<PullSecretController>(&one).await.unwrap();
    let requests = h.take_requests();
    let written = secret_writes(&requests);
    assert_eq!(written.len(), 1, "rewritten");
    assert_eq!(
        auths(written[0]),
        ["123456789012.dkr.ecr.us-east-1.amazonaws.com"]
    );
    let status = &Harness::status_writes(&requests)[0];
    assert_eq!(status["registries"].as_array().map(Vec::len), Some(1));
}

/// A ServiceAccount dropped from `serviceAccounts` loses the operator's entry (it used to keep
/// it, even after the PullSecret was deleted), and deletion removes the entry from every
/// ServiceAccount of the namespace that holds it, named or not; other entries are never touched.
#[tokio::test]
async fn a_service_account_dropped_from_the_list_loses_the_entry() {
    let h = Harness::new(Routes::default(), &[ready_registry("default")]);
    let sa = |name: &str, entries: &[&str]| {
        let mut sa: k8s_openapi::api::core::v1::ServiceAccount =
            serde_json::from_value(service_account("team-a", name)).unwrap();
        sa.image_pull_secrets = Some(
            entries
                .iter()
                .map(|n| k8s_openapi::api::core::v1::LocalObjectReference { name: (*n).into() })
                .collect(),
        );
        sa
    };
    // builder was named before and holds our entry ("ecr") next to someone else's.
    h.serve(&sa("builder", &["other", "ecr"]));
    h.serve(&sa("runner", &[]));
    let mut ps = pull_secret(true, &["default"]);
    ps.spec.service_accounts = vec!["runner".into()];
    h.reconcile::<PullSecretController>(&ps).await.unwrap();
    let requests = h.take_requests();
    let patches: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/serviceaccounts/"))
        .collect();
    assert_eq!(patches.len(), 2, "{patches:?}");
    let builder = patches.iter().find(|r| r.path.ends_with("/builder")).unwrap();
    assert_eq!(
        builder.body[2],
        json!({"op": "remove", "path": "/imagePullSecrets/1"}),
        "only our entry, at its index, guarded by a test of its name: {}",
        builder.body
    );
    assert_eq!(builder.body[1]["value"], "ecr");
    let runner = patches.iter().find(|r| r.path.ends_with("/runner")).unwrap();
    assert_eq!(runner.body[1]["op"], "add");
}
