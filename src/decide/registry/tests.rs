use super::*;
use crate::api::v1alpha1::{ScanningConfiguration, ScanningRule};
use crate::decide::owners::Setting;
use crate::error::ErrorClass;

fn spec(scanning: Option<ScanningConfiguration>) -> RegistrySpec {
    serde_json::from_value::<RegistrySpec>(serde_json::json!({"region": "eu-west-1"}))
        .map(|mut s| {
            s.scanning = scanning;
            s
        })
        .unwrap()
}

#[test]
fn desired_scanning_uses_ecr_spelling_and_sorted_filters() {
    assert_eq!(desired_scanning(&spec(None)), None);
    let got = desired_scanning(&spec(Some(ScanningConfiguration {
        scan_type: ScanType::Enhanced,
        rules: Some(vec![
            ScanningRule {
                scan_frequency: ScanFrequency::ScanOnPush,
                repository_filters: vec!["b*".into(), "a*".into()],
            },
            ScanningRule {
                scan_frequency: ScanFrequency::ContinuousScan,
                repository_filters: vec!["prod/*".into()],
            },
        ]),
    })))
    .unwrap();
    assert_eq!(got.scan_type, "ENHANCED");
    assert_eq!(
        got.rules[0],
        ScanningRuleSettings {
            frequency: "CONTINUOUS_SCAN".into(),
            filters: vec!["prod/*".into()]
        }
    );
    assert_eq!(got.rules[1].filters, ["a*", "b*"]);
}

#[test]
fn registry_host_per_partition() {
    assert_eq!(
        registry_host("123456789012", "eu-west-1"),
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    );
    assert_eq!(
        registry_host("123456789012", "cn-north-1"),
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
    );
}

#[test]
fn next_status_reports_the_registry_or_the_error() {
    let mut registry = Registry::new("default", spec(None));
    registry.metadata.generation = Some(4);
    let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
    let ok: Result<Synced> = Ok(Synced {
        info: RegistryInfo {
            registry_id: "123456789012".into(),
            identity: Some("arn:aws:iam::123456789012:role/x".into()),
        },
        changed: vec![],
        yielded: vec![],
        drift_check_interval: Some("16m40s".into()),
    });
    let s = next_status(&registry, &ok, &now);
    assert_eq!(s.observed_generation, Some(4));
    assert_eq!(
        s.registry_host.as_deref(),
        Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    );
    assert_eq!(s.conditions[0].status, "True");
    assert_eq!(s.drift_check_interval.as_deref(), Some("16m40s"));
    registry.status = Some(s.clone());
    let failed: Result<Synced> = Err(Error::AccountMismatch {
        expected: "1".into(),
        actual: "2".into(),
    });
    let s2 = next_status(&registry, &failed, &now);
    assert_eq!(s2.registry_id, s.registry_id, "keeps what it knew");
    assert_eq!(s2.drift_check_interval, s.drift_check_interval);
    assert_eq!(
        s2.conditions.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
        ["Ready", "Stalled"]
    );
    assert_eq!(s2.conditions[0].reason, "AccountMismatch");
}

/// Which account a Registry may use: `spec.accountId` when set, else the one it has served.
#[test]
fn check_account_table() {
    const X: &str = "111111111111";
    const Y: &str = "222222222222";
    // (spec.accountId, status.registryId, reached, refused with)
    type Case = (
        Option<&'static str>,
        Option<&'static str>,
        &'static str,
        Option<&'static str>,
    );
    let cases: [Case; 9] = [
        (None, None, X, None),                // first reconcile: discovered
        (None, Some(X), X, None),             // as before
        (None, Some(X), Y, Some("changed")),  // an edit of endpoint/auth reached another account
        (Some(X), None, X, None),             // pinned and reached
        (Some(X), None, Y, Some("mismatch")), // pinned, another reached
        (Some(X), Some(X), Y, Some("mismatch")),
        (Some(Y), Some(X), Y, None), // moved on purpose: accountId says the new one
        (Some(Y), Some(X), X, Some("mismatch")),
        (Some(X), Some(Y), X, None), // pinned back after a move
    ];
    for (spec, served, actual, refused) in cases {
        let got = check_account(spec, served, actual);
        let what = match &got {
            Ok(()) => None,
            Err(Error::AccountChanged { .. }) => Some("changed"),
            Err(Error::AccountMismatch { .. }) => Some("mismatch"),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(what, refused, "{spec:?} {served:?} {actual}");
        if let Err(e) = got {
            assert_eq!((e.class(), e.reason()), (ErrorClass::Stalled, "AccountMismatch"));
        }
    }
    let message = check_account(None, Some(X), Y).unwrap_err().to_string();
    assert!(
        message.contains("now reach account 222222222222")
            && message.contains("has served account 111111111111")
            && message.contains("set spec.accountId: \"222222222222\" to move"),
        "{message}"
    );
}

/// A Registry that leaves settings to an older one is still Ready, with `SettingsConflict`
/// naming the owner; the condition goes when it no longer yields, and the Warning fires once.
#[test]
fn a_yielding_registry_is_ready_with_a_settings_conflict() {
    let mut registry = Registry::new("team", spec(None));
    registry.metadata.generation = Some(2);
    let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
    let synced = |yielded: Vec<Yielded>| Synced {
        info: RegistryInfo {
            registry_id: "123456789012".into(),
            identity: None,
        },
        changed: vec![],
        yielded,
        drift_check_interval: None,
    };
    let yielding = synced(vec![Yielded {
        setting: Setting::Scanning,
        owner: "platform".into(),
    }]);
    assert!(conflict_warning(&registry, &yielding).is_some(), "new: a Warning");
    let s = next_status(&registry, &Ok(yielding), &now);
    assert_eq!(
        s.conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect::<Vec<_>>(),
        [
            ("Ready", "True", "Succeeded"),
            (SETTINGS_CONFLICT, "True", "Conflict")
        ]
    );
    assert!(
        s.conditions[0].message.contains("to Registry platform"),
        "{}",
        s.conditions[0].message
    );
    assert!(
        s.conditions[1]
            .message
            .starts_with("Registry platform reaches the same registry"),
        "{}",
        s.conditions[1].message
    );
    registry.status = Some(s);
    let again = synced(vec![Yielded {
        setting: Setting::Scanning,
        owner: "platform".into(),
    }]);
    assert!(
        conflict_warning(&registry, &again).is_none(),
        "unchanged: no Warning"
    );
    let other_owner = synced(vec![Yielded {
        setting: Setting::Scanning,
        owner: "other".into(),
    }]);
    assert!(
        conflict_warning(&registry, &other_owner).is_some(),
        "changed: a Warning"
    );
    let owning = next_status(&registry, &Ok(synced(vec![])), &now);
    assert_eq!(
        owning
            .conditions
            .iter()
            .map(|c| c.type_.as_str())
            .collect::<Vec<_>>(),
        ["Ready"],
        "no conflict, no condition"
    );
    assert!(conflict_warning(&registry, &synced(vec![])).is_none());
}

/// What admission could not refuse makes the Registry Stalled (never Ready) before any ECR
/// call: an `allowedNamespaces` stored before the selector rules, a registry policy too long.
#[test]
fn check_spec_table() {
    use crate::api::selector::{OPERATOR_MESSAGE, VALUES_FORBIDDEN_MESSAGE, VALUES_REQUIRED_MESSAGE};
    let registry = |extra: serde_json::Value| {
        let mut v = serde_json::json!({"region": "eu-west-1"});
        if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
            v.extend(extra.clone());
        }
        serde_json::from_value::<RegistrySpec>(v).unwrap()
    };
    let expression =
        |e: serde_json::Value| serde_json::json!({"allowedNamespaces": {"matchExpressions": [e]}});
    let statement = |sid: String| serde_json::json!({"policy": {"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Allow"}]}});
    let ok = [
        serde_json::json!({}),
        serde_json::json!({"allowedNamespaces": {}}),
        serde_json::json!({"allowedNamespaces": {"matchLabels": {"tenant": "true"}}}),
        expression(serde_json::json!({"key": "tenant", "operator": "In", "values": ["a"]})),
        expression(serde_json::json!({"key": "tenant", "operator": "Exists"})),
        statement("a".repeat(10_000)),
    ];
    for extra in ok {
        assert!(check_spec(&registry(extra.clone())).is_ok(), "{extra}");
    }
    let refused = [
        (
            expression(serde_json::json!({"key": "tenant", "operator": "Equals", "values": ["a"]})),
            "InvalidSpec",
            format!("invalid allowedNamespaces: {OPERATOR_MESSAGE} (matchExpressions[0].operator is \"Equals\")"),
        ),
        (
            expression(serde_json::json!({"key": "tenant", "operator": "In"})),
            "InvalidSpec",
            format!("invalid allowedNamespaces: {VALUES_REQUIRED_MESSAGE}"),
        ),
        (
            expression(serde_json::json!({"key": "tenant", "operator": "Exists", "values": ["a"]})),
            "InvalidSpec",
            format!("invalid allowedNamespaces: {VALUES_FORBIDDEN_MESSAGE}"),
        ),
        (
            statement("a".repeat(10_240)),
            "InvalidPolicy",
            "invalid registry policy (spec.policy): the policy is 10306 characters as JSON; ECR allows at most 10240".to_owned(),
        ),
    ];
    for (extra, reason, message) in refused {
        let spec = registry(extra.clone());
        let err = check_spec(&spec).unwrap_err();
        assert_eq!(
            (err.class(), err.reason()),
            (ErrorClass::Stalled, reason),
            "{extra}"
        );
        assert!(err.to_string().contains(&message), "{err} / {message}");
        // The status: Stalled with that reason, never Ready.
        let mut r = Registry::new("tenants", spec);
        r.metadata.generation = Some(1);
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
        let s = next_status(&r, &Err(err), &now);
        let stalled = s.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", reason)
        );
        assert_eq!(s.conditions[0].status, "False");
    }
}
