//! Registry and replication reconciles against the mock API server and the in-memory backend.

use crate::controllers::replication_rule::ReplicationRuleController;
use serde_json::json;

use super::{Harness, Routes, class, condition, ready_registry, with_status};
use crate::api::v1alpha1::{Registry, ReplicationRule};
use crate::backend::BackendError;
use crate::controllers::registry::RegistryController;
use crate::controllers::replication::ReplicationController;
use crate::error::ErrorClass;

fn registry(spec: serde_json::Value) -> Registry {
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "default", "uid": "uid-default", "generation": 3,
            "finalizers": [crate::api::FINALIZER]},
        "spec": spec,
    }))
    .unwrap()
}

#[tokio::test]
async fn a_registry_becomes_ready_with_its_id_and_host_then_writes_nothing() {
    let h = Harness::new(Routes::default(), &[]);
    let r = registry(json!({"region": "eu-west-1"}));
    h.reconcile::<RegistryController>(&r).await.unwrap();
    let requests = h.take_requests();
    let writes = Harness::status_writes(&requests);
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0]["registryId"], "123456789012");
    assert_eq!(
        writes[0]["registryHost"],
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    );
    assert_eq!(
        condition(&writes[0], "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    assert!(
        writes[0].get("replication").is_none(),
        "never the replication controller's field"
    );
    // Only the status is written, and in sync the next reconcile writes nothing.
    assert!(
        requests
            .iter()
            .filter(|r| r.is_write())
            .all(|r| r.is_status_write())
    );
    h.reconcile::<RegistryController>(&with_status(&r, &writes[0]))
        .await
        .unwrap();
    assert!(h.take_requests().iter().all(|r| !r.is_write()));
    assert!(h.backend.writes().is_empty(), "{:?}", h.backend.calls());
}

#[tokio::test]
async fn registry_settings_are_put_once() {
    let h = Harness::new(Routes::default(), &[]);
    let r = registry(
        json!({"region": "eu-west-1", "scanning": {"scanType": "Enhanced"},
        "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:ReplicateImage"}]}}),
    );
    h.reconcile::<RegistryController>(&r).await.unwrap();
    assert_eq!(
        h.backend.writes(),
        ["PutRegistryScanningConfiguration", "PutRegistryPolicy"]
    );
    let requests = h.take_requests();
    assert_eq!(
        Harness::events(&requests),
        [("Normal".to_owned(), "Updated".to_owned())]
    );
    let settled = with_status(&r, &Harness::status_writes(&requests)[0]);
    h.reconcile::<RegistryController>(&settled).await.unwrap();
    assert_eq!(h.backend.writes().len(), 2, "in sync: not put again");
}

#[tokio::test]
async fn an_account_mismatch_stalls_and_a_throttled_describe_retries() {
    let h = Harness::new(Routes::default(), &[]);
    let wrong = registry(json!({"region": "eu-west-1", "accountId": "999999999999"}));
    let result = h.reconcile::<RegistryController>(&wrong).await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Stalled"),
        Some(("True".into(), "AccountMismatch".into()))
    );

    h.backend
        .fail_next("DescribeRegistry", BackendError::Unavailable("503".into()));
    let result = h
        .reconcile::<RegistryController>(&registry(json!({"region": "eu-west-1"})))
        .await;
    assert_eq!(class(&result), Some(ErrorClass::Transient));
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Reconciling"),
        Some(("True".into(), "ProgressingWithRetry".into()))
    );
}

/// What admission could not refuse (a selector stored before its rules, a policy whose
/// serialised size only the operator knows) stalls the Registry before any ECR call: it is never
/// Ready, so the objects on it wait instead of each failing tenancy.
#[tokio::test]
async fn an_invalid_allowed_namespaces_or_an_oversized_policy_stalls_before_any_ecr_call() {
    let cases = [
        (
            json!({"region": "eu-west-1", "allowedNamespaces": {"matchExpressions": [
                {"key": "tenant", "operator": "Equals", "values": ["true"]}]}}),
            "InvalidSpec",
            "matchExpressions[0].operator is \"Equals\"",
        ),
        (
            json!({"region": "eu-west-1", "policy": {"Version": "2012-10-17", "Statement": [
                {"Sid": "x".repeat(11_000), "Effect": "Allow", "Principal": "*", "Action": "ecr:ReplicateImage"}]}}),
            "InvalidPolicy",
            "ECR allows at most 10240",
        ),
    ];
    for (spec, reason, detail) in cases {
        let h = Harness::new(Routes::default(), &[]);
        let result = h.reconcile::<RegistryController>(&registry(spec)).await;
        assert_eq!(class(&result), Some(ErrorClass::Stalled), "{reason}");
        assert!(h.backend.calls().is_empty(), "{:?}", h.backend.calls());
        let writes = Harness::status_writes(&h.take_requests());
        assert_eq!(
            condition(&writes[0], "Stalled"),
            Some(("True".into(), reason.into()))
        );
        assert_eq!(
            condition(&writes[0], "Ready"),
            Some(("False".into(), reason.into()))
        );
        let message = writes[0]["conditions"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(detail), "{message}");
    }
}

#[tokio::test]
async fn a_suspended_registry_calls_nothing_and_says_so_once() {
    let h = Harness::new(Routes::default(), &[]);
    // Ready and in sync at generation 2, then suspended (and edited) at generation 3.
    let ready = json!({"observedGeneration": 2, "registryId": "123456789012",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "in sync",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 2}]});
    let r = with_status(&registry(json!({"region": "eu-west-1", "suspend": true})), &ready);
    h.reconcile::<RegistryController>(&r).await.unwrap();
    assert!(h.backend.calls().is_empty(), "{:?}", h.backend.calls());
    let requests = h.take_requests();
    let writes = Harness::status_writes(&requests);
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0]["observedGeneration"], 3);
    assert_eq!(writes[0]["registryId"], "123456789012", "what was known is kept");
    assert_eq!(
        condition(&writes[0], "Suspended"),
        Some(("True".into(), "Suspended".into()))
    );
    assert_eq!(condition(&writes[0], "Ready"), None, "no claim either way");
    assert_eq!(condition(&writes[0], "Reconciling"), None);
    assert_eq!(condition(&writes[0], "Stalled"), None);
    assert_eq!(
        Harness::events(&requests),
        [("Normal".to_owned(), "Suspended".to_owned())]
    );
    // Stays suspended: nothing more is written or published.
    h.reconcile::<RegistryController>(&with_status(&r, &writes[0]))
        .await
        .unwrap();
    assert!(h.take_requests().iter().all(|r| !r.is_write()));
    assert!(h.backend.calls().is_empty());
}

fn rule(name: &str) -> ReplicationRule {
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ReplicationRule",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 1},
        "spec": {"registryRef": {"name": "default"}, "destinations": [{"region": "us-west-2", "registryId": "123456789012"}]},
    }))
    .unwrap()
}

fn replication_harness(rules: &[ReplicationRule]) -> (Harness, Registry) {
    let registry = ready_registry("default");
    let mut routes = Routes::default();
    routes.lists.insert(
        "/apis/ecr-operator.dev/v1alpha1/replicationrules".into(),
        rules.iter().map(|r| serde_json::to_value(r).unwrap()).collect(),
    );
    let h = Harness::new(routes, std::slice::from_ref(&registry));
    (h, registry)
}

#[tokio::test]
async fn replication_writes_the_document_its_bookkeeping_and_each_rules_status_once() {
    let (h, registry) = replication_harness(&[rule("to-oregon")]);
    h.reconcile::<ReplicationController>(&registry).await.unwrap();
    assert_eq!(h.backend.writes(), ["PutReplicationConfiguration"]);
    let requests = h.take_requests();
    let registry_write = requests
        .iter()
        .find(|r| r.is_status_write() && r.path.contains("/registries/"))
        .unwrap();
    assert_eq!(
        registry_write.field_manager().as_deref(),
        Some("ecr-operator/replication")
    );
    // Only its own field: the Registry controller's fields are left to it.
    let status = &registry_write.body["status"];
    assert_eq!(
        status.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["replication"]
    );
    assert_eq!(status["replication"]["rules"][0]["name"], "to-oregon");
    let rule_write = requests
        .iter()
        .find(|r| r.is_status_write() && r.path.contains("/replicationrules/"))
        .unwrap();
    assert_eq!(
        condition(&rule_write.body["status"], "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );

    // In sync: nothing is put, and the bookkeeping is not written again.
    let settled = with_status(&registry, &{
        let mut s = serde_json::to_value(registry.status.clone()).unwrap();
        s["replication"] = status["replication"].clone();
        s
    });
    h.reconcile::<ReplicationController>(&settled).await.unwrap();
    assert_eq!(h.backend.writes().len(), 1);
    assert!(
        !h.take_requests()
            .iter()
            .any(|r| r.is_status_write() && r.path.contains("/registries/"))
    );
}

#[tokio::test]
async fn replication_with_no_rules_and_nothing_recorded_touches_nothing() {
    let (h, registry) = replication_harness(&[]);
    h.reconcile::<ReplicationController>(&registry).await.unwrap();
    assert!(h.backend.calls().is_empty());
    assert!(h.take_requests().iter().all(|r| !r.is_write()));
}

#[tokio::test]
async fn a_throttled_replication_put_reports_on_each_rule_and_retries() {
    let (h, registry) = replication_harness(&[rule("a"), rule("b")]);
    h.backend.fail_next(
        "PutReplicationConfiguration",
        BackendError::Throttled("slow".into()),
    );
    let result = h.reconcile::<ReplicationController>(&registry).await;
    assert_eq!(class(&result), Some(ErrorClass::Transient));
    let requests = h.take_requests();
    let rule_writes: Vec<_> = requests
        .iter()
        .filter(|r| r.is_status_write() && r.path.contains("/replicationrules/"))
        .collect();
    assert_eq!(rule_writes.len(), 2);
    for w in rule_writes {
        assert_eq!(
            condition(&w.body["status"], "Reconciling"),
            Some(("True".into(), "ProgressingWithRetry".into()))
        );
    }
    // Nothing recorded as ours when the put failed.
    assert!(
        !requests
            .iter()
            .any(|r| r.is_status_write() && r.path.contains("/registries/"))
    );
    assert!(
        Harness::events(&requests).is_empty(),
        "reported on the rules, not as events"
    );
}

#[tokio::test]
async fn rules_beyond_ecrs_limit_stall_and_the_others_are_applied() {
    let rules: Vec<ReplicationRule> = (0..11)
        .map(|i| {
            let mut r = rule(&format!("rule-{i:02}"));
            r.spec.repository_filters = Some(
                serde_json::from_value(
                    json!([{"filter": format!("team-{i:02}/"), "filterType": "PREFIX_MATCH"}]),
                )
                .unwrap(),
            );
            r
        })
        .collect();
    let (h, registry) = replication_harness(&rules);
    let result = h.reconcile::<ReplicationController>(&registry).await;
    assert!(
        result.is_ok(),
        "a rule that does not fit is a verdict, not a failed reconcile"
    );
    assert_eq!(
        h.backend.state.lock().unwrap().replication.len(),
        10,
        "ECR's limit"
    );
    let requests = h.take_requests();
    let stalled: Vec<_> = requests
        .iter()
        .filter(|r| r.is_status_write() && r.path.contains("/replicationrules/"))
        .filter(|r| condition(&r.body["status"], "Stalled") == Some(("True".into(), "LimitExceeded".into())))
        .map(|r| r.path.rsplit('/').nth(1).unwrap_or_default().to_owned())
        .collect();
    assert_eq!(stalled, ["rule-10"], "the newest by (priority, name) is left out");
}

/// A rule whose Registry does not exist: only the ReplicationRule controller can report on it.
#[tokio::test]
async fn a_rule_whose_registry_is_missing_waits_with_one_warning_and_no_ecr_call() {
    let h = Harness::new(Routes::default(), &[]);
    let result = h.reconcile::<ReplicationRuleController>(&rule("lost")).await;
    assert_eq!(class(&result), Some(ErrorClass::Waiting));
    let requests = h.take_requests();
    let writes = Harness::status_writes(&requests);
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0]["observedGeneration"], 1);
    assert_eq!(
        condition(&writes[0], "Reconciling"),
        Some(("True".into(), "DependencyNotReady".into()))
    );
    assert_eq!(
        Harness::events(&requests),
        [("Warning".to_owned(), "DependencyNotReady".to_owned())]
    );
    assert!(h.backend.calls().is_empty());
}

/// Still waiting, with that status stored: the next reconcile writes nothing and warns no more.
#[tokio::test]
async fn a_rule_still_waiting_for_its_registry_writes_and_warns_nothing_more() {
    let h = Harness::new(Routes::default(), &[]);
    let lost = rule("lost");
    let _ = h.reconcile::<ReplicationRuleController>(&lost).await;
    let writes = Harness::status_writes(&h.take_requests());
    let result = h
        .reconcile::<ReplicationRuleController>(&with_status(&lost, &writes[0]))
        .await;
    assert_eq!(class(&result), Some(ErrorClass::Waiting));
    let requests = h.take_requests();
    assert!(requests.iter().all(|r| !r.is_write()), "{requests:?}");
    assert!(Harness::events(&requests).is_empty());
    assert!(h.backend.calls().is_empty());
}

#[tokio::test]
async fn a_suspended_rule_says_so_and_calls_nothing() {
    let h = Harness::new(Routes::default(), &[]);
    let mut suspended = rule("paused");
    suspended.spec.suspend = true;
    h.reconcile::<ReplicationRuleController>(&suspended)
        .await
        .unwrap();
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "Suspended"),
        Some(("True".into(), "Suspended".into()))
    );
    assert!(h.backend.calls().is_empty());
}

/// With its Registry, the rule is the replication controller's to report on: no write here.
#[tokio::test]
async fn a_rule_with_its_registry_is_left_to_the_replication_controller() {
    let h = Harness::new(Routes::default(), &[ready_registry("default")]);
    h.reconcile::<ReplicationRuleController>(&rule("served"))
        .await
        .unwrap();
    assert!(h.take_requests().iter().all(|r| !r.is_write()));
    assert!(h.backend.calls().is_empty());
}

/// Deleting a Registry that objects still use: it stays (finalizer), keeps Ready (their cleanup
/// needs it) and names them in `InUse`; once they are gone, the finalizer goes.
#[tokio::test]
async fn a_registry_in_use_waits_for_its_users_and_then_goes() {
    let repository = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": "web", "namespace": "shop"}, "spec": {"registryRef": {"name": "default"}}});
    let mut routes = Routes::default();
    for kind in [
        "repositories",
        "lifecyclepolicies",
        "replicationrules",
        "pullsecrets",
        "clusterpullsecrets",
    ] {
        routes
            .lists
            .insert(format!("/apis/ecr-operator.dev/v1alpha1/{kind}"), vec![]);
    }
    routes.lists.insert(
        "/apis/ecr-operator.dev/v1alpha1/repositories".into(),
        vec![repository],
    );
    let h = Harness::new(routes, &[]);
    let ready = json!({"observedGeneration": 3, "registryId": "123456789012",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "reachable",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 3}]});
    let mut deleting = with_status(&registry(json!({"region": "eu-west-1"})), &ready);
    deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(1).unwrap(),
    ));
    let result = h.reconcile::<RegistryController>(&deleting).await;
    assert_eq!(class(&result), Some(ErrorClass::Waiting));
    let requests = h.take_requests();
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "PATCH" && !r.is_status_write()),
        "the finalizer stays: {requests:?}"
    );
    let writes = Harness::status_writes(&requests);
    assert_eq!(writes.len(), 1);
    assert_eq!(
        condition(&writes[0], "Ready"),
        Some(("True".into(), "Succeeded".into())),
        "still serving its users"
    );
    assert_eq!(
        condition(&writes[0], "InUse"),
        Some(("True".into(), "InUse".into()))
    );
    assert!(
        writes[0].to_string().contains("Repository shop/web"),
        "{}",
        writes[0]
    );
    assert_eq!(
        Harness::events(&requests),
        [("Warning".to_owned(), "InUse".to_owned())]
    );
    assert!(h.backend.calls().is_empty());

    // The Repository is gone: the finalizer is removed.
    h.routes
        .lock()
        .unwrap()
        .lists
        .insert("/apis/ecr-operator.dev/v1alpha1/repositories".into(), vec![]);
    let deleting = with_status(&deleting, &writes[0]);
    h.reconcile::<RegistryController>(&deleting).await.unwrap();
    let requests = h.take_requests();
    let finalizer_patch = requests
        .iter()
        .find(|r| r.method == "PATCH" && !r.is_status_write())
        .expect("the finalizer is removed");
    // kube's finalizer helper removes it with a JSON patch.
    let ops = finalizer_patch.body.as_array().expect("a JSON patch");
    assert!(
        ops.iter().any(|op| op["op"] == "remove"
            && op["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/metadata/finalizers"))),
        "{ops:?}"
    );
}

/// A Ready Registry of the fake's registry, created at `created` (seconds), with `spec` on top of
/// its region.
fn registry_at(name: &str, created: i64, spec: serde_json::Value) -> Registry {
    let mut spec = spec;
    spec["region"] = json!("us-east-1");
    let mut r: Registry = serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 1,
            "finalizers": [crate::api::FINALIZER],
            "creationTimestamp": k8s_openapi::jiff::Timestamp::from_second(created).unwrap().to_string()},
        "spec": spec,
    }))
    .unwrap();
    r.status = ready_registry(name).status;
    r
}

fn settings() -> serde_json::Value {
    json!({"scanning": {"scanType": "Enhanced"},
        "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:ReplicateImage"}]}})
}

fn rule_on(name: &str, registry: &str) -> ReplicationRule {
    let mut r = rule(name);
    r.spec.registry_ref.name = registry.into();
    r
}

fn with_rules(rules: &[ReplicationRule]) -> Routes {
    let mut routes = Routes::default();
    routes.lists.insert(
        "/apis/ecr-operator.dev/v1alpha1/replicationrules".into(),
        rules.iter().map(|r| serde_json::to_value(r).unwrap()).collect(),
    );
    routes
}

/// Two Registries reach the same registry and both set its scanning configuration and policy:
/// the older one writes them; the newer one writes nothing registry-wide, stays Ready for its
/// Repositories, says who owns what (`SettingsConflict`, reason `Conflict`) with one Warning, and
/// stays silent while nothing changes.
#[tokio::test]
async fn of_two_registries_of_one_registry_only_the_older_writes_its_settings() {
    let platform = registry_at("platform", 100, settings());
    let team = registry_at("team", 200, settings());
    let h = Harness::new(with_rules(&[]), &[platform.clone(), team.clone()]);

    h.reconcile::<RegistryController>(&team).await.unwrap();
    assert!(h.backend.writes().is_empty(), "{:?}", h.backend.calls());
    assert_eq!(
        h.backend.calls(),
        ["DescribeRegistry"],
        "not even a read of the settings"
    );
    let requests = h.take_requests();
    let writes = Harness::status_writes(&requests);
    assert_eq!(writes.len(), 1);
    assert_eq!(
        condition(&writes[0], "Ready"),
        Some(("True".into(), "Succeeded".into())),
        "still serves its Repositories and pull secrets"
    );
    assert_eq!(
        condition(&writes[0], "SettingsConflict"),
        Some(("True".into(), "Conflict".into()))
    );
    let message = writes[0]["conditions"][1]["message"].as_str().unwrap_or_default();
    assert!(
        message
            .starts_with("Registry platform reaches the same registry (account 123456789012 in us-east-1)")
            && message.contains("scanning configuration and registry policy"),
        "{message}"
    );
    assert_eq!(
        Harness::events(&requests),
        [("Warning".to_owned(), "Conflict".to_owned())]
    );
    // In that state: nothing written, nothing published, still no ECR write.
    h.reconcile::<RegistryController>(&with_status(&team, &writes[0]))
        .await
        .unwrap();
    assert!(h.take_requests().iter().all(|r| !r.is_write()));
    assert!(h.backend.writes().is_empty());

    // The owner writes them.
    h.reconcile::<RegistryController>(&platform).await.unwrap();
    assert_eq!(
        h.backend.writes(),
        ["PutRegistryScanningConfiguration", "PutRegistryPolicy"]
    );
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(condition(&writes[0], "SettingsConflict"), None);
}

/// A newer Registry of the same registry that sets nothing registry-wide and has no rules is no
/// conflict: no condition, no Warning.
#[tokio::test]
async fn a_registry_that_sets_nothing_registry_wide_is_no_conflict() {
    let platform = registry_at("platform", 100, settings());
    let team = registry_at("team", 200, json!({}));
    let h = Harness::new(
        with_rules(&[rule_on("platform-dr", "platform")]),
        &[platform, team.clone()],
    );
    h.reconcile::<RegistryController>(&team).await.unwrap();
    let requests = h.take_requests();
    let writes = Harness::status_writes(&requests);
    assert_eq!(condition(&writes[0], "SettingsConflict"), None);
    assert!(Harness::events(&requests).is_empty());
    assert!(h.backend.writes().is_empty());
}

/// Both Registries have ReplicationRules: the older one's replication controller writes the
/// document; the newer one's reads and writes nothing in ECR, and reports `Conflict` on its
/// rules, naming the owner; its Registry says so too.
#[tokio::test]
async fn of_two_registries_of_one_registry_only_the_older_writes_the_replication_configuration() {
    let platform = registry_at("platform", 100, json!({}));
    let team = registry_at("team", 200, json!({}));
    let rules = [rule_on("platform-dr", "platform"), rule_on("team-dr", "team")];
    let h = Harness::new(with_rules(&rules), &[platform.clone(), team.clone()]);

    h.reconcile::<ReplicationController>(&team).await.unwrap();
    assert!(h.backend.calls().is_empty(), "{:?}", h.backend.calls());
    let requests = h.take_requests();
    let rule_writes: Vec<_> = requests
        .iter()
        .filter(|r| r.is_status_write() && r.path.contains("/replicationrules/"))
        .collect();
    assert_eq!(rule_writes.len(), 1);
    assert!(rule_writes[0].path.ends_with("/team-dr/status"));
    let status = &rule_writes[0].body["status"];
    assert_eq!(
        condition(status, "Stalled"),
        Some(("True".into(), "Conflict".into()))
    );
    let message = status["conditions"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("to Registry platform") && message.contains("registryRef platform"),
        "{message}"
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.is_status_write() && r.path.contains("/registries/")),
        "no bookkeeping: it wrote nothing"
    );

    // The Registry controller of the newer one reports the replication configuration it leaves.
    h.reconcile::<RegistryController>(&team).await.unwrap();
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(
        condition(&writes[0], "SettingsConflict"),
        Some(("True".into(), "Conflict".into()))
    );
    assert!(writes[0].to_string().contains("replication configuration"));
    assert!(h.backend.writes().is_empty(), "{:?}", h.backend.calls());

    // The owner writes only its own rules.
    h.reconcile::<ReplicationController>(&platform).await.unwrap();
    assert_eq!(h.backend.writes(), ["PutReplicationConfiguration"]);
    assert_eq!(h.backend.state.lock().unwrap().replication.len(), 1);
}

/// An edit of `endpoint` or `auth` that reaches another account than the one the Registry has
/// served stalls it (its users are not moved silently), writes nothing and keeps the recorded
/// account; `spec.accountId` set to the new account moves it on purpose.
#[tokio::test]
async fn a_registry_that_now_reaches_another_account_stalls_until_told() {
    let h = Harness::new(Routes::default(), &[]);
    let served = json!({"observedGeneration": 1, "registryId": "111111111111",
        "registryHost": "111111111111.dkr.ecr.eu-west-1.amazonaws.com",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "reachable",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]});
    // The fake reaches 123456789012.
    let edited = with_status(
        &registry(json!({"region": "eu-west-1", "scanning": {"scanType": "Enhanced"}})),
        &served,
    );
    let result = h.reconcile::<RegistryController>(&edited).await;
    assert_eq!(class(&result), Some(ErrorClass::Stalled));
    assert_eq!(h.backend.calls(), ["DescribeRegistry"]);
    let requests = h.take_requests();
    let writes = Harness::status_writes(&requests);
    assert_eq!(
        condition(&writes[0], "Stalled"),
        Some(("True".into(), "AccountMismatch".into()))
    );
    assert_eq!(writes[0]["registryId"], "111111111111", "what it served stays");
    let message = writes[0]["conditions"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("has served account 111111111111")
            && message.contains("spec.accountId: \"123456789012\""),
        "{message}"
    );
    assert_eq!(
        Harness::events(&requests),
        [("Warning".to_owned(), "AccountMismatch".to_owned())]
    );

    // Moved on purpose.
    let moved = with_status(
        &registry(
            json!({"region": "eu-west-1", "accountId": "123456789012", "scanning": {"scanType": "Enhanced"}}),
        ),
        &writes[0],
    );
    h.reconcile::<RegistryController>(&moved).await.unwrap();
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(writes[0]["registryId"], "123456789012");
    assert_eq!(
        condition(&writes[0], "Ready"),
        Some(("True".into(), "Succeeded".into()))
    );
    assert_eq!(h.backend.writes(), ["PutRegistryScanningConfiguration"]);
}
