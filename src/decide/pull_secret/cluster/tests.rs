use std::time::SystemTime;

use k8s_openapi::api::core::v1::Namespace;

use super::*;
use crate::error::ErrorClass;
use serde_json::json;

#[test]
fn namespace_matching_table() {
    let ns = |name: &str, labels: serde_json::Value, terminating: bool| -> Namespace {
        let mut n: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
        if terminating {
            // The namespace lifecycle marks it Terminating when its deletionTimestamp is set.
            n.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        }
        n
    };
    let sel: LabelSelector = serde_json::from_value(json!({"matchLabels": {"pull": "yes"}})).unwrap();
    let sel = namespace_selector(Some(&sel)).unwrap().unwrap();
    let all = namespace_selector(Some(&LabelSelector::default()))
        .unwrap()
        .unwrap();
    let filter = NamespaceFilter {
        include: None,
        exclude: Some(vec!["kube-system".into()]),
    };
    let only = NamespaceFilter {
        include: Some(vec!["team-a".into()]),
        exclude: None,
    };
    let cases = [
        (
            ns("team-a", json!({"pull": "yes"}), false),
            Some(&sel),
            None,
            true,
        ),
        (ns("team-b", json!({}), false), Some(&sel), None, false),
        (
            ns("team-a", json!({"pull": "yes"}), true),
            Some(&sel),
            None,
            false,
        ),
        (
            ns("kube-system", json!({}), false),
            Some(&all),
            Some(&filter),
            false,
        ),
        (ns("team-c", json!({}), false), Some(&all), Some(&filter), true),
        (ns("team-a", json!({}), false), None, Some(&only), true),
        (ns("team-b", json!({}), false), None, Some(&only), false),
    ];
    for (n, s, f, expected) in cases {
        assert_eq!(namespace_matches(&n, s, f), expected, "{}", n.name_any());
    }
}

/// `namespaceSelector: {}` (or any selector) never reaches the cluster's own namespaces; only
/// `namespaces.include` naming one does.
#[test]
fn system_namespaces_are_served_only_when_included_by_name() {
    let ns = |name: &str| -> Namespace {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {"pull": "yes"}}})).unwrap()
    };
    let all = namespace_selector(Some(&LabelSelector::default()))
        .unwrap()
        .unwrap();
    let labelled: LabelSelector = serde_json::from_value(json!({"matchLabels": {"pull": "yes"}})).unwrap();
    let labelled = namespace_selector(Some(&labelled)).unwrap().unwrap();
    let include = |names: &[&str]| NamespaceFilter {
        include: Some(names.iter().map(|n| n.to_string()).collect()),
        exclude: None,
    };
    let exclude_other = NamespaceFilter {
        include: None,
        exclude: Some(vec!["team-x".into()]),
    };
    let kube_system = include(&["kube-system"]);
    let team = include(&["team-a"]);
    for system in SYSTEM_NAMESPACES {
        let cases = [
            (Some(&all), None, false),
            (Some(&labelled), None, false),
            (Some(&all), Some(&exclude_other), false),
            (None, Some(&team), false),
        ];
        for (selector, filter, expected) in cases {
            assert_eq!(
                namespace_matches(&ns(system), selector, filter),
                expected,
                "{system}"
            );
        }
        let named = include(&[system]);
        assert!(
            namespace_matches(&ns(system), Some(&all), Some(&named)),
            "{system}"
        );
        assert!(namespace_matches(&ns(system), None, Some(&named)), "{system}");
    }
    // Included by name, a system namespace still has to pass the selector.
    let other: LabelSelector = serde_json::from_value(json!({"matchLabels": {"pull": "no"}})).unwrap();
    let other = namespace_selector(Some(&other)).unwrap().unwrap();
    assert!(!namespace_matches(
        &ns("kube-system"),
        Some(&other),
        Some(&kube_system)
    ));
    // Look-alikes are ordinary namespaces.
    assert!(namespace_matches(&ns("kube-systems"), Some(&all), None));
    assert!(namespace_matches(&ns("default"), Some(&all), None));
}

#[test]
fn included_namespaces_that_do_not_exist_are_named() {
    let existing: BTreeSet<String> = ["a", "b", "kube-system"].iter().map(|s| s.to_string()).collect();
    let filter = |include: Option<Vec<&str>>| NamespaceFilter {
        include: include.map(|l| l.iter().map(|s| s.to_string()).collect()),
        exclude: Some(vec!["gone-but-excluded".into()]),
    };
    let everywhere = |_: &str| true;
    let cases: Vec<(Option<NamespaceFilter>, Vec<&str>)> = vec![
        (None, vec![]),
        (Some(filter(None)), vec![]),
        (Some(filter(Some(vec!["a", "b"]))), vec![]),
        (Some(filter(Some(vec!["z", "a", "y"]))), vec!["z", "y"]),
    ];
    for (f, expected) in cases {
        assert_eq!(
            missing_namespaces(f.as_ref(), &existing, everywhere),
            expected,
            "{f:?}"
        );
    }
    // --watch-namespaces: a namespace another instance serves is not this one's to report.
    let only_a = |ns: &str| ns == "a";
    assert!(missing_namespaces(Some(&filter(Some(vec!["z"]))), &existing, only_a).is_empty());
}

#[test]
fn what_does_not_exist_is_reported_namespaces_first() {
    let accounts = vec![("a".to_owned(), vec!["builder".to_owned()])];
    assert!(not_found(&[], &[]).is_none());
    let ns = not_found(&["team-x".into()], &[]).unwrap();
    assert_eq!(
        (ns.class(), ns.reason()),
        (ErrorClass::Waiting, "NamespaceNotFound")
    );
    assert_eq!(
        ns.to_string(),
        "namespaces.include names team-x, which does not exist: it gets the Secret when it is created"
    );
    let both = not_found(&["team-x".into(), "team-y".into()], &accounts).unwrap();
    assert_eq!(both.reason(), "NamespaceNotFound");
    assert_eq!(
        both.to_string(),
        "namespaces.include names team-x and team-y, which do not exist: they get the Secret when they are created; \
         ServiceAccount builder does not exist in namespace a: the Secret is added to its imagePullSecrets when it is created"
    );
    let sa = not_found(&[], &accounts).unwrap();
    assert_eq!(sa.reason(), "ServiceAccountNotFound");
}

/// The status after each outcome, read by kstatus: what does not exist waits (InProgress,
/// with its reason on Ready and Reconciling), a failed namespace wins over it, and the rest is
/// Current.
#[test]
fn status_table_in_sync_missing_and_failed() {
    let cps: ClusterPullSecret = serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ClusterPullSecret",
        "metadata": {"name": "ecr-all", "generation": 2},
        "spec": {"namespaceSelector": {}, "namespaces": {"include": ["a", "team-x"]}},
    }))
    .unwrap();
    let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
    let fanned = |failed: Vec<(String, Error)>, missing: Option<Error>| Fanned {
        credentials: Some(PullCredentials {
            logins: Default::default(),
            role_arn: None,
            registries: vec![],
            expires_at: SystemTime::UNIX_EPOCH,
            refreshed_at: SystemTime::UNIX_EPOCH,
            refresh_at: SystemTime::UNIX_EPOCH,
        }),
        roles: vec![],
        served: ["a".to_owned()].into(),
        failed,
        written: 0,
        removed: 0,
        missing,
    };
    let missing = || not_found(&["team-x".into()], &[]);
    let foreign = || vec![("b".to_owned(), Error::SecretExists("b/ecr-all".into()))];
    type Conditions<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Fanned, &str, Conditions)> = vec![
        (fanned(vec![], None), "Current", vec![("Ready", "Succeeded")]),
        (
            fanned(vec![], missing()),
            "InProgress",
            vec![
                ("Ready", "NamespaceNotFound"),
                ("Reconciling", "NamespaceNotFound"),
            ],
        ),
        (
            fanned(foreign(), missing()),
            "Failed",
            vec![("Ready", "SecretExists"), ("Stalled", "SecretExists")],
        ),
    ];
    for (f, verdict, conditions) in cases {
        let status = next_status(&cps, &Ok(f), &now);
        let got: Vec<(&str, &str)> = status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(got, conditions);
        let k = crate::status::kstatus(Some(2), status.observed_generation, &status.conditions, false);
        assert_eq!(k.as_str(), verdict, "{conditions:?}");
        assert_eq!(status.namespace_count, Some(1));
    }
    let waiting = next_status(&cps, &Ok(fanned(vec![], missing())), &now);
    assert_eq!(
        waiting.conditions[0].message,
        "namespaces.include names team-x, which does not exist: it gets the Secret when it is created; Secret ecr-all is in 1 namespace"
    );
    // The driver's Warning: the same error as the status reason.
    let f = fanned(vec![], missing());
    assert_eq!(failure(&f).map(Error::reason), Some("NamespaceNotFound"));
    assert!(into_result(f).is_ok(), "not retried on a timer");
    let f = fanned(foreign(), missing());
    assert_eq!(failure(&f).map(Error::reason), Some("SecretExists"));
    assert!(into_result(f).is_err());
}

#[test]
fn an_invalid_namespace_selector_is_invalid_spec_naming_the_value() {
    let cases = [
        (
            json!({"matchExpressions": [{"key": "team", "operator": "Equals", "values": ["a"]}]}),
            "\"Equals\"",
        ),
        (
            json!({"matchExpressions": [{"key": "team", "operator": "In", "values": []}]}),
            "\"team\" In with no values",
        ),
        (
            json!({"matchExpressions": [{"key": "team", "operator": "Exists", "values": ["a"]}]}),
            "\"team\" Exists with 1 value(s)",
        ),
    ];
    for (sel, detail) in cases {
        let sel: LabelSelector = serde_json::from_value(sel).unwrap();
        let err = namespace_selector(Some(&sel)).unwrap_err();
        assert_eq!((err.class(), err.reason()), (ErrorClass::Stalled, "InvalidSpec"));
        let text = err.to_string();
        assert!(
            text.contains("invalid namespaceSelector: matchExpressions[]."),
            "{text}"
        );
        assert!(text.contains(detail), "{text}");
    }
    assert!(namespace_selector(None).unwrap().is_none());
}

/// Credentials minted per namespace (`spec.identity`): the earliest times of all, the roles
/// sorted and distinct, none without any.
#[test]
fn per_namespace_credentials_merge_to_the_earliest_and_their_roles() {
    let at = |s: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s);
    let creds = |role: &str, base: u64| PullCredentials {
        logins: Default::default(),
        role_arn: Some(role.to_owned()),
        registries: vec![],
        expires_at: at(base + 100),
        refreshed_at: at(base),
        refresh_at: at(base + 50),
    };
    let (merged, roles) = earliest(vec![
        creds("role/b", 20),
        creds("role/a", 10),
        creds("role/b", 30),
    ]);
    let merged = merged.unwrap();
    assert_eq!(
        (merged.expires_at, merged.refreshed_at, merged.refresh_at),
        (at(110), at(10), at(60))
    );
    assert_eq!(roles, ["role/a", "role/b"]);
    let (none, roles) = earliest(vec![]);
    assert!(none.is_none() && roles.is_empty());
}
