use super::*;
use serde_json::json;

fn registry(name: &str, created: i64, spec: serde_json::Value, account: Option<&str>) -> Registry {
    let mut spec = spec;
    spec["region"] = json!("us-east-1");
    let mut v = json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": name, "creationTimestamp": k8s_openapi::jiff::Timestamp::from_second(created).unwrap().to_string()},
        "spec": spec,
    });
    if let Some(account) = account {
        v["status"] = json!({"registryId": account});
    }
    serde_json::from_value(v).unwrap()
}

const A: &str = "123456789012";
const B: &str = "111122223333";

fn scanning() -> serde_json::Value {
    json!({"scanning": {"scanType": "Basic"}})
}

fn policy() -> serde_json::Value {
    json!({"policy": {"Version": "2012-10-17", "Statement": []}})
}

fn both() -> serde_json::Value {
    json!({"scanning": {"scanType": "Basic"}, "policy": {"Version": "2012-10-17", "Statement": []}})
}

#[test]
fn aws_endpoints_are_one_registry_and_any_other_endpoint_is_its_own() {
    for aws in [
        None,
        Some("https://api.ecr.us-east-1.amazonaws.com"),
        Some("https://ecr-fips.us-east-1.amazonaws.com/"),
        Some("https://vpce-0abc-1234.api.ecr.eu-west-1.vpce.amazonaws.com"),
        Some("https://api.ecr.cn-north-1.amazonaws.com.cn:443"),
        Some("https://ecr.us-east-1.api.aws"),
        Some("HTTPS://API.ECR.US-EAST-1.AMAZONAWS.COM."),
    ] {
        assert_eq!(endpoint_identity(aws), None, "{aws:?}");
    }
    for (local, identity) in [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
        ("http://LocalStack:4566", "http://localstack:4566"),
        (
            "https://amazonaws.com.evil.example",
            "https://amazonaws.com.evil.example",
        ),
        ("http://[::1]:5000", "http://[::1]:5000"),
    ] {
        assert_eq!(
            endpoint_identity(Some(local)).as_deref(),
            Some(identity),
            "{local}"
        );
    }
}

#[test]
fn the_place_is_the_recorded_account_the_region_and_a_non_aws_endpoint() {
    let r = registry("a", 1, json!({}), Some(A));
    assert_eq!(
        Place::recorded(&r),
        Some(Place {
            account: A.into(),
            region: "us-east-1".into(),
            endpoint: None
        })
    );
    assert_eq!(Place::recorded(&registry("new", 1, json!({}), None)), None);
    let local = registry("l", 1, json!({"endpoint": "http://127.0.0.1:5000"}), Some(A));
    assert_eq!(
        Place::recorded(&local).map(|p| p.to_string()).as_deref(),
        Some("account 123456789012 in us-east-1 at http://127.0.0.1:5000")
    );
    assert_ne!(Place::recorded(&local), Place::recorded(&r));
}

/// The decision table: which settings `me` yields to whom.
#[test]
fn the_oldest_claimant_owns_each_setting() {
    let none = BTreeSet::new();
    let ruled = |names: &[&str]| {
        names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<BTreeSet<String>>()
    };
    let yields = |owner: &str, settings: &[Setting]| {
        settings
            .iter()
            .map(|s| Yielded {
                setting: *s,
                owner: owner.to_owned(),
            })
            .collect::<Vec<_>>()
    };
    let local = json!({"endpoint": "http://127.0.0.1:5000"});
    let local_scanning = json!({"endpoint": "http://127.0.0.1:5000/", "scanning": {"scanType": "Basic"}});
    /// (case, me, others, Registries with rules, expected)
    type Case = (
        &'static str,
        Registry,
        Vec<Registry>,
        BTreeSet<String>,
        Vec<Yielded>,
    );
    let cases: Vec<Case> = vec![
        (
            "alone",
            registry("me", 5, both(), Some(A)),
            vec![],
            ruled(&["me"]),
            vec![],
        ),
        (
            "an older Registry of the same registry sets the same settings",
            registry("me", 5, both(), Some(A)),
            vec![registry("old", 1, both(), Some(A))],
            none.clone(),
            yields("old", &[Setting::Scanning, Setting::Policy]),
        ),
        (
            "the newer one owns nothing it shares",
            registry("old", 1, both(), Some(A)),
            vec![registry("me", 5, both(), Some(A))],
            none.clone(),
            vec![],
        ),
        (
            "an older Registry that claims nothing is no owner",
            registry("me", 5, both(), Some(A)),
            vec![registry("old", 1, json!({}), Some(A))],
            none.clone(),
            vec![],
        ),
        (
            "each setting has its own owner",
            registry("me", 5, both(), Some(A)),
            vec![
                registry("old-scan", 1, scanning(), Some(A)),
                registry("young-policy", 9, policy(), Some(A)),
            ],
            none.clone(),
            yields("old-scan", &[Setting::Scanning]),
        ),
        (
            "claiming nothing is no conflict, whoever else is there",
            registry("me", 5, json!({}), Some(A)),
            vec![registry("old", 1, both(), Some(A))],
            ruled(&["old"]),
            vec![],
        ),
        (
            "replication: the oldest Registry with rules owns it",
            registry("me", 5, json!({}), Some(A)),
            vec![
                registry("old", 1, json!({}), Some(A)),
                registry("older", 0, json!({}), Some(A)),
            ],
            ruled(&["me", "old"]),
            yields("old", &[Setting::Replication]),
        ),
        (
            "replication: rules it wrote and still records are a claim",
            registry("me", 5, json!({}), Some(A)),
            vec![{
                let mut r = registry("old", 1, json!({}), Some(A));
                r.status.as_mut().unwrap().replication = Some(
                    serde_json::from_value(json!({"rules": [{"name": "gone", "fingerprint": "f"}]})).unwrap(),
                );
                r
            }],
            ruled(&["me"]),
            yields("old", &[Setting::Replication]),
        ),
        (
            "same age: the first name owns",
            registry("b", 1, scanning(), Some(A)),
            vec![registry("a", 1, scanning(), Some(A))],
            none.clone(),
            yields("a", &[Setting::Scanning]),
        ),
        (
            "another account is another registry",
            registry("me", 5, both(), Some(A)),
            vec![registry("old", 1, both(), Some(B))],
            none.clone(),
            vec![],
        ),
        (
            "no recorded account yet: not a contender (it is looked at again once it has one)",
            registry("me", 5, both(), Some(A)),
            vec![registry("old", 1, both(), None)],
            none.clone(),
            vec![],
        ),
        (
            "another region is another registry",
            registry("me", 5, both(), Some(A)),
            vec![{
                let mut r = registry("old", 1, both(), Some(A));
                r.spec.region = "eu-west-1".into();
                r
            }],
            none.clone(),
            vec![],
        ),
        (
            "a local endpoint is a registry of its own",
            registry("me", 5, both(), Some(A)),
            vec![registry("old", 1, local_scanning.clone(), Some(A))],
            none.clone(),
            vec![],
        ),
        (
            "the same local endpoint is the same registry",
            {
                let mut me = registry("me", 5, both(), Some(A));
                me.spec.endpoint = Some("http://127.0.0.1:5000".into());
                me
            },
            vec![
                registry("old", 1, local_scanning, Some(A)),
                registry("older", 0, local, Some(A)),
            ],
            none.clone(),
            yields("old", &[Setting::Scanning]),
        ),
        (
            "an AWS VPC endpoint reaches the same registry as the default one",
            registry("me", 5, policy(), Some(A)),
            vec![registry(
                "old",
                1,
                json!({"endpoint": "https://vpce-1.api.ecr.us-east-1.vpce.amazonaws.com", "policy": {"Version": "2012-10-17", "Statement": []}}),
                Some(A),
            )],
            none.clone(),
            yields("old", &[Setting::Policy]),
        ),
    ];
    for (case, me, others, ruled, expected) in cases {
        let place = Place::recorded(&me).unwrap();
        // The list from the store includes `me` itself.
        let mut all = others.clone();
        all.push(me.clone());
        assert_eq!(yielded(&me, &place, &all, &ruled), expected, "{case}");
    }
}

#[test]
fn the_account_just_reached_decides_before_it_is_recorded() {
    // A new Registry (no status yet) is judged at the place its credentials reach now.
    let me = registry("me", 5, scanning(), None);
    let old = registry("old", 1, scanning(), Some(A));
    let all = [old, me.clone()];
    let place = Place::of(&me, A);
    assert_eq!(
        yielded(&me, &place, &all, &BTreeSet::new()),
        [Yielded {
            setting: Setting::Scanning,
            owner: "old".into()
        }]
    );
    assert!(yielded(&me, &Place::of(&me, B), &all, &BTreeSet::new()).is_empty());
}

#[test]
fn the_message_names_the_owner_what_it_owns_and_what_to_do() {
    let place = Place {
        account: A.into(),
        region: "us-east-1".into(),
        endpoint: None,
    };
    let m = message(
        "team",
        &place,
        &[
            Yielded {
                setting: Setting::Scanning,
                owner: "platform".into(),
            },
            Yielded {
                setting: Setting::Replication,
                owner: "platform".into(),
            },
        ],
    );
    assert_eq!(
        m,
        "Registry platform reaches the same registry (account 123456789012 in us-east-1) and is older, so it owns the scanning configuration and replication configuration; Registry team writes none of it (its own is ignored): set spec.scanning on Registry platform and remove it here and recreate this Registry's ReplicationRules with registryRef platform. Or delete one of the two Registries"
    );
    let two = message(
        "team",
        &place,
        &[
            Yielded {
                setting: Setting::Policy,
                owner: "b".into(),
            },
            Yielded {
                setting: Setting::Scanning,
                owner: "a".into(),
            },
        ],
    );
    assert!(
        two.starts_with("Registry a reaches") && two.contains(". Registry b reaches"),
        "{two}"
    );
    assert!(two.contains("owns the registry policy"), "{two}");
}

#[test]
fn neighbours_are_the_registries_at_the_same_place_or_without_one_yet() {
    let (store, mut writer) = kube::runtime::reflector::store::<Registry>();
    for r in [
        registry("changed", 1, json!({}), Some(A)),
        registry("same", 2, json!({}), Some(A)),
        registry("fresh", 3, json!({}), None),
        registry("other-account", 4, json!({}), Some(B)),
        registry("local", 5, json!({"endpoint": "http://127.0.0.1:1"}), Some(A)),
    ] {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(r));
    }
    let mut names: Vec<String> = neighbours(&store, &registry("changed", 1, json!({}), Some(A)))
        .into_iter()
        .map(|r| r.name)
        .collect();
    names.sort();
    assert_eq!(names, ["fresh", "same"]);
}

#[test]
fn the_key_changes_with_what_decides_ownership_only() {
    let r = registry("a", 1, json!({}), Some(A));
    let mut bookkeeping = r.clone();
    bookkeeping.status.as_mut().unwrap().observed_generation = Some(9);
    assert_eq!(key(&r), key(&bookkeeping));
    let mut moved = r.clone();
    moved.status.as_mut().unwrap().registry_id = Some(B.into());
    assert_ne!(key(&r), key(&moved));
    let mut edited = r.clone();
    edited.metadata.generation = Some(2);
    assert_ne!(key(&r), key(&edited));
}
