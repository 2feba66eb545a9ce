use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde_json::json;

use super::recorded;
use super::{self as targets, Applied, Plan, selects, targets, to_release, winner};
use crate::api::v1alpha1::{LifecyclePolicy, LifecyclePolicyTarget, Repository, RulePreview, TargetState};

pub(super) fn policy(name: &str, created: i64, spec: serde_json::Value) -> LifecyclePolicy {
    let mut spec = spec;
    spec["rules"] = json!([{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}}]);
    let mut p: LifecyclePolicy = serde_json::from_value(
        json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "LifecyclePolicy",
        "metadata": {"name": name, "namespace": "ns"}, "spec": spec}),
    )
    .unwrap();
    p.metadata.creation_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::from_second(created).unwrap()));
    p
}

pub(super) fn repo(name: &str, labels: serde_json::Value) -> Repository {
    serde_json::from_value(
        json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": name, "namespace": "ns", "labels": labels}, "spec": {}}),
    )
    .unwrap()
}

pub(super) fn ready(mut r: Repository) -> Repository {
    r.status = Some(crate::api::v1alpha1::RepositoryStatus {
        repository_arn: Some(format!("arn:aws:ecr:us-east-1:1:repository/{}", r.name_any())),
        ..Default::default()
    });
    r
}

pub(super) fn at(s: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap())
}

#[test]
fn selection_by_label_or_name_in_the_same_namespace() {
    let by_label = policy(
        "a",
        1,
        json!({"repositorySelector": {"matchLabels": {"lifecycle": "std"}}}),
    );
    let by_name = policy("b", 1, json!({"repositories": ["api"]}));
    assert!(selects(&by_label, &repo("api", json!({"lifecycle": "std"}))).unwrap());
    assert!(!selects(&by_label, &repo("api", json!({}))).unwrap());
    assert!(selects(&by_name, &repo("api", json!({}))).unwrap());
    assert!(!selects(&by_name, &repo("web", json!({}))).unwrap());
    let mut elsewhere = repo("api", json!({"lifecycle": "std"}));
    elsewhere.metadata.namespace = Some("other".into());
    assert!(!selects(&by_label, &elsewhere).unwrap());
}

/// A selector stored before the admission rules existed: `InvalidSpec` (Stalled) naming the
/// requirement, its value and the allowed operators, even when no Repository exists to try it on;
/// such a policy never wins a Repository.
#[test]
fn an_invalid_repository_selector_is_invalid_spec_naming_the_value() {
    use crate::api::selector::{OPERATOR_MESSAGE, VALUES_FORBIDDEN_MESSAGE, VALUES_REQUIRED_MESSAGE};
    let cases = [
        (
            json!({"key": "lifecycle", "operator": "Equals", "values": ["std"]}),
            OPERATOR_MESSAGE,
            "matchExpressions[0].operator is \"Equals\"",
        ),
        (
            json!({"key": "lifecycle", "operator": "NotIn"}),
            VALUES_REQUIRED_MESSAGE,
            "matchExpressions[0] is \"lifecycle\" NotIn with no values",
        ),
        (
            json!({"key": "lifecycle", "operator": "DoesNotExist", "values": ["std"]}),
            VALUES_FORBIDDEN_MESSAGE,
            "matchExpressions[0] is \"lifecycle\" DoesNotExist with 1 value(s)",
        ),
    ];
    let labelled = repo("api", json!({"lifecycle": "std"}));
    for (requirement, rule, detail) in cases {
        let lp = policy(
            "bad",
            1,
            json!({"repositorySelector": {"matchExpressions": [requirement]}}),
        );
        for result in [
            targets::repository_selector(&lp).map(|_| ()),
            targets(&lp, &[], std::slice::from_ref(&lp)).map(|_| ()),
            selects(&lp, &labelled).map(|_| ()),
        ] {
            let err = result.unwrap_err();
            assert_eq!(
                (err.class(), err.reason()),
                (crate::error::ErrorClass::Stalled, "InvalidSpec")
            );
            let text = err.to_string();
            assert!(
                text.contains(&format!("invalid repositorySelector: {rule} ({detail})")),
                "{text}"
            );
        }
        assert!(winner(std::slice::from_ref(&lp), &labelled).is_none());
    }
}

#[test]
fn the_oldest_policy_wins_then_the_name() {
    let r = repo("api", json!({"lifecycle": "std"}));
    let sel = json!({"repositorySelector": {"matchLabels": {"lifecycle": "std"}}});
    let ps = vec![
        policy("zeta", 100, sel.clone()),
        policy("alpha", 200, sel.clone()),
        policy("beta", 100, sel.clone()),
    ];
    assert_eq!(winner(&ps, &r).unwrap().name_any(), "beta");
    let mut gone = ps.clone();
    gone[2].metadata.deletion_timestamp = Some(at(300));
    assert_eq!(winner(&gone, &r).unwrap().name_any(), "zeta");
}

#[test]
fn targets_table_serve_pending_conflict() {
    let sel = json!({"repositorySelector": {"matchLabels": {"lifecycle": "std"}}});
    let old = policy("old", 1, json!({"repositories": ["taken"]}));
    let lp = policy("new", 2, sel);
    let repos = vec![
        ready(repo("api", json!({"lifecycle": "std"}))),
        repo("fresh", json!({"lifecycle": "std"})),
        ready(repo("taken", json!({"lifecycle": "std"}))),
        ready(repo("other", json!({}))),
    ];
    let plans = targets(&lp, &repos, &[old, lp.clone()]).unwrap();
    assert_eq!(
        plans,
        vec![
            (
                "api".to_owned(),
                Plan::Serve {
                    ecr_name: "api".into(),
                    registry: "default".into()
                }
            ),
            ("fresh".to_owned(), Plan::Pending),
            ("taken".to_owned(), Plan::Conflict { holder: "old".into() }),
        ]
    );
}

#[test]
fn records_no_longer_served_are_released_and_nothing_else() {
    let rec = |name: &str, registry: Option<&str>, hash: Option<&str>| LifecyclePolicyTarget {
        name: name.into(),
        state: TargetState::Applied,
        ecr_name: Some(format!("ns/{name}")),
        registry: registry.map(str::to_owned),
        hash: hash.map(str::to_owned),
        ..Default::default()
    };
    let previous = vec![
        rec("kept", Some("default"), Some("h")),
        rec("dropped", Some("default"), Some("h")),
        rec("moved", Some("default"), Some("h")),
        rec("never-put", None, None),
    ];
    let serving = vec![
        ("default".to_owned(), "ns/kept".to_owned()),
        ("other".to_owned(), "ns/moved".to_owned()),
    ];
    let names: Vec<&str> = to_release(&previous, &serving)
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, ["dropped", "moved"]);
    // Deleting the policy releases every record it holds.
    assert_eq!(to_release(&previous, &[]).len(), 3);
}

#[test]
fn status_table_ready_waiting_stalled_failed() {
    let mut lp = policy("a", 1, json!({"repositories": ["api"]}));
    lp.metadata.generation = Some(3);
    let now = at(1_000);
    let with = |states: &[TargetState]| Applied {
        targets: states
            .iter()
            .enumerate()
            .map(|(i, s)| targets::entry(&format!("r{i}"), *s, None))
            .collect(),
        ..Default::default()
    };
    let verdict = |applied: Option<&Applied>, failure: Option<&crate::error::Error>| {
        let s = targets::next_status(&lp, applied, failure, &now);
        (
            crate::status::kstatus(
                lp.metadata.generation,
                s.observed_generation,
                &s.conditions,
                false,
            )
            .as_str(),
            s.conditions[0].reason.clone(),
        )
    };
    let cases: Vec<(Applied, &str, &str)> = vec![
        (with(&[TargetState::Applied]), "Current", "Succeeded"),
        (with(&[]), "Current", "Succeeded"),
        (
            with(&[TargetState::Applied, TargetState::Pending]),
            "InProgress",
            "DependencyNotReady",
        ),
        (
            with(&[TargetState::Releasing]),
            "InProgress",
            "DependencyNotReady",
        ),
        (
            with(&[TargetState::Pending, TargetState::Conflict]),
            "Failed",
            "Conflict",
        ),
    ];
    for (applied, kstatus, reason) in cases {
        assert_eq!(
            verdict(Some(&applied), None),
            (kstatus, reason.to_owned()),
            "{:?}",
            applied.targets
        );
    }
    let throttled = crate::error::Error::backend("PutLifecyclePolicy")(
        crate::backend::BackendError::Throttled("slow".into()),
    );
    let applied = with(&[TargetState::Applied, TargetState::Failed]);
    assert_eq!(
        verdict(Some(&applied), Some(&throttled)),
        ("InProgress", "Throttled".to_owned())
    );
    let invalid = crate::error::Error::InvalidPolicy("bad".into());
    assert_eq!(
        verdict(None, Some(&invalid)),
        ("Failed", "InvalidPolicy".to_owned())
    );
    // A failure keeps what this reconcile recorded.
    let s = targets::next_status(&lp, Some(&applied), Some(&throttled), &now);
    assert_eq!(s.repositories.len(), 2);
}

#[test]
fn preview_evaluated_at_moves_only_when_the_preview_changes() {
    let lp = policy("a", 1, json!({"repositories": ["api"]}));
    let ok = |expiring| Applied {
        targets: vec![targets::entry("api", TargetState::Applied, None)],
        preview: vec![RulePreview {
            rule_priority: 1,
            matched: 7,
            expiring,
            ..Default::default()
        }],
        ..Default::default()
    };
    let s1 = targets::next_status(&lp, Some(&ok(2)), None, &at(1_000));
    let mut lp2 = lp.clone();
    lp2.status = Some(s1.clone());
    assert_eq!(
        targets::next_status(&lp2, Some(&ok(2)), None, &at(2_000)),
        s1,
        "same preview: identical status, no write"
    );
    let s3 = targets::next_status(&lp2, Some(&ok(3)), None, &at(2_000));
    assert_eq!(s3.preview.unwrap().evaluated_at, Some(at(2_000)));
}

#[test]
fn records_come_from_the_policys_status_and_legacy_repository_statuses() {
    let mut lp = policy("std", 1, json!({"repositories": ["api", "web", "old"]}));
    lp.status = Some(crate::api::v1alpha1::LifecyclePolicyStatus {
        repositories: vec![LifecyclePolicyTarget {
            name: "api".into(),
            state: TargetState::Applied,
            ecr_name: Some("api".into()),
            registry: Some("default".into()),
            hash: Some("h-new".into()),
            ..Default::default()
        }],
        ..Default::default()
    });
    let legacy = |name: &str, policy: &str| {
        let mut r = ready(repo(name, json!({})));
        r.status.as_mut().unwrap().lifecycle_policy = Some(crate::api::v1alpha1::AppliedLifecyclePolicy {
            name: policy.into(),
            hash: format!("h-{name}"),
        });
        r
    };
    let repos = vec![
        legacy("api", "std"),   // already recorded by the policy itself: not twice
        legacy("old", "std"),   // recorded only by an earlier version: released too
        legacy("web", "other"), // another policy's: never ours
        ready(repo("plain", json!({}))),
    ];
    let records = recorded(&lp, &repos);
    let got: Vec<(&str, Option<&str>)> = records
        .iter()
        .map(|r| (r.name.as_str(), r.hash.as_deref()))
        .collect();
    assert_eq!(got, [("api", Some("h-new")), ("old", Some("h-old"))]);
    assert_eq!(records[1].ecr_name.as_deref(), Some("old"));
    assert_eq!(records[1].registry.as_deref(), Some("default"));
}

#[test]
fn named_repositories_that_do_not_exist_are_planned_missing_in_spec_order() {
    let lp = policy("a", 1, json!({"repositories": ["web", "api", "db"]}));
    let mut elsewhere = ready(repo("db", json!({})));
    elsewhere.metadata.namespace = Some("other".into());
    let repos = vec![ready(repo("api", json!({}))), elsewhere];
    let plans = targets(&lp, &repos, std::slice::from_ref(&lp)).unwrap();
    assert_eq!(
        plans,
        vec![
            (
                "api".to_owned(),
                Plan::Serve {
                    ecr_name: "api".into(),
                    registry: "default".into()
                }
            ),
            ("web".to_owned(), Plan::Missing),
            ("db".to_owned(), Plan::Missing),
        ]
    );
    // A selector never plans a missing Repository.
    let by_label = policy("b", 1, json!({"repositorySelector": {"matchLabels": {"x": "y"}}}));
    assert!(targets(&by_label, &repos, &[]).unwrap().is_empty());
}
