//! What reconciles cost in Kubernetes API reads, counted at the mock API server: the reads that
//! would grow with the number of objects (a Secret GET per user of a Registry, a Namespace LIST
//! per ClusterPullSecret reconcile) are made once, or served from a watch's store.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use super::{Harness, Recorded, Routes, condition, ready_registry};
use crate::api::FINALIZER;
use crate::api::v1alpha1::{ClusterPullSecret, PullSecret, Registry, Repository};
use crate::backend::Credentials;
use crate::controllers::pull_secret::{ClusterPullSecretController, PullSecretController};
use crate::controllers::registry::RegistryController;
use crate::controllers::repository::RepositoryController;

const SECRET_PATH: &str = "/api/v1/namespaces/ecr-operator/secrets/aws-keys";

/// A Ready Registry `default` whose static keys are in the Secret `ecr-operator/aws-keys`.
fn registry_with_keys() -> Registry {
    let mut r = ready_registry("default");
    r.spec.auth =
        serde_json::from_value(json!({"secretRef": {"namespace": "ecr-operator", "name": "aws-keys"}}))
            .unwrap();
    r.metadata.finalizers = Some(vec![FINALIZER.into()]);
    r
}

fn keys_secret(access_key_id: &str) -> Secret {
    let mut s: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "aws-keys", "namespace": "ecr-operator", "resourceVersion": access_key_id},
    }))
    .unwrap();
    s.data = Some(
        [
            ("accessKeyId", access_key_id),
            ("secretAccessKey", "not-a-real-secret"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect(),
    );
    s
}

fn repository(name: &str) -> Repository {
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": name, "namespace": "team-a", "uid": format!("uid-{name}"), "generation": 1,
            "finalizers": [FINALIZER]},
        "spec": {"name": format!("team-a/{name}")},
    }))
    .unwrap()
}

fn gets_of(requests: &[Recorded], path: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.method == "GET" && r.path == path)
        .count()
}

fn access_key_id(credentials: &Credentials) -> &str {
    match credentials {
        Credentials::Static(keys) => &keys.access_key_id,
        other => panic!("not static keys: {other:?}"),
    }
}

#[tokio::test]
async fn two_repositories_and_a_pull_secret_on_one_registry_with_static_keys_read_its_secret_once() {
    let registry = registry_with_keys();
    let h = Harness::new(Routes::default(), std::slice::from_ref(&registry));
    h.serve(&keys_secret("AKID1"));
    for name in ["api", "web"] {
        h.reconcile::<RepositoryController>(&repository(name))
            .await
            .unwrap();
    }
    let ps: PullSecret = serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret",
        "metadata": {"name": "ecr", "namespace": "team-a", "uid": "uid-ecr", "generation": 1,
            "finalizers": [FINALIZER]},
        "spec": {"registries": ["default"]},
    }))
    .unwrap();
    h.reconcile::<PullSecretController>(&ps).await.unwrap();
    let requests = h.take_requests();
    assert_eq!(gets_of(&requests, SECRET_PATH), 1, "{requests:?}");
    // They all reached ECR with those keys: both repositories exist, the token was fetched.
    let calls = h.backend.calls();
    assert_eq!(
        calls.iter().filter(|c| **c == "CreateRepository").count(),
        2,
        "{calls:?}"
    );
    assert!(calls.contains(&"GetAuthorizationToken"), "{calls:?}");
    // The resync of both: no read at all.
    for name in ["api", "web"] {
        h.reconcile::<RepositoryController>(&repository(name))
            .await
            .unwrap();
    }
    assert_eq!(gets_of(&h.take_requests(), SECRET_PATH), 0);
}

#[tokio::test]
async fn a_rotated_secret_is_read_by_the_registry_reconcile_and_then_used_by_its_users() {
    let registry = registry_with_keys();
    let h = Harness::new(Routes::default(), std::slice::from_ref(&registry));
    h.serve(&keys_secret("AKID1"));
    h.reconcile::<RepositoryController>(&repository("api"))
        .await
        .unwrap();
    assert_eq!(gets_of(&h.take_requests(), SECRET_PATH), 1);

    // The keys are rotated. Within the TTL a user still has the keys read before...
    h.serve(&keys_secret("AKID2"));
    let target = h.ctx.target(&registry).await.unwrap();
    assert_eq!(access_key_id(&target.credentials), "AKID1");
    assert_eq!(gets_of(&h.take_requests(), SECRET_PATH), 0);

    // ...until the Registry reconciles: it reads the Secret every time (one GET)...
    h.reconcile::<RegistryController>(&registry).await.unwrap();
    let requests = h.take_requests();
    assert_eq!(gets_of(&requests, SECRET_PATH), 1, "{requests:?}");
    let status = Harness::status_writes(&requests);
    assert_eq!(
        condition(&status[0], "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    // ...and every user reconcile from then on uses the new keys without a read of its own.
    h.reconcile::<RepositoryController>(&repository("api"))
        .await
        .unwrap();
    let target = h.ctx.target(&registry).await.unwrap();
    assert_eq!(access_key_id(&target.credentials), "AKID2");
    assert_eq!(gets_of(&h.take_requests(), SECRET_PATH), 0);
}

#[tokio::test]
async fn a_missing_credentials_secret_is_read_again_by_every_reconcile_until_it_exists() {
    let registry = registry_with_keys();
    let h = Harness::new(Routes::default(), std::slice::from_ref(&registry));
    for _ in 0..2 {
        let result = h.reconcile::<RepositoryController>(&repository("api")).await;
        assert_eq!(
            result.unwrap_err().reason(),
            "DependencyNotReady",
            "no Secret yet"
        );
    }
    assert_eq!(
        gets_of(&h.take_requests(), SECRET_PATH),
        2,
        "failures are not cached"
    );
    h.serve(&keys_secret("AKID1"));
    h.reconcile::<RepositoryController>(&repository("api"))
        .await
        .unwrap();
    assert_eq!(gets_of(&h.take_requests(), SECRET_PATH), 1);
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"pull": "yes"}}})
}

fn secret_writes(requests: &[Recorded]) -> Vec<String> {
    let mut paths: Vec<String> = requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/secrets/"))
        .map(|r| r.path.clone())
        .collect();
    paths.sort();
    paths
}

#[tokio::test]
async fn a_cluster_pull_secret_reconcile_makes_no_namespace_list_and_serves_a_namespace_its_watch_added() {
    let mut routes = Routes::default();
    let many: Vec<Value> = (0..30).map(|i| namespace(&format!("ns-{i:02}"))).collect();
    routes.lists.insert("/api/v1/namespaces".into(), many);
    let mut h = Harness::new(routes, &[ready_registry("default")]);
    let cps: ClusterPullSecret = serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ClusterPullSecret",
        "metadata": {"name": "ecr-all", "uid": "uid-all", "generation": 1, "finalizers": [FINALIZER]},
        "spec": {"registries": ["default"], "namespaceSelector": {"matchLabels": {"pull": "yes"}}},
    }))
    .unwrap();
    h.reconcile::<ClusterPullSecretController>(&cps).await.unwrap();
    let requests = h.take_requests();
    let namespace_reads: Vec<&Recorded> = requests
        .iter()
        .filter(|r| {
            r.method == "GET"
                && r.path.starts_with("/api/v1/namespaces")
                && !r.path.contains("/serviceaccounts")
        })
        .collect();
    assert!(namespace_reads.is_empty(), "{namespace_reads:?}");
    assert_eq!(secret_writes(&requests).len(), 30);
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(status["namespaceCount"], 30);

    // A namespace created later: the watch puts it in the store before it re-queues the
    // ClusterPullSecret, so the reconcile it causes serves it, still without a LIST.
    h.add_namespace(&namespace("late"));
    h.reconcile::<ClusterPullSecretController>(&cps).await.unwrap();
    let requests = h.take_requests();
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "GET" && r.path == "/api/v1/namespaces"),
        "{requests:?}"
    );
    assert!(
        secret_writes(&requests).contains(&"/api/v1/namespaces/late/secrets/ecr-all".to_owned()),
        "{:?}",
        secret_writes(&requests)
    );
}
