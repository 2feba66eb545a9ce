//! Repository reconciles against the mock API server and the in-memory backend.

use std::sync::Arc;

use serde_json::json;

use super::{Harness, Routes, class, condition, ready_registry, with_status};
use crate::api::FINALIZER;
use crate::api::v1alpha1::Repository;
use crate::backend::BackendError;
use crate::backend::fake::FakeBackend;
use crate::controllers::driver;
use crate::controllers::repository::RepositoryController;
use crate::error::ErrorClass;

fn repository(finalizer: bool) -> Repository {
    let finalizers = if finalizer { json!([FINALIZER]) } else { json!([]) };
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": "api", "namespace": "team-a", "uid": "uid-api", "generation": 2,
            "finalizers": finalizers},
        "spec": {"name": "team-a/api", "tags": {"team": "a"}},
    }))
    .unwrap()
}

fn harness() -> Harness {
    Harness::new(Routes::default(), &[ready_registry("default")])
}

#[tokio::test]
async fn the_first_reconcile_adds_the_finalizer_and_calls_nothing_else() {
    let h = harness();
    h.reconcile::<RepositoryController>(&repository(false))
        .await
        .unwrap();
    let requests = h.take_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, "PATCH");
    assert!(
        requests[0].body.to_string().contains(FINALIZER),
        "{:?}",
        requests[0].body
    );
    assert!(h.backend.calls().is_empty(), "{:?}", h.backend.calls());
}

#[tokio::test]
async fn a_new_repository_costs_one_create_and_one_status_write_then_silence() {
    let h = harness();
    let repo = repository(true);
    h.reconcile::<RepositoryController>(&repo).await.unwrap();
    assert_eq!(h.backend.writes(), ["CreateRepository"]);
    let requests = h.take_requests();
    let writes = Harness::status_writes(&requests);
    assert_eq!(writes.len(), 1);
    assert_eq!(
        condition(&writes[0], "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    assert_eq!(writes[0]["observedGeneration"], 2);
    let status_write = requests.iter().find(|r| r.is_status_write()).unwrap();
    assert_eq!(
        status_write.field_manager().as_deref(),
        Some("ecr-operator/repository")
    );
    assert!(
        status_write.query.contains("force=true"),
        "{}",
        status_write.query
    );
    assert_eq!(
        Harness::events(&requests),
        [("Normal".to_owned(), "Created".to_owned())]
    );

    // In sync: the same object with the status it wrote makes no write to either side.
    let settled = with_status(&repo, &writes[0]);
    let before = h.backend.writes().len();
    h.reconcile::<RepositoryController>(&settled).await.unwrap();
    assert_eq!(h.backend.writes().len(), before, "{:?}", h.backend.calls());
    let requests = h.take_requests();
    assert!(requests.iter().all(|r| !r.is_write()), "{requests:?}");
    assert!(Harness::events(&requests).is_empty());
}

/// A repository policy longer than ECR allows (its JSON size is known only to the operator):
/// Stalled `InvalidPolicy` before any ECR call, nothing created.
#[tokio::test]
async fn an_oversized_repository_policy_stalls_before_any_ecr_call() {
    let h = harness();
    let mut repo = repository(true);
    repo.spec.policy = serde_json::from_value(json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "x".repeat(11_000), "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}]}))
    .unwrap();
    let result = h.reconcile::<RepositoryController>(&repo).await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    assert!(h.backend.calls().is_empty(), "{:?}", h.backend.calls());
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Stalled"),
        Some(("True".into(), "InvalidPolicy".into()))
    );
    let length = serde_json::to_string(&repo.spec.policy).unwrap().chars().count();
    assert!(length > 11_000);
    let message = writes[0]["conditions"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "invalid repository policy (spec.policy): the policy is {length} characters as JSON; ECR allows at most 10240"
        )),
        "{message}"
    );
}

#[tokio::test]
async fn a_throttled_create_is_transient_and_says_progressing_with_retry() {
    let h = harness();
    h.backend.fail_next(
        "CreateRepository",
        BackendError::Throttled("Rate exceeded".into()),
    );
    let repo = repository(true);
    let result = h.reconcile::<RepositoryController>(&repo).await;
    assert_eq!(class(&result), Some(ErrorClass::Transient));
    // kube hands the error to the error policy: a per-object backoff of 5 s (± 10 %).
    let err = result.unwrap_err();
    let action = driver::error_policy::<RepositoryController, FakeBackend>(
        Arc::new(repo.clone()),
        &err,
        h.ctx.clone(),
    );
    let text = format!("{action:?}");
    assert!(text.contains("4.") || text.contains("5."), "{text}");
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Ready"),
        Some(("False".into(), "Throttled".into()))
    );
    assert_eq!(
        condition(&writes[0], "Reconciling"),
        Some(("True".into(), "ProgressingWithRetry".into()))
    );
    assert_eq!(condition(&writes[0], "Stalled"), None);
    // A success forgets the failures: the next failure starts again at 5 s.
    h.reconcile::<RepositoryController>(&repo).await.unwrap();
    let delay = h.ctx.backoff.next_delay("uid-api");
    assert!(
        delay.as_millis() >= 4500 && delay.as_millis() <= 5500,
        "{delay:?}"
    );
}

#[tokio::test]
async fn a_repository_owned_elsewhere_stalls_with_its_reason_and_is_never_written() {
    let h = harness();
    h.backend.seed_repository("us-east-1", "team-a/api", vec![]);
    h.backend.state.lock().unwrap().tags.insert(
        "team-a/api".into(),
        [(
            crate::api::OWNER_TAG.to_owned(),
            "other-cluster/team-a/api".to_owned(),
        )]
        .into(),
    );
    let result = h.reconcile::<RepositoryController>(&repository(true)).await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    assert!(h.backend.writes().is_empty(), "{:?}", h.backend.calls());
    let requests = h.take_requests();
    let writes = Harness::status_writes(&requests);
    assert_eq!(
        condition(&writes[0], "Stalled"),
        Some(("True".into(), "OwnedElsewhere".into()))
    );
    assert_eq!(
        Harness::events(&requests),
        [("Warning".to_owned(), "OwnedElsewhere".to_owned())]
    );
}

#[tokio::test]
async fn a_failed_status_write_keeps_the_ecr_errors_class() {
    let h = Harness::new(
        Routes {
            fail_status_writes: true,
            ..Routes::default()
        },
        &[ready_registry("default")],
    );
    h.backend
        .fail_next("CreateRepository", BackendError::AccessDenied("no".into()));
    let result = h.reconcile::<RepositoryController>(&repository(true)).await;
    assert_eq!(
        result.unwrap_err().reason(),
        "AccessDenied",
        "the root cause, not the status write"
    );
    // Without an ECR error, the failed write is the error.
    let result = h.reconcile::<RepositoryController>(&repository(true)).await;
    assert_eq!(result.unwrap_err().reason(), "KubernetesError");
}

#[tokio::test]
async fn waiting_for_a_missing_registry_is_not_stalled() {
    let h = Harness::new(Routes::default(), &[]);
    let result = h.reconcile::<RepositoryController>(&repository(true)).await;
    assert_eq!(class(&result), Some(ErrorClass::Waiting));
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Reconciling"),
        Some(("True".into(), "DependencyNotReady".into()))
    );
    assert!(h.backend.calls().is_empty());
}

#[tokio::test]
async fn a_registry_not_ready_yet_is_waited_for_without_a_warning_and_a_missing_one_warns() {
    // Applied together with its Registry: the Registry exists but is not Ready yet.
    let mut pending = ready_registry("default");
    pending.status = None;
    let h = Harness::new(Routes::default(), &[pending]);
    let result = h.reconcile::<RepositoryController>(&repository(true)).await;
    assert_eq!(class(&result), Some(ErrorClass::Waiting));
    let requests = h.take_requests();
    assert_eq!(
        condition(&Harness::status_writes(&requests)[0], "Reconciling"),
        Some(("True".into(), "DependencyNotReady".into()))
    );
    assert!(
        Harness::events(&requests).is_empty(),
        "{:?}",
        Harness::events(&requests)
    );
    // No Registry of that name at all: likely a mistake, so a Warning says so.
    let h = Harness::new(Routes::default(), &[]);
    let _ = h.reconcile::<RepositoryController>(&repository(true)).await;
    assert_eq!(
        Harness::events(&h.take_requests()),
        [("Warning".to_owned(), "DependencyNotReady".to_owned())]
    );
}

/// `deletionPolicy: Retain` (the default) keeps the repository but releases it: the owner tag
/// goes, so a Repository elsewhere may adopt it. A Registry that is not Ready is waited for; without
/// a Registry at all the object still goes, and the event says how the next owner takes over.
#[tokio::test]
async fn a_retained_repository_is_released_and_another_object_may_take_it() {
    use crate::api::OWNER_TAG;
    use crate::backend::RegistryBackend;
    let h = harness();
    let repo = repository(true);
    h.reconcile::<RepositoryController>(&repo).await.unwrap();
    let mut deleting = repo.clone();
    deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(1).unwrap(),
    ));
    h.take_requests();
    h.reconcile::<RepositoryController>(&deleting).await.unwrap();
    assert!(
        h.backend.writes().contains(&"UntagResource"),
        "{:?}",
        h.backend.writes()
    );
    assert!(!h.backend.writes().contains(&"DeleteRepository"));
    let requests = h.take_requests();
    assert_eq!(
        Harness::events(&requests),
        [("Normal".to_owned(), "Released".to_owned())]
    );
    let target = h.ctx.target(&ready_registry("default")).await.unwrap();
    let remote = h
        .backend
        .describe_repository(&target, "team-a/api")
        .await
        .unwrap()
        .unwrap();
    let tags = h.backend.list_tags(&target, &remote.arn).await.unwrap();
    assert!(!tags.contains_key(OWNER_TAG), "{tags:?}");
    assert_eq!(tags.get("team").map(String::as_str), Some("a"), "other tags stay");

    // A Registry that exists but is not Ready (ECR unreachable): the release waits, the
    // finalizer stays, the owner tag stays, until it is back (an outage never skips the release).
    let h = harness();
    h.reconcile::<RepositoryController>(&repo).await.unwrap();
    let mut unready = ready_registry("default");
    unready.status.as_mut().unwrap().conditions[0].status = "False".into();
    let mut h = h;
    h.set_registry(unready);
    h.take_requests();
    let result = h.reconcile::<RepositoryController>(&deleting).await;
    assert_eq!(class(&result), Some(ErrorClass::Waiting));
    let requests = h.take_requests();
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "PATCH" && !r.is_status_write()),
        "the finalizer stays: {requests:?}"
    );
    let writes = Harness::status_writes(&requests);
    assert_eq!(
        condition(&writes[0], "Reconciling"),
        Some(("True".into(), "DependencyNotReady".into()))
    );
    assert!(!h.backend.writes().contains(&"UntagResource"));
    h.set_registry(ready_registry("default"));
    h.reconcile::<RepositoryController>(&deleting).await.unwrap();
    assert!(h.backend.writes().contains(&"UntagResource"));
    assert_eq!(
        Harness::events(&h.take_requests()),
        [("Normal".to_owned(), "Released".to_owned())]
    );

    // No Registry: nothing can be released, the object still goes, and the event says what next.
    let h = Harness::new(Routes::default(), &[]);
    h.reconcile::<RepositoryController>(&deleting).await.unwrap();
    let events = Harness::events(&h.take_requests());
    assert_eq!(events, [("Normal".to_owned(), "Retained".to_owned())]);
}

/// `spec.takeOverFrom` names the previous owner of this cluster: refused while that Repository
/// exists, taken over once it is gone.
#[tokio::test]
async fn take_over_from_waits_for_the_previous_object_to_be_gone() {
    use crate::api::OWNER_TAG;
    use crate::backend::RegistryBackend;
    let h = harness();
    // The previous owner, team-b/api, created the repository.
    let mut previous = repository(true);
    previous.metadata.namespace = Some("team-b".into());
    previous.metadata.uid = Some("uid-previous".into());
    h.reconcile::<RepositoryController>(&previous).await.unwrap();
    let mut next = repository(true);
    next.spec.take_over_from = Some("team-b/api".into());
    // It still exists (the API server answers its GET): refused.
    h.serve(&previous);
    let result = h.reconcile::<RepositoryController>(&next).await;
    let err = result.unwrap_err();
    assert_eq!(err.reason(), "OwnedElsewhere");
    assert!(err.to_string().contains("still exists"), "{err}");
    // Gone: taken over, the owner tag names the new object.
    h.routes.lock().unwrap().objects.clear();
    h.reconcile::<RepositoryController>(&next).await.unwrap();
    let target = h.ctx.target(&ready_registry("default")).await.unwrap();
    let remote = h
        .backend
        .describe_repository(&target, "team-a/api")
        .await
        .unwrap()
        .unwrap();
    let tags = h.backend.list_tags(&target, &remote.arn).await.unwrap();
    assert_eq!(tags.get(OWNER_TAG).map(String::as_str), Some("c1/team-a/api"));
    assert!(Harness::events(&h.take_requests()).contains(&("Normal".to_owned(), "Adopted".to_owned())));
}

/// `managementPolicy: ObserveOnly` never writes, deletion included: even with
/// `deletionPolicy: Delete` its deletion calls nothing in ECR and lets the object go.
#[tokio::test]
async fn an_observed_repository_is_never_touched_by_its_deletion() {
    let h = harness();
    h.backend.seed_repository("us-east-1", "team-a/api", vec![]);
    let mut repo = repository(true);
    repo.spec.management_policy = crate::api::v1alpha1::ManagementPolicy::ObserveOnly;
    repo.spec.deletion_policy = crate::api::v1alpha1::DeletionPolicy::Delete;
    repo.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(1).unwrap(),
    ));
    h.reconcile::<RepositoryController>(&repo).await.unwrap();
    assert!(h.backend.calls().is_empty(), "{:?}", h.backend.calls());
    assert!(
        h.backend
            .state
            .lock()
            .unwrap()
            .repositories
            .contains_key("team-a/api")
    );
    let requests = h.take_requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "PATCH" && !r.is_status_write()),
        "the finalizer goes: {requests:?}"
    );
}
