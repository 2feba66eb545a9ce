//! ImagePolicy reconciles against the mock API server: the facts, the ValidatingAdmissionPolicy
//! and its binding applied under the controller's field manager from one LIST of Repositories,
//! and a spec the controller refuses stalling before any write.

use serde_json::{Value, json};

use super::{Harness, Routes, condition};
use crate::api::v1alpha1::ImagePolicy;
use crate::controllers::image_policy::ImagePolicyController;

const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

fn policy(selector: Value) -> ImagePolicy {
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "no-critical", "uid": "uid-p", "generation": 1},
        "spec": {"namespaceSelector": selector, "denySeverity": "CRITICAL"},
    }))
    .unwrap()
}

fn repository(name: &str, digest: &str, counts: Value) -> Value {
    json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {},
        "status": {"repositoryUri": format!("{HOST}/team-a/{name}"), "insight": {
            "imageCount": 1, "sizeBytes": 1, "archivedCount": 0, "archivedSizeBytes": 0, "pages": 1,
            "newestImage": {"digest": digest, "tags": ["v1"], "scanStatus": "COMPLETE", "findingCounts": counts}}},
    })
}

fn harness() -> Harness {
    let mut routes = Routes::default();
    routes.lists.insert(
        "/apis/ecr-operator.dev/v1alpha1/repositories".into(),
        vec![
            repository("bad", "sha256:bad", json!({"CRITICAL": 3})),
            repository("ok", "sha256:ok", json!({"LOW": 1})),
        ],
    );
    Harness::new(routes, &[])
}

#[tokio::test]
async fn the_facts_the_admission_policy_and_its_binding_come_from_one_list() {
    let h = harness();
    h.reconcile::<ImagePolicyController>(&policy(json!({"matchLabels": {"env": "prod"}})))
        .await
        .unwrap();
    let requests = h.take_requests();
    let lists = requests.iter().filter(|r| r.method == "GET").count();
    assert_eq!(lists, 1, "one LIST of Repositories: {requests:?}");
    let applied: Vec<&str> = requests
        .iter()
        .filter(|r| r.method == "PATCH" && !r.is_status_write())
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        applied,
        [
            "/api/v1/namespaces/default/configmaps/ecr-image-policy.no-critical",
            "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/ecr-image-policy.no-critical",
            "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/ecr-image-policy.no-critical",
        ]
    );
    for r in requests.iter().filter(|r| r.method == "PATCH") {
        assert_eq!(
            r.field_manager().as_deref(),
            Some("ecr-operator/image-policy"),
            "{}",
            r.path
        );
    }
    let facts = &requests[1].body["data"];
    let denied = facts["sha256.bad"].as_str().unwrap();
    assert!(
        denied.contains(&format!("{HOST}/team-a/bad@sha256:bad")) && denied.contains("3 CRITICAL"),
        "{denied}"
    );
    assert_eq!(facts[format!("{HOST}--team-a--ok..v1")], "");
    assert_eq!(facts["hosts"], HOST);
    let binding = &requests[3].body["spec"];
    assert_eq!(
        binding["matchResources"]["namespaceSelector"]["matchExpressions"][0]["operator"],
        "NotIn"
    );
    let writes = Harness::status_writes(&requests);
    assert_eq!(writes.len(), 1);
    assert_eq!(
        (
            writes[0]["knownImages"].as_i64(),
            writes[0]["deniedImages"].as_i64()
        ),
        (Some(4), Some(2))
    );
    assert_eq!(
        condition(&writes[0], "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    assert_eq!(
        Harness::events(&requests),
        [("Normal".to_owned(), "Created".to_owned())]
    );
}

#[tokio::test]
async fn a_system_namespace_named_in_an_expression_stalls_before_any_write() {
    let h = harness();
    let named = json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["kube-system"]}]});
    assert!(
        h.reconcile::<ImagePolicyController>(&policy(named))
            .await
            .is_err()
    );
    let requests = h.take_requests();
    assert!(
        requests
            .iter()
            .filter(|r| r.is_write())
            .all(|r| r.is_status_write()),
        "{requests:?}"
    );
    let writes = Harness::status_writes(&requests);
    assert_eq!(
        condition(&writes[0], "Stalled"),
        Some(("True".into(), "InvalidSpec".into()))
    );
}
