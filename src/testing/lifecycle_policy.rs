//! LifecyclePolicy reconciles against the mock API server and the in-memory backend.

use serde_json::{Value, json};

use super::{Harness, Routes, class, condition, ready_registry, with_status};
use crate::api::FINALIZER;
use crate::api::v1alpha1::LifecyclePolicy;
use crate::backend::BackendError;
use crate::controllers::lifecycle_policy::LifecyclePolicyController;
use crate::error::ErrorClass;

fn policy(finalizer: bool) -> LifecyclePolicy {
    let finalizers = if finalizer { json!([FINALIZER]) } else { json!([]) };
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "LifecyclePolicy",
        "metadata": {"name": "std", "namespace": "team-a", "uid": "uid-std", "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z", "finalizers": finalizers},
        "spec": {"repositories": ["api"], "rules": [{"rulePriority": 1,
            "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
            "action": {"type": "expire"}}]},
    }))
    .unwrap()
}

fn repository(ready: bool) -> Value {
    let mut r = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": "api", "namespace": "team-a", "generation": 1},
        "spec": {"name": "team-a/api"}});
    if ready {
        r["status"] = json!({"repositoryArn": "arn:aws:ecr:us-east-1:123456789012:repository/team-a/api"});
    }
    r
}

fn harness(repos: Vec<Value>, policies: Vec<Value>) -> Harness {
    let mut routes = Routes::default();
    routes.lists.insert(
        "/apis/ecr-operator.dev/v1alpha1/namespaces/team-a/repositories".into(),
        repos,
    );
    routes.lists.insert(
        "/apis/ecr-operator.dev/v1alpha1/namespaces/team-a/lifecyclepolicies".into(),
        policies,
    );
    let h = Harness::new(routes, &[ready_registry("default")]);
    h.backend.seed_repository("us-east-1", "team-a/api", vec![]);
    h
}

#[tokio::test]
async fn the_first_reconcile_adds_the_finalizer_only() {
    let h = harness(vec![repository(true)], vec![]);
    h.reconcile::<LifecyclePolicyController>(&policy(false))
        .await
        .unwrap();
    let requests = h.take_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(h.backend.calls().is_empty());
}

#[tokio::test]
async fn the_policy_is_put_and_recorded_in_its_own_status_only_then_silence() {
    let lp = policy(true);
    let h = harness(vec![repository(true)], vec![serde_json::to_value(&lp).unwrap()]);
    h.reconcile::<LifecyclePolicyController>(&lp).await.unwrap();
    assert_eq!(h.backend.writes(), ["PutLifecyclePolicy"]);
    let requests = h.take_requests();
    // One writer per status: nothing is written to the Repository.
    assert!(
        !requests.iter().any(|r| r.path.contains("/repositories/")),
        "{requests:?}"
    );
    let writes = Harness::status_writes(&requests);
    assert_eq!(writes.len(), 1);
    let target = &writes[0]["repositories"][0];
    assert_eq!(target["state"], "Applied");
    assert_eq!(target["ecrName"], "team-a/api");
    assert_eq!(target["registry"], "default");
    assert_eq!(target["hash"].as_str().map(str::len), Some(64));
    assert_eq!(
        condition(&writes[0], "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );

    let settled = with_status(&lp, &writes[0]);
    h.reconcile::<LifecyclePolicyController>(&settled).await.unwrap();
    assert_eq!(h.backend.writes().len(), 1, "in sync: never re-put");
    assert!(h.take_requests().iter().all(|r| !r.is_write()));
}

#[tokio::test]
async fn a_pending_repository_is_waiting_not_stalled() {
    let lp = policy(true);
    let h = harness(vec![repository(false)], vec![serde_json::to_value(&lp).unwrap()]);
    h.reconcile::<LifecyclePolicyController>(&lp).await.unwrap();
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Reconciling"),
        Some(("True".into(), "DependencyNotReady".into()))
    );
    assert_eq!(writes[0]["repositories"][0]["state"], "Pending");
    assert!(h.backend.calls().is_empty());
}

#[tokio::test]
async fn a_throttled_put_retries_and_a_record_made_before_a_failure_is_kept() {
    // Without protection the policy is put before DescribeImages (with it, the images are read
    // and tagged first).
    let mut lp = policy(true);
    lp.spec.protection = Some(crate::api::v1alpha1::Protection {
        enabled: Some(false),
        ..Default::default()
    });
    let h = harness(vec![repository(true)], vec![serde_json::to_value(&lp).unwrap()]);
    h.backend
        .fail_next("DescribeImages", BackendError::Throttled("slow".into()));
    let result = h.reconcile::<LifecyclePolicyController>(&lp).await;
    assert_eq!(class(&result), Some(ErrorClass::Transient));
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Reconciling"),
        Some(("True".into(), "ProgressingWithRetry".into()))
    );
    // The policy was put before the preview failed: its record is in the status.
    assert_eq!(
        writes[0]["repositories"][0]["hash"].as_str().map(str::len),
        Some(64)
    );
}

#[tokio::test]
async fn deleting_the_policy_waits_for_an_unready_registry_and_keeps_the_finalizer() {
    let lp = policy(true);
    let h = harness(vec![repository(true)], vec![serde_json::to_value(&lp).unwrap()]);
    h.reconcile::<LifecyclePolicyController>(&lp).await.unwrap();
    let status = Harness::status_writes(&h.take_requests())[0].clone();
    let mut deleting = with_status(&lp, &status);
    deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(2_000_000_000).unwrap(),
    ));
    // The Registry is no longer Ready: the record stays, the finalizer stays, nothing is lost.
    let mut unready = ready_registry("default");
    unready.status.as_mut().unwrap().conditions[0].status = "False".into();
    let mut h = h;
    h.set_registry(unready);
    let result = h.reconcile::<LifecyclePolicyController>(&deleting).await;
    assert_eq!(class(&result), Some(ErrorClass::Waiting));
    assert!(
        !h.take_requests()
            .iter()
            .any(|r| r.method == "PATCH" && !r.is_status_write()),
        "the finalizer is not removed"
    );
    assert!(
        h.backend
            .state
            .lock()
            .unwrap()
            .lifecycle_policies
            .contains_key("team-a/api")
    );
    // Back to Ready: the policy is deleted from ECR, then the finalizer goes.
    h.set_registry(ready_registry("default"));
    h.reconcile::<LifecyclePolicyController>(&deleting).await.unwrap();
    assert!(
        !h.backend
            .state
            .lock()
            .unwrap()
            .lifecycle_policies
            .contains_key("team-a/api")
    );
    let requests = h.take_requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "PATCH" && !r.is_status_write()),
        "{requests:?}"
    );
    assert_eq!(
        Harness::events(&requests),
        [("Normal".to_owned(), "Deleted".to_owned())]
    );
}

#[tokio::test]
async fn invalid_rules_stall_with_invalid_policy() {
    let mut lp = policy(true);
    lp.spec.rules[0].selection.count_number = 0;
    let h = harness(vec![repository(true)], vec![]);
    let result = h.reconcile::<LifecyclePolicyController>(&lp).await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Stalled"),
        Some(("True".into(), "InvalidPolicy".into()))
    );
}

/// A policy naming a Repository that does not exist: put on the ones that do, waiting
/// (`Reconciling`, `NamedRepositoryNotFound`, naming it) with one Warning, not polled (the
/// Repository watch re-queues it), silent when repeated; Ready once the Repository exists.
#[tokio::test]
async fn a_named_repository_that_does_not_exist_is_reported_and_the_others_served() {
    let mut lp = policy(true);
    lp.spec.repositories = Some(vec!["api".into(), "web".into()]);
    let h = harness(vec![repository(true)], vec![serde_json::to_value(&lp).unwrap()]);
    let action = h.reconcile::<LifecyclePolicyController>(&lp).await.unwrap();
    assert_ne!(
        action,
        kube::runtime::controller::Action::requeue(h.ctx.tunables.waiting_requeue),
        "not polled: the Repository watch re-queues it"
    );
    assert_eq!(h.backend.writes(), ["PutLifecyclePolicy"], "api is served");
    let requests = h.take_requests();
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Ready"),
        Some(("False".into(), "NamedRepositoryNotFound".into()))
    );
    assert_eq!(
        condition(&status, "Reconciling"),
        Some(("True".into(), "NamedRepositoryNotFound".into()))
    );
    let message = status["conditions"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("spec.repositories names web, but no Repository web exists in namespace team-a"),
        "{message}"
    );
    assert_eq!(status["repositories"][0]["state"], "Applied");
    assert_eq!(status["repositories"][1]["name"], "web");
    assert_eq!(status["repositories"][1]["state"], "Pending");
    assert_eq!(
        Harness::events(&requests),
        [
            ("Normal".to_owned(), "Updated".to_owned()),
            ("Warning".to_owned(), "NamedRepositoryNotFound".to_owned())
        ]
    );

    let stored = with_status(&lp, &status);
    h.reconcile::<LifecyclePolicyController>(&stored).await.unwrap();
    assert!(
        h.take_requests().iter().all(|r| !r.is_write()),
        "silent when repeated"
    );

    // web is created and becomes Ready: served, Ready, no Warning.
    let mut web = repository(true);
    web["metadata"]["name"] = json!("web");
    web["spec"]["name"] = json!("team-a/web");
    web["status"]["repositoryArn"] = json!("arn:aws:ecr:us-east-1:123456789012:repository/team-a/web");
    h.backend.seed_repository("us-east-1", "team-a/web", vec![]);
    h.routes.lock().unwrap().lists.insert(
        "/apis/ecr-operator.dev/v1alpha1/namespaces/team-a/repositories".into(),
        vec![repository(true), web],
    );
    h.reconcile::<LifecyclePolicyController>(&stored).await.unwrap();
    let requests = h.take_requests();
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    assert!(!Harness::events(&requests).iter().any(|(t, _)| t == "Warning"));
}

/// A selector that matches no Repository: Ready (nothing is left to do), with the reason
/// `NoRepositorySelected` and a message saying so, one Warning when it starts, no ECR call, and
/// silence when repeated.
#[tokio::test]
async fn a_selector_that_matches_nothing_is_ready_and_says_so_once() {
    let mut lp = policy(true);
    lp.spec.repositories = None;
    lp.spec.repository_selector =
        serde_json::from_value(json!({"matchLabels": {"lifecycle": "none"}})).unwrap();
    let h = harness(vec![repository(true)], vec![serde_json::to_value(&lp).unwrap()]);
    h.reconcile::<LifecyclePolicyController>(&lp).await.unwrap();
    assert!(h.backend.calls().is_empty(), "{:?}", h.backend.calls());
    let requests = h.take_requests();
    let status = Harness::status_writes(&requests)[0].clone();
    assert_eq!(
        condition(&status, "Ready"),
        Some(("True".into(), "NoRepositorySelected".into()))
    );
    assert_eq!(condition(&status, "Reconciling"), None);
    let message = status["conditions"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("repositorySelector matches no Repository in namespace team-a"),
        "{message}"
    );
    assert_eq!(
        Harness::events(&requests),
        [("Warning".to_owned(), "NoRepositorySelected".to_owned())]
    );
    h.reconcile::<LifecyclePolicyController>(&with_status(&lp, &status))
        .await
        .unwrap();
    let requests = h.take_requests();
    assert!(requests.iter().all(|r| !r.is_write()), "{requests:?}");
}

/// A deletion time, for a LifecyclePolicy being deleted.
fn deleting(lp: &LifecyclePolicy) -> LifecyclePolicy {
    let mut lp = lp.clone();
    lp.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(2_000_000_000).unwrap(),
    ));
    lp
}

fn unready_registry() -> crate::api::v1alpha1::Registry {
    let mut unready = ready_registry("default");
    unready.status.as_mut().unwrap().conditions[0].status = "False".into();
    unready
}

fn ecr_policy(h: &Harness) -> Option<String> {
    h.backend
        .state
        .lock()
        .unwrap()
        .lifecycle_policies
        .get("team-a/api")
        .cloned()
}

fn finalizer_removed(requests: &[super::Recorded]) -> bool {
    requests
        .iter()
        .any(|r| r.method == "PATCH" && !r.is_status_write())
}

/// Applied, then the Registry goes not Ready and the policy reconciles (its Repository changed):
/// the entry waits and keeps the record of the put. Deleted then, the policy still waits for the
/// Registry instead of dropping its finalizer with the policy left in ECR (the record used to be
/// lost at this reconcile, so the deletion went through at once and forgot the policy).
#[tokio::test]
async fn a_reconcile_while_the_registry_is_not_ready_keeps_the_record_so_deletion_still_waits() {
    let lp = policy(true);
    let mut h = harness(vec![repository(true)], vec![serde_json::to_value(&lp).unwrap()]);
    h.reconcile::<LifecyclePolicyController>(&lp).await.unwrap();
    let applied = with_status(&lp, &Harness::status_writes(&h.take_requests())[0]);
    let hash = applied.status.as_ref().unwrap().repositories[0].hash.clone();
    assert!(hash.is_some());

    h.set_registry(unready_registry());
    h.reconcile::<LifecyclePolicyController>(&applied).await.unwrap();
    let writes = Harness::status_writes(&h.take_requests());
    let entry = &writes[0]["repositories"][0];
    assert_eq!(entry["state"], "Pending");
    assert_eq!(entry["hash"].as_str(), hash.as_deref(), "the record is kept");
    assert_eq!(entry["ecrName"], "team-a/api");
    assert_eq!(entry["registry"], "default");
    let waiting = with_status(&applied, &writes[0]);

    let result = h
        .reconcile::<LifecyclePolicyController>(&deleting(&waiting))
        .await;
    assert_eq!(class(&result), Some(ErrorClass::Waiting));
    assert!(!finalizer_removed(&h.take_requests()), "the finalizer stays");
    assert!(ecr_policy(&h).is_some());

    h.set_registry(ready_registry("default"));
    h.reconcile::<LifecyclePolicyController>(&deleting(&waiting))
        .await
        .unwrap();
    assert!(ecr_policy(&h).is_none(), "removed once the Registry is back");
    assert!(finalizer_removed(&h.take_requests()));
}

/// Changed rules whose put fails keep the record of the earlier put, so a deletion before the
/// next successful put still removes the policy that is in ECR.
#[tokio::test]
async fn a_failed_put_of_changed_rules_keeps_the_record_of_the_earlier_put() {
    let lp = policy(true);
    let h = harness(vec![repository(true)], vec![serde_json::to_value(&lp).unwrap()]);
    h.reconcile::<LifecyclePolicyController>(&lp).await.unwrap();
    let applied = with_status(&lp, &Harness::status_writes(&h.take_requests())[0]);
    let hash = applied.status.as_ref().unwrap().repositories[0].hash.clone();

    let mut changed = applied.clone();
    changed.spec.rules[0].selection.count_number = 30;
    h.backend
        .fail_next("PutLifecyclePolicy", BackendError::Throttled("slow".into()));
    let result = h.reconcile::<LifecyclePolicyController>(&changed).await;
    assert_eq!(class(&result), Some(ErrorClass::Transient));
    let writes = Harness::status_writes(&h.take_requests());
    let entry = &writes[0]["repositories"][0];
    assert_eq!(entry["state"], "Failed");
    assert_eq!(
        entry["hash"].as_str(),
        hash.as_deref(),
        "the earlier put's record"
    );

    let failed = with_status(&changed, &writes[0]);
    h.reconcile::<LifecyclePolicyController>(&deleting(&failed))
        .await
        .unwrap();
    assert!(ecr_policy(&h).is_none(), "the policy in ECR is removed");
}

/// `dryRun` set after a put previews the rules and leaves what was put in ECR, still recorded:
/// deleting the LifecyclePolicy removes it.
#[tokio::test]
async fn dry_run_after_a_put_keeps_the_record_and_deletion_removes_the_policy() {
    let lp = policy(true);
    let h = harness(vec![repository(true)], vec![serde_json::to_value(&lp).unwrap()]);
    h.reconcile::<LifecyclePolicyController>(&lp).await.unwrap();
    let applied = with_status(&lp, &Harness::status_writes(&h.take_requests())[0]);

    let mut preview = applied.clone();
    preview.spec.dry_run = true;
    h.reconcile::<LifecyclePolicyController>(&preview).await.unwrap();
    let writes = Harness::status_writes(&h.take_requests());
    let entry = &writes[0]["repositories"][0];
    assert_eq!(entry["state"], "Previewed");
    assert_eq!(entry["hash"].as_str().map(str::len), Some(64));
    assert!(ecr_policy(&h).is_some(), "dryRun leaves what was put");

    let previewed = with_status(&preview, &writes[0]);
    h.reconcile::<LifecyclePolicyController>(&deleting(&previewed))
        .await
        .unwrap();
    assert!(ecr_policy(&h).is_none());
    assert!(finalizer_removed(&h.take_requests()));
}

/// The ECR repository was deleted (its Repository had `deletionPolicy: Delete`): ECR answers
/// RepositoryNotFoundException, which means nothing is left to remove. The record goes, no ECR
/// error is reported, and its deletion is not held (it used to retry forever, holding the
/// namespace).
#[tokio::test]
async fn a_repository_deleted_from_ecr_leaves_nothing_to_remove_and_holds_nothing() {
    let lp = policy(true);
    let h = harness(vec![repository(true)], vec![serde_json::to_value(&lp).unwrap()]);
    h.reconcile::<LifecyclePolicyController>(&lp).await.unwrap();
    let applied = with_status(&lp, &Harness::status_writes(&h.take_requests())[0]);

    // The Repository and its ECR repository are gone.
    let h = harness(vec![], vec![serde_json::to_value(&applied).unwrap()]);
    h.backend.state.lock().unwrap().repositories.remove("team-a/api");
    h.reconcile::<LifecyclePolicyController>(&applied).await.unwrap();
    let writes = Harness::status_writes(&h.take_requests());
    // The record goes (the named Repository is reported missing, nothing is recorded for it),
    // and ECR's answer is no error: the policy waits only for the name it lists.
    let entries = writes[0]["repositories"].as_array().cloned().unwrap_or_default();
    assert!(
        entries.iter().all(|e| e.get("hash").is_none()),
        "the record goes: {writes:?}"
    );
    assert_eq!(
        condition(&writes[0], "Reconciling"),
        Some(("True".into(), "NamedRepositoryNotFound".into()))
    );
    assert!(!h.backend.writes().contains(&"DeleteLifecyclePolicy"));

    // Deleted while the record is still there: the finalizer goes at once.
    h.reconcile::<LifecyclePolicyController>(&deleting(&applied))
        .await
        .unwrap();
    assert!(finalizer_removed(&h.take_requests()));
}
