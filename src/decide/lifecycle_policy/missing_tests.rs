use super::tests::{at, policy};
use super::{self as targets, Applied};
use crate::api::v1alpha1::{LifecyclePolicy, LifecyclePolicyTarget, TargetState};
use serde_json::json;

/// What does not exist, read the way kstatus and the driver read it: named Repositories that do
/// not exist wait (InProgress) with their own reason; a selector that matches nothing is Ready
/// (Current) and says so in the Ready reason; a conflict, a pending or a releasing repository
/// outranks them, and then no notice is given (the driver's Warning must name the status's
/// reason, or it would fire on every reconcile).
#[test]
fn notice_and_status_table_for_what_does_not_exist() {
    let named = policy("a", 1, json!({"repositories": ["api", "web"]}));
    let selector = policy("b", 1, json!({"repositorySelector": {"matchLabels": {"x": "y"}}}));
    let mut preview = policy("c", 1, json!({"repositorySelector": {"matchLabels": {"x": "y"}}}));
    preview.spec.dry_run = true;
    let now = at(1_000);
    let applied = |states: &[(&str, TargetState)], missing: &[&str]| Applied {
        targets: states.iter().map(|(n, s)| targets::entry(n, *s, None)).collect(),
        missing: missing.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    type Row<'a> = (
        &'a LifecyclePolicy,
        Applied,
        Option<&'a str>,
        &'a str,
        Vec<(&'a str, &'a str)>,
    );
    let rows: Vec<Row> = vec![
        (
            &named,
            applied(
                &[("api", TargetState::Applied), ("web", TargetState::Pending)],
                &["web"],
            ),
            Some("NamedRepositoryNotFound"),
            "InProgress",
            vec![
                ("Ready", "NamedRepositoryNotFound"),
                ("Reconciling", "NamedRepositoryNotFound"),
            ],
        ),
        (
            &named,
            applied(
                &[("api", TargetState::Conflict), ("web", TargetState::Pending)],
                &["web"],
            ),
            None,
            "Failed",
            vec![("Ready", "Conflict"), ("Stalled", "Conflict")],
        ),
        (
            &named,
            applied(
                &[("api", TargetState::Applied), ("web", TargetState::Applied)],
                &[],
            ),
            None,
            "Current",
            vec![("Ready", "Succeeded")],
        ),
        (
            &selector,
            applied(&[], &[]),
            Some("NoRepositorySelected"),
            "Current",
            vec![("Ready", "NoRepositorySelected")],
        ),
        (
            &preview,
            applied(&[], &[]),
            Some("NoRepositorySelected"),
            "Current",
            vec![("Ready", "NoRepositorySelected")],
        ),
        (
            &selector,
            applied(&[("old", TargetState::Releasing)], &[]),
            None,
            "InProgress",
            vec![
                ("Ready", "DependencyNotReady"),
                ("Reconciling", "DependencyNotReady"),
            ],
        ),
        (
            &selector,
            applied(&[("api", TargetState::Applied)], &[]),
            None,
            "Current",
            vec![("Ready", "Succeeded")],
        ),
    ];
    for (lp, a, notice, verdict, conditions) in rows {
        let n = targets::notice(lp, &a);
        assert_eq!(
            n.as_ref().map(crate::error::Error::reason),
            notice,
            "{:?}",
            a.targets
        );
        let s = targets::next_status(lp, Some(&a), None, &now);
        let got: Vec<(&str, &str)> = s
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(got, conditions, "{:?}", a.targets);
        let k = crate::status::kstatus(
            lp.metadata.generation,
            s.observed_generation,
            &s.conditions,
            false,
        );
        assert_eq!(k.as_str(), verdict, "{:?}", a.targets);
        if let Some(n) = n {
            // The notice and the status agree: the Warning names the reason the status shows.
            assert_eq!(s.conditions[0].reason, n.reason());
            assert_eq!(n.class(), crate::error::ErrorClass::Waiting);
        }
    }
    let missing = targets::next_status(
        &named,
        Some(&applied(
            &[("api", TargetState::Applied), ("web", TargetState::Pending)],
            &["web"],
        )),
        None,
        &now,
    );
    assert_eq!(
        missing.conditions[0].message,
        "spec.repositories names web, but no Repository web exists in namespace ns: the policy is put on it once it exists and is Ready; applied to 1"
    );
    let empty = targets::next_status(&selector, Some(&applied(&[], &[])), None, &now);
    assert_eq!(
        empty.conditions[0].message,
        "repositorySelector matches no Repository in namespace ns: applied to none, and a Repository that gets matching labels gets the policy"
    );
    let previewed = targets::next_status(&preview, Some(&applied(&[], &[])), None, &now);
    assert!(previewed.conditions[0].message.contains("previewed on none"));
    // A real failure outranks everything, the notice's reason included.
    let throttled = crate::error::Error::backend("DescribeImages")(crate::backend::BackendError::Throttled(
        "slow".into(),
    ));
    let s = targets::next_status(&selector, Some(&applied(&[], &[])), Some(&throttled), &now);
    assert_eq!(s.conditions[0].reason, "Throttled");
    // Many missing names: one short sentence.
    let many: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let n = targets::notice(&named, &applied(&[], &refs)).unwrap().to_string();
    assert!(
        n.contains("r0, r1,") && n.contains("and 30 more") && n.len() < 400,
        "{n}"
    );
}

/// An entry that records no put this time keeps the earlier record of the same ECR repository of
/// the same Registry, and only that one; an entry that recorded a put keeps its own.
#[test]
fn keep_record_table() {
    let record = |registry: &str, ecr: &str, hash: Option<&str>| LifecyclePolicyTarget {
        name: "api".into(),
        state: TargetState::Applied,
        ecr_name: Some(ecr.into()),
        registry: Some(registry.into()),
        hash: hash.map(str::to_owned),
        ..Default::default()
    };
    let previous = [
        record("other", "ns/api", Some("h-other")),
        record("default", "ns/old", Some("h-old")),
        record("default", "ns/api", None),
        record("default", "ns/api", Some("h1")),
    ];
    // (entry's own hash, registry, ecr name, expected hash)
    let cases = [
        (None, "default", "ns/api", Some("h1")),
        (Some("h2"), "default", "ns/api", Some("h2")),
        (None, "default", "ns/new", None),
        (None, "third", "ns/api", None),
    ];
    for (own, registry, ecr, expected) in cases {
        let mut entry = targets::entry("api", TargetState::Failed, Some("why".into()));
        entry.hash = own.map(str::to_owned);
        targets::keep_record(&mut entry, &previous, registry, ecr);
        assert_eq!(entry.hash.as_deref(), expected, "{own:?} {registry} {ecr}");
        assert_eq!(entry.state, TargetState::Failed, "the state is this reconcile's");
        assert_eq!(entry.message.as_deref(), Some("why"));
        if expected == Some("h1") {
            assert_eq!(
                (entry.registry.as_deref(), entry.ecr_name.as_deref()),
                (Some("default"), Some("ns/api"))
            );
        }
    }
}
