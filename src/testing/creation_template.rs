//! RepositoryCreationTemplate reconciles against the mock API server and the in-memory backend.

use serde_json::json;

use super::{Harness, Routes, class, condition, ready_registry, with_status};
use crate::api::FINALIZER;
use crate::api::v1alpha1::RepositoryCreationTemplate;
use crate::backend::BackendError;
use crate::controllers::creation_template::CreationTemplateController;
use crate::error::ErrorClass;

fn template(rules: serde_json::Value) -> RepositoryCreationTemplate {
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "RepositoryCreationTemplate",
        "metadata": {"name": "hub", "uid": "uid-hub", "generation": 1, "finalizers": [FINALIZER]},
        "spec": {"prefix": "docker-hub", "appliedFor": ["PullThroughCache"],
            "resourceTags": {"team": "platform"},
            "repositoryPolicy": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}]},
            "lifecycleRules": rules},
    }))
    .unwrap()
}

fn expire_untagged() -> serde_json::Value {
    json!([{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
        "countUnit": "days", "countNumber": 7}, "action": {"type": "expire"}}])
}

fn harness() -> Harness {
    Harness::new(Routes::default(), &[ready_registry("default")])
}

#[tokio::test]
async fn a_new_template_is_one_create_then_a_settled_one_writes_nothing_and_drift_is_one_update() {
    let h = harness();
    let t = template(expire_untagged());
    h.reconcile::<CreationTemplateController>(&t).await.unwrap();
    assert_eq!(h.backend.writes(), ["CreateRepositoryCreationTemplate"]);
    let requests = h.take_requests();
    let writes = Harness::status_writes(&requests);
    assert_eq!(
        condition(&writes[0], "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    assert_eq!(writes[0]["created"], true);
    assert_eq!(
        requests
            .iter()
            .find(|r| r.is_status_write())
            .and_then(|r| r.field_manager()),
        Some("ecr-operator/creation-template".to_owned())
    );
    assert_eq!(
        Harness::events(&requests),
        [("Normal".to_owned(), "Created".to_owned())]
    );

    let settled = with_status(&t, &writes[0]);
    h.reconcile::<CreationTemplateController>(&settled).await.unwrap();
    assert_eq!(h.backend.writes().len(), 1, "{:?}", h.backend.calls());
    assert!(!h.take_requests().iter().any(|r| r.is_write()));

    // Changed behind the operator's back: one update restores it.
    h.backend
        .state
        .lock()
        .unwrap()
        .templates
        .get_mut("docker-hub")
        .unwrap()
        .settings
        .tags
        .insert("added".into(), "by hand".into());
    h.reconcile::<CreationTemplateController>(&settled).await.unwrap();
    assert_eq!(h.backend.writes()[1..], ["UpdateRepositoryCreationTemplate"]);
    let state = h.backend.state.lock().unwrap();
    assert!(!state.templates["docker-hub"].settings.tags.contains_key("added"));
}

#[tokio::test]
async fn invalid_lifecycle_rules_stall_before_any_call_and_throttling_is_transient() {
    let h = harness();
    let rule = |p: i32| {
        json!({"rulePriority": p, "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"],
            "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}})
    };
    let result = h
        .reconcile::<CreationTemplateController>(&template(json!([rule(1), rule(2)])))
        .await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    assert!(h.backend.calls().is_empty(), "{:?}", h.backend.calls());
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Stalled"),
        Some(("True".into(), "InvalidPolicy".into()))
    );

    h.backend.fail_next(
        "CreateRepositoryCreationTemplate",
        BackendError::Throttled("slow down".into()),
    );
    let result = h
        .reconcile::<CreationTemplateController>(&template(expire_untagged()))
        .await;
    assert_eq!(class(&result), Some(ErrorClass::Transient));
}

#[tokio::test]
async fn deletion_removes_only_a_template_the_operator_created() {
    let h = harness();
    let t = template(expire_untagged());
    h.reconcile::<CreationTemplateController>(&t).await.unwrap();
    let status = Harness::status_writes(&h.take_requests())[0].clone();
    let deletion = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(2_000_000_000).unwrap(),
    );
    let mut deleting = with_status(&t, &status);
    deleting.metadata.deletion_timestamp = Some(deletion.clone());
    h.reconcile::<CreationTemplateController>(&deleting)
        .await
        .unwrap();
    assert!(h.backend.state.lock().unwrap().templates.is_empty());

    // Found in ECR (created: false): left there.
    let h = harness();
    h.reconcile::<CreationTemplateController>(&t).await.unwrap();
    let mut found = Harness::status_writes(&h.take_requests())[0].clone();
    found["created"] = json!(false);
    let mut deleting = with_status(&t, &found);
    deleting.metadata.deletion_timestamp = Some(deletion);
    h.reconcile::<CreationTemplateController>(&deleting)
        .await
        .unwrap();
    assert!(
        h.backend
            .state
            .lock()
            .unwrap()
            .templates
            .contains_key("docker-hub")
    );
    assert!(!h.backend.calls().contains(&"DeleteRepositoryCreationTemplate"));
}

#[tokio::test]
async fn a_newer_template_for_the_same_prefix_stalls_and_its_deletion_leaves_the_holders() {
    let h = harness();
    let at = |s: i64| {
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(s).unwrap(),
        ))
    };
    let mut first = template(expire_untagged());
    first.metadata.creation_timestamp = at(100);
    let mut second = template(expire_untagged());
    second.metadata.name = Some("hub-too".into());
    second.metadata.creation_timestamp = at(200);
    h.routes.lock().unwrap().lists.insert(
        "/apis/ecr-operator.dev/v1alpha1/repositorycreationtemplates".into(),
        vec![
            serde_json::to_value(&first).unwrap(),
            serde_json::to_value(&second).unwrap(),
        ],
    );
    h.reconcile::<CreationTemplateController>(&first).await.unwrap();
    h.take_requests();
    let writes = h.backend.writes().len();

    let result = h.reconcile::<CreationTemplateController>(&second).await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    assert_eq!(h.backend.writes().len(), writes, "{:?}", h.backend.calls());
    let status = Harness::status_writes(&h.take_requests())[0].clone();
    assert_eq!(
        condition(&status, "Stalled").map(|c| c.1).as_deref(),
        Some("Conflict")
    );

    // Even with `created` recorded, deleting the newer object leaves the holder's template.
    let mut deleting = with_status(&second, &json!({"created": true}));
    deleting.metadata.deletion_timestamp = at(2_000_000_000);
    h.reconcile::<CreationTemplateController>(&deleting)
        .await
        .unwrap();
    assert!(
        h.backend
            .state
            .lock()
            .unwrap()
            .templates
            .contains_key("docker-hub")
    );
    assert!(!h.backend.calls().contains(&"DeleteRepositoryCreationTemplate"));
}
