//! PullSecrets in the Argo CD formats against the mock API server: the Secret Argo CD reads,
//! no ServiceAccount touched, and the condition of a namespace where Argo CD does not run.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::json;

use super::{Harness, Routes, condition, ready_registry, with_status};
use crate::api::FINALIZER;
use crate::api::v1alpha1::PullSecret;
use crate::controllers::pull_secret::PullSecretController;

const ACCOUNTS: &str = "/api/v1/namespaces/argocd/serviceaccounts";

fn repository() -> PullSecret {
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret",
        "metadata": {"name": "ecr-charts", "namespace": "argocd", "uid": "uid-charts", "generation": 1, "finalizers": [FINALIZER]},
        "spec": {"registries": ["default"], "format": "argocd-repository", "argocd": {"project": "team-a"}},
    }))
    .unwrap()
}

fn harness(argocd_installed: bool) -> Harness {
    let mut routes = Routes::default();
    let accounts = if argocd_installed {
        vec![
            json!({"metadata": {"name": "argocd-repo-server", "namespace": "argocd",
            "labels": {"app.kubernetes.io/part-of": "argocd"}}}),
        ]
    } else {
        vec![]
    };
    routes.lists.insert(ACCOUNTS.into(), accounts);
    Harness::new(routes, &[ready_registry("default")])
}

/// The first reconcile applies an Opaque Secret with Argo CD's label and fields, looks for Argo
/// CD's ServiceAccounts by label (one LIST, at most one item) and patches none; Ready. With a
/// field another writer added, the next reconcile writes nothing.
#[tokio::test]
async fn an_argocd_repository_secret_is_written_with_argocds_fields_only() {
    let mut h = harness(true);
    let ps = repository();
    h.reconcile::<PullSecretController>(&ps).await.unwrap();
    let requests = h.take_requests();
    let writes: Vec<_> = requests
        .iter()
        .filter(|r| r.is_write() && !r.is_status_write())
        .collect();
    let secret = writes
        .iter()
        .find(|r| r.path == "/api/v1/namespaces/argocd/secrets/ecr-charts")
        .expect("the Secret is applied");
    assert_eq!(secret.body["type"], "Opaque");
    assert_eq!(
        secret.body["metadata"]["labels"]["argocd.argoproj.io/secret-type"],
        "repository"
    );
    let keys: Vec<&String> = secret.body["data"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "enableOCI",
            "name",
            "password",
            "project",
            "type",
            "url",
            "username"
        ]
    );
    assert!(
        writes.iter().all(|r| !r.path.contains("/serviceaccounts")),
        "an Argo CD Secret goes to no ServiceAccount: {writes:?}"
    );
    let lists: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path == ACCOUNTS)
        .collect();
    assert_eq!(lists.len(), 1, "{requests:?}");
    assert!(
        lists[0]
            .query
            .contains("labelSelector=app.kubernetes.io%2Fpart-of%3Dargocd")
            && lists[0].query.contains("limit=1"),
        "{}",
        lists[0].query
    );
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    assert!(!status.to_string().contains("auth-token"));

    // Argo CD (or anyone) adds a field: ours are unchanged, so nothing is written.
    let mut stored: Secret = serde_json::from_value(secret.body.clone()).unwrap();
    stored
        .data
        .get_or_insert_default()
        .insert("insecure".into(), ByteString(b"false".to_vec()));
    h.cache_secret(stored);
    h.reconcile::<PullSecretController>(&with_status(&ps, &status))
        .await
        .unwrap();
    let requests = h.take_requests();
    assert!(requests.iter().all(|r| !r.is_write()), "{requests:?}");
}

/// Where Argo CD does not run, the Secret is still written, and the PullSecret waits with
/// `ArgoCdNotFound` naming the namespace, with one Warning; not an error of the reconcile.
#[tokio::test]
async fn a_namespace_without_argocd_is_reported() {
    let h = harness(false);
    h.reconcile::<PullSecretController>(&repository()).await.unwrap();
    let requests = h.take_requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "PATCH" && r.path.ends_with("/secrets/ecr-charts"))
    );
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Reconciling"),
        Some(("True".into(), "ArgoCdNotFound".into()))
    );
    let message = status["conditions"][0]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("Argo CD does not run in namespace argocd"),
        "{message}"
    );
    assert!(
        Harness::events(&requests).contains(&("Warning".to_owned(), "ArgoCdNotFound".to_owned())),
        "{:?}",
        Harness::events(&requests)
    );
}
