//! PullSecrets with `spec.identity` against the mock API server and the in-memory backend: the
//! ServiceAccount read, the TokenRequest (audience, expiry), one STS exchange per ServiceAccount
//! and session, and the status naming the role; what is refused, and the Registry that requires
//! an identity.

use serde_json::{Value, json};

use super::{Harness, Routes, class, condition, ready_registry, with_status};
use crate::api::FINALIZER;
use crate::api::v1alpha1::{PullSecret, Registry};
use crate::controllers::pull_secret::PullSecretController;
use crate::error::ErrorClass;

const ROLE: &str = "arn:aws:iam::123456789012:role/team-a-pull";

fn pull_secret(ns: &str, identity: Value) -> PullSecret {
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret",
        "metadata": {"name": "ecr", "namespace": ns, "uid": format!("uid-{ns}"), "generation": 1, "finalizers": [FINALIZER]},
        "spec": {"registries": ["default"], "identity": identity},
    }))
    .unwrap()
}

fn service_account(ns: &str, name: &str, role: Option<&str>) -> (String, Value) {
    let annotations = role.map_or(json!({}), |r| json!({"eks.amazonaws.com/role-arn": r}));
    (
        format!("/api/v1/namespaces/{ns}/serviceaccounts/{name}"),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": ns, "annotations": annotations}}),
    )
}

fn harness(accounts: &[(String, Value)], registries: &[Registry]) -> Harness {
    let mut routes = Routes::default();
    routes.objects.extend(accounts.iter().cloned());
    Harness::new(routes, registries)
}

/// The first reconcile reads the ServiceAccount, requests a token for it with audience
/// `sts.amazonaws.com` and a 600 s expiry, exchanges it with STS as a session naming the tenant,
/// gets the ECR token with those credentials and shows the role in the status. In sync, the next
/// reconcile makes no TokenRequest and no STS call; a second namespace with the same role makes
/// its own exchange but shares the ECR token; another role gets its own.
#[tokio::test]
async fn a_tenant_identity_is_exchanged_once_per_service_account_and_tokens_are_shared_per_role() {
    let mut h = harness(
        &[
            service_account("team-a", "puller", Some(ROLE)),
            service_account("team-b", "puller", Some(ROLE)),
            service_account("team-c", "puller", None),
        ],
        &[ready_registry("default")],
    );
    let ps = pull_secret("team-a", json!({"serviceAccountName": "puller"}));
    h.reconcile::<PullSecretController>(&ps).await.unwrap();
    let requests = h.take_requests();
    let tokens: Vec<_> = requests.iter().filter(|r| r.path.ends_with("/token")).collect();
    assert_eq!(tokens.len(), 1, "{requests:?}");
    assert_eq!(tokens[0].method, "POST");
    assert_eq!(
        tokens[0].path,
        "/api/v1/namespaces/team-a/serviceaccounts/puller/token"
    );
    assert_eq!(tokens[0].body["spec"]["audiences"], json!(["sts.amazonaws.com"]));
    assert_eq!(tokens[0].body["spec"]["expirationSeconds"], 600);
    assert_eq!(
        h.backend.calls(),
        ["AssumeRoleWithWebIdentity", "GetAuthorizationToken"]
    );
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    assert_eq!(status["roleArn"], ROLE);
    let text = status.to_string();
    assert!(!text.contains("mock-jwt") && !text.contains("fake-secret") && !text.contains("fake-session"));

    // In sync: the session and the token serve it.
    let secret = requests
        .iter()
        .find(|r| r.method == "PATCH" && r.path.ends_with("/secrets/ecr"))
        .unwrap();
    h.cache_secret(serde_json::from_value(secret.body.clone()).unwrap());
    h.reconcile::<PullSecretController>(&with_status(&ps, &status))
        .await
        .unwrap();
    let requests = h.take_requests();
    assert!(requests.iter().all(|r| !r.is_write()), "{requests:?}");
    assert_eq!(h.backend.calls().len(), 2);

    // Another namespace, same role: its own exchange (its ServiceAccount must be trusted too),
    // the same ECR token.
    h.reconcile::<PullSecretController>(&pull_secret("team-b", json!({"serviceAccountName": "puller"})))
        .await
        .unwrap();
    assert_eq!(
        h.backend.calls()[2..],
        ["AssumeRoleWithWebIdentity"],
        "no second GetAuthorizationToken for the same role"
    );
    // Another role (from the spec): its own token.
    let other = "arn:aws:iam::123456789012:role/team-c-pull";
    h.reconcile::<PullSecretController>(&pull_secret(
        "team-c",
        json!({"serviceAccountName": "puller", "roleArn": other}),
    ))
    .await
    .unwrap();
    assert_eq!(
        h.backend.calls()[3..],
        ["AssumeRoleWithWebIdentity", "GetAuthorizationToken"]
    );
}

/// A ServiceAccount that does not exist, one without a role, and a Registry that requires an
/// identity: each Stalled with its reason, before any TokenRequest or AWS call.
#[tokio::test]
async fn what_cannot_be_assumed_stalls_before_any_token() {
    let tenants_only: Registry = {
        let mut r = ready_registry("default");
        r.spec.require_tenant_identity = true;
        r
    };
    let cases: Vec<(PullSecret, Vec<Registry>, &str)> = vec![
        (
            pull_secret("team-a", json!({"serviceAccountName": "nobody"})),
            vec![ready_registry("default")],
            "IdentityNotFound",
        ),
        (
            pull_secret("team-a", json!({"serviceAccountName": "no-role"})),
            vec![ready_registry("default")],
            "InvalidIdentity",
        ),
        (
            serde_json::from_value(json!({
                "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret",
                "metadata": {"name": "ecr", "namespace": "team-a", "uid": "u", "generation": 1, "finalizers": [FINALIZER]},
                "spec": {"registries": ["default"]}}))
            .unwrap(),
            vec![tenants_only],
            "TenantIdentityRequired",
        ),
    ];
    for (ps, registries, reason) in cases {
        let h = harness(&[service_account("team-a", "no-role", None)], &registries);
        let result = h.reconcile::<PullSecretController>(&ps).await;
        assert_eq!(class(&result), Some(ErrorClass::Stalled), "{reason}");
        let requests = h.take_requests();
        assert!(requests.iter().all(|r| !r.path.ends_with("/token")), "{reason}");
        assert!(
            requests
                .iter()
                .all(|r| !(r.method == "PATCH" && r.path.contains("/secrets/"))),
            "{reason}: no Secret"
        );
        assert!(h.backend.calls().is_empty(), "{reason}: {:?}", h.backend.calls());
        let status = Harness::status_writes(&requests)[0].clone();
        assert_eq!(
            condition(&status, "Stalled"),
            Some(("True".into(), reason.into()))
        );
    }
}

/// A ClusterPullSecret with an identity: each namespace's Secret is minted as that namespace's
/// ServiceAccount (its own TokenRequest and exchange, the ECR token shared per role); a namespace
/// without the ServiceAccount fails alone, and the status names the roles.
#[tokio::test]
async fn a_cluster_pull_secret_mints_each_namespace_as_its_own_service_account() {
    use crate::api::v1alpha1::ClusterPullSecret;
    use crate::controllers::pull_secret::ClusterPullSecretController;
    let mut routes = Routes::default();
    routes.lists.insert(
        "/api/v1/namespaces".into(),
        ["a", "b", "c"]
            .iter()
            .map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}))
            .collect(),
    );
    routes.objects.extend([
        service_account("a", "puller", Some(ROLE)),
        service_account("b", "puller", Some(ROLE)),
    ]);
    let h = Harness::new(routes, &[ready_registry("default")]);
    let cps: ClusterPullSecret = serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ClusterPullSecret",
        "metadata": {"name": "ecr-all", "uid": "uid-all", "generation": 1, "finalizers": [FINALIZER]},
        "spec": {"registries": ["default"], "namespaceSelector": {}, "identity": {"serviceAccountName": "puller"}},
    }))
    .unwrap();
    let result = h.reconcile::<ClusterPullSecretController>(&cps).await;
    assert_eq!(
        class(&result),
        Some(ErrorClass::Stalled),
        "namespace c has no puller"
    );
    let requests = h.take_requests();
    let tokens: Vec<&str> = requests
        .iter()
        .filter(|r| r.path.ends_with("/token"))
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        tokens,
        [
            "/api/v1/namespaces/a/serviceaccounts/puller/token",
            "/api/v1/namespaces/b/serviceaccounts/puller/token"
        ]
    );
    let mut calls = h.backend.calls();
    calls.sort_unstable();
    assert_eq!(
        calls,
        [
            "AssumeRoleWithWebIdentity",
            "AssumeRoleWithWebIdentity",
            "GetAuthorizationToken"
        ]
    );
    let written: Vec<&str> = requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/secrets/"))
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(written.iter().all(|p| !p.contains("/namespaces/c/")));
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(status["roleArns"], json!([ROLE]));
    assert_eq!(status["failedNamespaces"], json!(["c"]));
    assert_eq!(
        condition(&status, "Stalled"),
        Some(("True".into(), "IdentityNotFound".into()))
    );
}

/// A Registry with `auth.webIdentity`: its reconcile reads the ServiceAccount, requests a token
/// for it and exchanges it once; the next reconcile uses the session held (no TokenRequest, no
/// STS call). A ServiceAccount that does not exist stalls it, naming the field.
#[tokio::test]
async fn a_registry_web_identity_is_exchanged_once_and_its_session_reused() {
    use crate::controllers::registry::RegistryController;
    let registry = |sa: &str| -> Registry {
        serde_json::from_value(json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
            "metadata": {"name": "served", "uid": "uid-served", "generation": 1, "finalizers": [FINALIZER]},
            "spec": {"region": "us-east-1",
                "auth": {"webIdentity": {"serviceAccount": {"name": sa, "namespace": "ecr-system"}}}},
        }))
        .unwrap()
    };
    let h = harness(&[service_account("ecr-system", "ecr-registry", Some(ROLE))], &[]);
    let r = registry("ecr-registry");
    h.reconcile::<RegistryController>(&r).await.unwrap();
    let requests = h.take_requests();
    let tokens: Vec<_> = requests.iter().filter(|r| r.path.ends_with("/token")).collect();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        tokens[0].path,
        "/api/v1/namespaces/ecr-system/serviceaccounts/ecr-registry/token"
    );
    assert_eq!(h.backend.calls()[0], "AssumeRoleWithWebIdentity");
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    h.reconcile::<RegistryController>(&with_status(&r, &status))
        .await
        .unwrap();
    assert!(h.take_requests().iter().all(|r| !r.path.ends_with("/token")));
    assert_eq!(
        h.backend
            .calls()
            .iter()
            .filter(|c| **c == "AssumeRoleWithWebIdentity")
            .count(),
        1,
        "the session held is used"
    );

    let missing = harness(&[], &[]);
    let result = missing.reconcile::<RegistryController>(&registry("nobody")).await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    let status = Harness::status_writes(&missing.take_requests())[0].clone();
    assert_eq!(
        condition(&status, "Stalled"),
        Some(("True".into(), "IdentityNotFound".into()))
    );
    let message = status["conditions"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "ServiceAccount nobody named by spec.auth.webIdentity does not exist in namespace ecr-system"
        ),
        "{message}"
    );
}
