use super::*;
use crate::status::READY;
use futures::executor::block_on;
use serde_json::json;

fn repo(generation: i64, arn: bool, labels: serde_json::Value) -> Repository {
    let mut r: Repository = serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": "api", "namespace": "ns", "generation": generation, "labels": labels,
            "resourceVersion": format!("{generation}{arn}")},
        "spec": {},
    }))
    .unwrap();
    r.status = Some(crate::api::v1alpha1::RepositoryStatus {
        repository_arn: arn.then(|| "arn".into()),
        conditions: vec![],
        ..Default::default()
    });
    r
}

#[test]
fn status_writes_do_not_pass_spec_changes_and_deletions_do() {
    let mut written = repo(1, true, json!({}));
    written.status.as_mut().unwrap().observed_generation = Some(1);
    let events = || {
        vec![
            Ok(Event::Init),
            Ok(Event::InitApply(repo(1, false, json!({})))),
            Ok(Event::InitDone),
            // The operator's own status write: the same key for the Repository's controller.
            Ok(Event::Apply(written.clone())),
            Ok(Event::Apply(repo(2, true, json!({})))),
            Ok(Event::Delete(repo(2, true, json!({})))),
        ]
    };
    let own_passed: Vec<i64> =
        block_on(on_change(stream::iter(events()), own::<Repository>, false).collect::<Vec<_>>())
            .into_iter()
            .map(|r| r.unwrap().metadata.generation.unwrap())
            .collect();
    assert_eq!(
        own_passed,
        [1, 2],
        "the status write and the deletion do not re-queue"
    );
    // For LifecyclePolicies, the Repository becoming Ready (an ARN) matters.
    let lp_passed =
        block_on(on_change(stream::iter(events()), repository_for_policies, true).collect::<Vec<_>>()).len();
    assert_eq!(lp_passed, 4, "first sight, Ready, generation 2, deletion");
}

#[test]
fn registry_changes_pass_what_changed_and_what_went_and_nothing_else() {
    let registry = |name: &str, generation: i64| -> Arc<Registry> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
                "metadata": {"name": name, "generation": generation},
                "spec": {"accountId": "123456789012", "region": "eu-west-1"},
            }))
            .unwrap(),
        )
    };
    let names = |passed: Vec<Registry>| -> Vec<String> {
        let mut names: Vec<String> = passed.iter().map(|r| r.name_any()).collect();
        names.sort();
        names
    };
    let mut seen = LastSeen::default();
    // Seeding: what the cache holds at start.
    let start = [registry("a", 1), registry("b", 1)];
    assert_eq!(names(changed(&mut seen, &start, super::registry)), ["a", "b"]);
    let cases = [
        ("unchanged (a status write of either)", start.to_vec(), &[][..]),
        (
            "a's spec changed",
            vec![registry("a", 2), registry("b", 1)],
            &["a"],
        ),
        (
            "c is new",
            vec![registry("a", 2), registry("b", 1), registry("c", 1)],
            &["c"],
        ),
        (
            "b went (as last seen)",
            vec![registry("a", 2), registry("c", 1)],
            &["b"],
        ),
        ("the same again", vec![registry("a", 2), registry("c", 1)], &[]),
    ];
    for (case, now, expected) in cases {
        assert_eq!(
            names(changed(&mut seen, &now, super::registry)),
            expected,
            "{case}"
        );
    }
}

#[test]
fn an_object_that_does_not_decode_is_skipped_and_the_others_pass() {
    let object = |interval: &str| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
            "metadata": {"name": format!("r-{interval}"), "namespace": "ns"},
            "spec": {"interval": interval},
        }))
        .unwrap()
    };
    // Stored before the interval rule existed: out of range, or not even the grammar.
    assert!(decode::<Repository>(object("2s")).is_err());
    assert!(decode::<Repository>(object("99999999999999999999h")).is_err());
    let ok = decode::<Repository>(object("10m")).unwrap();
    assert_eq!(ok.spec.interval.unwrap().as_str(), "10m");
    // A whole initial listing: the undecodable object is dropped, the rest of it passes.
    let events = vec![
        Ok(Event::Init),
        Ok(Event::InitApply(object("2s"))),
        Ok(Event::InitApply(object("10m"))),
        Ok(Event::InitDone),
    ];
    let (typed, seen): (Vec<_>, Vec<_>) = events.into_iter().map(decode_event::<Repository>).unzip();
    let typed: Vec<String> = typed
        .into_iter()
        .flatten()
        .map(|e| match e {
            Ok(Event::Init) => "init".to_owned(),
            Ok(Event::InitApply(r)) => r.name_any(),
            Ok(Event::InitDone) => "done".to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(typed, ["init", "r-10m", "done"]);
    // The observer hears of the bad object by name, then of the completed list.
    let seen: Vec<String> = seen
        .into_iter()
        .flatten()
        .map(|s| match s {
            Seen::Undecodable(bad) => format!("bad {}", bad.object.name_any()),
            Seen::Listed => "listed".to_owned(),
            Seen::Failed => "failed".to_owned(),
        })
        .collect();
    assert_eq!(seen, ["bad r-2s", "listed"]);
    let (passed, seen) = decode_event::<Repository>(Err(watcher::Error::NoResourceVersion));
    assert!(matches!(passed, Some(Err(_))) && matches!(seen, Some(Seen::Failed)));
}

#[test]
fn a_registry_matters_to_its_dependants_only_when_it_starts_or_stops_serving_or_its_host_or_spec_change() {
    let reg = |generation: i64, ready: bool, observed: i64| -> Registry {
        let mut r: Registry = serde_json::from_value(json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
            "metadata": {"name": "default", "generation": generation}, "spec": {"region": "eu-west-1"},
        }))
        .unwrap();
        r.status = Some(crate::api::v1alpha1::RegistryStatus {
            observed_generation: Some(observed),
            registry_id: Some("1".into()),
            conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: READY.into(),
                status: if ready { "True" } else { "False" }.into(),
                reason: "Succeeded".into(),
                message: String::new(),
                observed_generation: None,
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::from_second(0).unwrap(),
                ),
            }],
            ..Default::default()
        });
        r
    };
    let mut bookkeeping = reg(1, true, 1);
    if let Some(s) = bookkeeping.status.as_mut() {
        s.last_handled_reconcile_at = Some("now".into());
        s.identity = Some("arn:aws:iam::1:role/x".into());
    }
    assert_eq!(
        registry(&reg(1, true, 1)),
        registry(&bookkeeping),
        "bookkeeping only"
    );
    assert_ne!(registry(&reg(1, true, 1)), registry(&reg(1, false, 1)));
    assert_ne!(registry(&reg(1, true, 1)), registry(&reg(2, true, 1)));
    // An edit (generation 2) is served only once the Registry controller has checked it: its
    // status catching up matters, although Ready stayed True throughout.
    assert_ne!(registry(&reg(2, true, 1)), registry(&reg(2, true, 2)));
    assert!(!crate::controllers::dereference::serves(&reg(2, true, 1)));
    assert!(crate::controllers::dereference::serves(&reg(2, true, 2)));
    assert!(!crate::controllers::dereference::serves(&reg(2, false, 2)));
}

#[test]
fn cached_objects_drop_managed_fields_and_the_last_applied_copy_only() {
    let mut meta: ObjectMeta = serde_json::from_value(json!({
        "name": "api",
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{\"spec\":{}}",
            RECONCILE_REQUESTED_AT: "2026-11-30T00:00:00Z",
        },
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}],
    }))
    .unwrap();
    slim(&mut meta);
    assert_eq!(meta.managed_fields, None);
    assert_eq!(
        meta.annotations.unwrap().into_keys().collect::<Vec<_>>(),
        [RECONCILE_REQUESTED_AT],
        "other annotations stay"
    );
    let mut only_last_applied: ObjectMeta = serde_json::from_value(json!({
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
    }))
    .unwrap();
    slim(&mut only_last_applied);
    assert_eq!(only_last_applied.annotations, None);
}
