//! PublicRepository reconciles against the mock API server and the in-memory backend.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;

use super::{Harness, Routes, class, condition, ready_registry, with_status};
use crate::api::v1alpha1::PublicRepository;
use crate::api::{FINALIZER, OWNER_TAG};
use crate::backend::BackendError;
use crate::controllers::public_repository::PublicRepositoryController;
use crate::error::ErrorClass;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\nlogo";

fn public(spec: serde_json::Value) -> PublicRepository {
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PublicRepository",
        "metadata": {"name": "web", "namespace": "oss", "uid": "uid-web", "generation": 1, "finalizers": [FINALIZER]},
        "spec": spec,
    }))
    .unwrap()
}

fn spec() -> serde_json::Value {
    json!({
        "catalogData": {"description": "Web server", "architectures": ["ARM 64"], "operatingSystems": ["Linux"],
            "logo": {"configMapKeyRef": {"name": "brand", "key": "logo.png"}}},
        "tags": {"team": "oss"},
        "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr-public:BatchCheckLayerAvailability"}]},
    })
}

fn logo_config_map(bytes: &[u8]) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("brand".into()),
            namespace: Some("oss".into()),
            ..Default::default()
        },
        binary_data: Some(BTreeMap::from([(
            "logo.png".to_owned(),
            ByteString(bytes.to_vec()),
        )])),
        ..Default::default()
    }
}

fn harness() -> Harness {
    let h = Harness::new(Routes::default(), &[ready_registry("default")]);
    h.serve(&logo_config_map(PNG));
    h
}

#[tokio::test]
async fn a_new_public_repository_is_one_create_then_silence_then_one_write_per_drift() {
    let h = harness();
    let p = public(spec());
    h.reconcile::<PublicRepositoryController>(&p).await.unwrap();
    assert_eq!(
        h.backend.writes(),
        ["ecr-public:CreateRepository", "ecr-public:SetRepositoryPolicy"]
    );
    let created = h.backend.public_repository("web").unwrap();
    assert_eq!(created.catalog.description, "Web server");
    assert!(created.logo_sha.is_some(), "the logo goes in with the create");
    assert_eq!(
        created.tags.get(OWNER_TAG).map(String::as_str),
        Some("c1/oss/web")
    );
    let requests = h.take_requests();
    let writes = Harness::status_writes(&requests);
    assert_eq!(writes.len(), 1, "one status write");
    assert_eq!(
        condition(&writes[0], "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    assert_eq!(writes[0]["repositoryUri"], "public.ecr.aws/fakealias/web");
    assert_eq!(writes[0]["registryAlias"], "fakealias");
    assert!(writes[0]["logoSha256"].is_string());
    assert_eq!(
        requests
            .iter()
            .find(|r| r.is_status_write())
            .and_then(|r| r.field_manager()),
        Some("ecr-operator/public-repository".to_owned())
    );
    assert_eq!(
        Harness::events(&requests),
        [("Normal".to_owned(), "Created".to_owned())]
    );

    // Settled: reads only, no write anywhere.
    let settled = with_status(&p, &writes[0]);
    h.reconcile::<PublicRepositoryController>(&settled).await.unwrap();
    assert_eq!(h.backend.writes().len(), 2, "{:?}", h.backend.calls());
    assert!(!h.take_requests().iter().any(|r| r.is_write()));

    // Catalog data and policy changed behind the operator's back: one write each restores them.
    {
        let mut state = h.backend.state.lock().unwrap();
        let r = state.public.repositories.get_mut("web").unwrap();
        r.catalog.description = "edited by hand".into();
        r.policy = Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into());
    }
    h.reconcile::<PublicRepositoryController>(&settled).await.unwrap();
    assert_eq!(
        h.backend.writes()[2..],
        [
            "ecr-public:PutRepositoryCatalogData",
            "ecr-public:SetRepositoryPolicy"
        ]
    );
    assert_eq!(
        h.backend.public_repository("web").unwrap().catalog.description,
        "Web server"
    );
    let requests = h.take_requests();
    assert_eq!(
        Harness::events(&requests),
        [("Normal".to_owned(), "Updated".to_owned())]
    );

    // A new logo is sent once.
    h.serve(&logo_config_map(b"\x89PNG\r\n\x1a\nnew logo"));
    h.reconcile::<PublicRepositoryController>(&settled).await.unwrap();
    assert_eq!(h.backend.writes()[4..], ["ecr-public:PutRepositoryCatalogData"]);
}

#[tokio::test]
async fn a_logo_that_is_not_an_image_stalls_before_any_call_and_throttling_is_transient() {
    let h = harness();
    h.serve(&logo_config_map(b"<svg/>"));
    let result = h.reconcile::<PublicRepositoryController>(&public(spec())).await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    assert!(h.backend.calls().is_empty(), "{:?}", h.backend.calls());
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Stalled"),
        Some(("True".into(), "InvalidSpec".into()))
    );
    let message = writes[0]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("not a PNG or JPEG"), "{message}");

    let h = harness();
    h.backend.fail_next(
        "ecr-public:CreateRepository",
        BackendError::Throttled("slow down".into()),
    );
    let result = h.reconcile::<PublicRepositoryController>(&public(spec())).await;
    assert_eq!(class(&result), Some(ErrorClass::Transient));
}

#[tokio::test]
async fn adoption_owned_elsewhere_and_the_non_empty_guard() {
    let h = harness();
    // Someone else's repository: refused, nothing written.
    h.backend.seed_public_repository(
        "web",
        0,
        BTreeMap::from([(OWNER_TAG.to_owned(), "c2/oss/web".to_owned())]),
    );
    let result = h
        .reconcile::<PublicRepositoryController>(&public(json!({})))
        .await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    assert!(h.backend.writes().is_empty(), "{:?}", h.backend.writes());
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Stalled"),
        Some(("True".into(), "OwnedElsewhere".into()))
    );

    // An unowned one with images is adopted (the owner tag), then deletion is refused while it
    // holds images, and forced when asked.
    let h = harness();
    h.backend.seed_public_repository("web", 2, BTreeMap::new());
    let p = public(json!({"deletionPolicy": "Delete"}));
    h.reconcile::<PublicRepositoryController>(&p).await.unwrap();
    assert_eq!(h.backend.writes(), ["ecr-public:TagResource"]);
    let requests = h.take_requests();
    assert_eq!(
        Harness::events(&requests),
        [("Normal".to_owned(), "Adopted".to_owned())]
    );
    let status = Harness::status_writes(&requests)[0].clone();
    let deletion = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(2_000_000_000).unwrap(),
    );
    let mut deleting = with_status(&p, &status);
    deleting.metadata.deletion_timestamp = Some(deletion.clone());
    let result = h.reconcile::<PublicRepositoryController>(&deleting).await;
    assert!(result.is_err());
    assert!(h.backend.public_repository("web").is_some(), "nothing deleted");
    assert!(!h.backend.writes().contains(&"ecr-public:DeleteRepository"));

    let mut forced = with_status(
        &public(json!({"deletionPolicy": "Delete", "forceDelete": true})),
        &status,
    );
    forced.metadata.deletion_timestamp = Some(deletion);
    h.reconcile::<PublicRepositoryController>(&forced).await.unwrap();
    assert!(h.backend.public_repository("web").is_none(), "forced");
}

// ---- public.ecr.aws in PullSecret and ClusterPullSecret ----

fn auths_of(request: &super::Recorded) -> Vec<String> {
    use base64::Engine;
    let data = request.body["data"][".dockerconfigjson"]
        .as_str()
        .unwrap_or_default();
    let json: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(data).unwrap()).unwrap();
    json["auths"].as_object().unwrap().keys().cloned().collect()
}

fn secret_writes(requests: &[super::Recorded]) -> Vec<&super::Recorded> {
    requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/secrets/"))
        .collect()
}

#[tokio::test]
async fn a_pull_secret_with_ecr_public_holds_both_logins_from_one_token_call_per_kind() {
    use crate::api::v1alpha1::PullSecret;
    use crate::controllers::pull_secret::PullSecretController;
    let h = Harness::new(Routes::default(), &[ready_registry("default")]);
    let ps = |name: &str| -> PullSecret {
        serde_json::from_value(json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret",
            "metadata": {"name": name, "namespace": "team-a", "uid": format!("uid-{name}"), "generation": 1, "finalizers": [FINALIZER]},
            "spec": {"registries": ["default"], "ecrPublic": {"registry": "default"}},
        }))
        .unwrap()
    };
    h.reconcile::<PullSecretController>(&ps("ecr")).await.unwrap();
    assert_eq!(
        h.backend.calls(),
        ["GetAuthorizationToken", "ecr-public:GetAuthorizationToken"]
    );
    let requests = h.take_requests();
    let written = secret_writes(&requests);
    assert_eq!(written.len(), 1, "one Secret");
    let auths = auths_of(written[0]);
    assert_eq!(auths.len(), 2, "{auths:?}");
    assert!(auths.contains(&"public.ecr.aws".to_owned()), "{auths:?}");
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(status["registries"][1]["host"], "public.ecr.aws");
    assert!(
        !status.to_string().contains("fake-public-password"),
        "no token in the status"
    );

    // Another PullSecret of the same identity: both tokens come from the cache.
    h.reconcile::<PullSecretController>(&ps("ecr-2")).await.unwrap();
    assert_eq!(h.backend.calls().len(), 2, "{:?}", h.backend.calls());
}

#[tokio::test]
async fn a_cluster_pull_secret_with_ecr_public_makes_one_public_token_call_for_every_namespace() {
    use crate::api::v1alpha1::ClusterPullSecret;
    use crate::controllers::pull_secret::ClusterPullSecretController;
    let mut routes = Routes::default();
    let namespaces: Vec<serde_json::Value> = (0..50)
        .map(|i| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{i}"), "labels": {"pull": "yes"}}}))
        .collect();
    routes.lists.insert("/api/v1/namespaces".into(), namespaces);
    let h = Harness::new(routes, &[ready_registry("default")]);
    let cps: ClusterPullSecret = serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ClusterPullSecret",
        "metadata": {"name": "ecr-all", "uid": "uid-all", "generation": 1, "finalizers": [FINALIZER]},
        "spec": {"registries": ["default"], "namespaceSelector": {"matchLabels": {"pull": "yes"}}, "ecrPublic": {}},
    }))
    .unwrap();
    h.reconcile::<ClusterPullSecretController>(&cps).await.unwrap();
    let calls = h.backend.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| **c == "ecr-public:GetAuthorizationToken")
            .count(),
        1,
        "{calls:?}"
    );
    assert_eq!(
        calls.iter().filter(|c| **c == "GetAuthorizationToken").count(),
        1,
        "{calls:?}"
    );
    let requests = h.take_requests();
    let written = secret_writes(&requests);
    assert_eq!(written.len(), 50);
    assert!(
        written
            .iter()
            .all(|w| auths_of(w).contains(&"public.ecr.aws".to_owned()))
    );
}
