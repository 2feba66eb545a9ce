use std::collections::BTreeMap;

use super::*;

fn policy(spec: Value) -> ImagePolicy {
    serde_json::from_value(
        json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "no-critical", "uid": "u-1", "generation": 2}, "spec": spec}),
    )
    .unwrap()
}

fn image(digest: &str, tags: &[&str], status: Option<&str>, counts: &[(&str, i64)]) -> ImageFindings {
    ImageFindings {
        digest: digest.into(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        scan_status: status.map(str::to_owned),
        finding_counts: counts.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        ..Default::default()
    }
}

const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

#[test]
fn keys_are_configmap_keys_and_never_collide() {
    let valid = regex_lite(&tag_key(&format!("{HOST}/team-a/app"), "v1.2_3-rc"));
    assert!(valid, "a ConfigMap key");
    assert_eq!(
        tag_key(&format!("{HOST}/team-a/app"), "v1"),
        format!("{HOST}--team-a--app..v1")
    );
    assert_eq!(digest_key("sha256:abc"), "sha256.abc");
    // a/b:c and a--b:c cannot both exist (ECR names have no "--"), nor a:b..c vs a..b:c.
    assert_ne!(tag_key("h/a/b", "c"), tag_key("h/a.b", "c"));
}

fn regex_lite(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

#[test]
fn verdict_table() {
    let critical = policy(json!({"namespaceSelector": {}, "denySeverity": "CRITICAL"}));
    let high = policy(json!({"namespaceSelector": {}, "denySeverity": "HIGH", "denyUnscanned": true}));
    let unscanned = policy(json!({"namespaceSelector": {}, "denyUnscanned": true}));
    let bad = image(
        "sha256:1",
        &[],
        Some("COMPLETE"),
        &[("CRITICAL", 2), ("HIGH", 1), ("LOW", 4)],
    );
    let high_only = image("sha256:2", &[], Some("COMPLETE"), &[("HIGH", 3)]);
    let clean = image("sha256:3", &[], Some("COMPLETE"), &[]);
    let never = image("sha256:4", &[], None, &[]);
    let cases = [
        (
            &critical,
            &bad,
            Some("2 finding(s) of severity CRITICAL or worse (2 CRITICAL)"),
        ),
        (&critical, &high_only, None),
        (&critical, &never, None),
        (
            &high,
            &bad,
            Some("3 finding(s) of severity HIGH or worse (2 CRITICAL, 1 HIGH)"),
        ),
        (
            &high,
            &high_only,
            Some("3 finding(s) of severity HIGH or worse (3 HIGH)"),
        ),
        (&high, &clean, None),
        (&high, &never, Some("no completed scan")),
        (&unscanned, &bad, None),
        (&unscanned, &never, Some("no completed scan")),
    ];
    for (p, i, want) in cases {
        assert_eq!(verdict(p, i).as_deref(), want, "{:?} {i:?}", p.spec);
    }
}

#[test]
fn facts_key_each_newest_image_by_digest_and_by_each_tag() {
    let p = policy(json!({"namespaceSelector": {}, "denySeverity": "CRITICAL"}));
    let bad = image(
        "sha256:bad",
        &["v2", "latest"],
        Some("COMPLETE"),
        &[("CRITICAL", 2)],
    );
    let clean = image("sha256:ok", &["v1"], Some("COMPLETE"), &[("LOW", 1)]);
    let app = format!("{HOST}/ns/app");
    let web = format!("{HOST}/ns/web");
    let other = "999999999999.dkr.ecr.eu-west-1.amazonaws.com/x";
    let f = facts(
        &p,
        &[
            Known {
                uri: &app,
                newest: Some(&bad),
            },
            Known {
                uri: &web,
                newest: Some(&clean),
            },
            Known {
                uri: other,
                newest: None,
            },
        ],
    );
    assert_eq!((f.known, f.denied), (5, 3));
    assert_eq!(
        f.data.get("sha256.bad").map(String::as_str),
        Some(format!("image {app}@sha256:bad is denied by ImagePolicy no-critical: 2 finding(s) of severity CRITICAL or worse (2 CRITICAL)").as_str())
    );
    assert!(f.data[&tag_key(&app, "v2")].starts_with(&format!("image {app}:v2 (sha256:bad) is denied")));
    assert_eq!(f.data[&tag_key(&web, "v1")], "");
    assert_eq!(f.data["sha256.ok"], "");
    assert_eq!(
        f.data[HOSTS],
        format!("{HOST},999999999999.dkr.ecr.eu-west-1.amazonaws.com")
    );
    assert!(f.data.keys().all(|k| regex_lite(k)), "{:?}", f.data.keys());
}

#[test]
fn naming_a_system_namespace_in_an_expression_stalls_without_the_opt_in() {
    let named = json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "kube-system"]}]});
    let p = policy(json!({"namespaceSelector": named, "denySeverity": "HIGH"}));
    let e = check_spec(&p).unwrap_err();
    assert_eq!(e.reason(), "InvalidSpec");
    assert!(e.to_string().contains("kube-system"), "{e}");
    let opted =
        policy(json!({"namespaceSelector": named, "allowSystemNamespaces": true, "denySeverity": "HIGH"}));
    assert!(check_spec(&opted).is_ok());
    let other = policy(
        json!({"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a"]}]}, "denySeverity": "HIGH"}),
    );
    assert!(check_spec(&other).is_ok());
}

#[test]
fn system_namespaces_stay_out_unless_asked() {
    let p = policy(json!({"namespaceSelector": {"matchLabels": {"gate": "on"}}, "denySeverity": "HIGH"}));
    let s = namespace_selector(&p);
    assert_eq!(
        s.match_labels,
        Some(BTreeMap::from([("gate".into(), "on".into())]))
    );
    let e = &s.match_expressions.unwrap()[0];
    assert_eq!(
        (e.key.as_str(), e.operator.as_str()),
        ("kubernetes.io/metadata.name", "NotIn")
    );
    assert_eq!(
        e.values.clone().unwrap(),
        SYSTEM_NAMESPACES.map(String::from).to_vec()
    );
    let opted =
        policy(json!({"namespaceSelector": {}, "allowSystemNamespaces": true, "denySeverity": "HIGH"}));
    assert_eq!(namespace_selector(&opted).match_expressions, None);
}

#[test]
fn the_admission_objects_follow_the_unknown_setting() {
    let allow = policy(json!({"namespaceSelector": {}, "denySeverity": "HIGH"}));
    let deny = policy(json!({"namespaceSelector": {}, "denySeverity": "HIGH", "unknown": "Deny"}));
    let name = "ecr-image-policy.no-critical";
    let vap = admission_policy(&allow);
    assert_eq!(vap["metadata"]["name"], name);
    assert_eq!(vap["metadata"]["ownerReferences"][0]["uid"], "u-1");
    assert_eq!(vap["spec"]["validations"].as_array().unwrap().len(), 1);
    // Updates are checked only when an image changes.
    let condition = vap["spec"]["matchConditions"][0]["expression"].as_str().unwrap();
    assert!(
        condition.starts_with("request.operation == 'CREATE' || object.spec.containers"),
        "{condition}"
    );
    assert!(condition.contains("!= oldObject.spec.containers"), "{condition}");
    assert_eq!(
        vap["spec"]["matchConstraints"]["resourceRules"][0]["resources"],
        json!(["pods", "pods/ephemeralcontainers"])
    );
    assert_eq!(
        admission_policy(&deny)["spec"]["validations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let b = binding(&allow, "ecr-system");
    assert_eq!(b["spec"]["policyName"], name);
    assert_eq!(b["spec"]["paramRef"]["namespace"], "ecr-system");
    assert_eq!(b["spec"]["paramRef"]["parameterNotFoundAction"], "Allow");
    assert_eq!(
        binding(&deny, "x")["spec"]["paramRef"]["parameterNotFoundAction"],
        "Deny"
    );
    let cm = config_map(&allow, "ecr-system", &Facts::default());
    assert_eq!(cm["metadata"]["namespace"], "ecr-system");
    assert_eq!(cm["metadata"]["name"], name);
}

#[test]
fn events_on_creation_and_when_the_counts_change() {
    let mut p = policy(json!({"namespaceSelector": {}, "denySeverity": "HIGH"}));
    let gated = |known, denied| Gated {
        facts: Facts {
            data: BTreeMap::new(),
            known,
            denied,
        },
        namespace: "ns".into(),
    };
    assert_eq!(event(&p, &gated(2, 1)).map(|e| e.0), Some("Created"));
    p.status = Some(ImagePolicyStatus {
        admission_policy: Some(object_name("no-critical")),
        known_images: 2,
        denied_images: 1,
        ..Default::default()
    });
    assert_eq!(event(&p, &gated(2, 1)), None);
    let updated = event(&p, &gated(3, 2)).unwrap();
    assert_eq!(
        updated,
        (
            "Updated",
            "Facts updated: 3 image reference(s) known, 2 denied".to_owned()
        )
    );
}

#[test]
fn status_says_what_is_enforced() {
    let p = policy(json!({"namespaceSelector": {}, "denySeverity": "HIGH"}));
    let now = crate::status::stored_time(std::time::SystemTime::UNIX_EPOCH).unwrap();
    let gated = Gated {
        facts: Facts {
            data: BTreeMap::new(),
            known: 4,
            denied: 1,
        },
        namespace: "ecr-system".into(),
    };
    let s = next_status(&p, &Ok(gated), &now);
    assert_eq!(
        (s.known_images, s.denied_images, s.observed_generation),
        (4, 1, Some(2))
    );
    assert_eq!(
        s.parameters.as_deref(),
        Some("ecr-system/ecr-image-policy.no-critical")
    );
    assert_eq!(s.conditions[0].status, "True");
    let failed = next_status(&p, &Err(Error::InvalidSpec("x".into())), &now);
    assert_eq!(failed.conditions[0].status, "False");
}
