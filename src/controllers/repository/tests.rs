use super::*;
use crate::api::OWNER_TAG;
use crate::api::v1alpha1::{Adoption, Registry};
use crate::backend::EncryptionSettings;
use crate::backend::Mutability;
use crate::controllers::dereference::check_tenancy;
use serde_json::Value;
use serde_json::json;
use std::collections::BTreeMap;

fn repo(spec: Value) -> Repository {
    let mut r: Repository = serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1",
        "kind": "Repository",
        "metadata": {"name": "api", "namespace": "team-a", "generation": 2, "uid": "uid-1"},
        "spec": spec,
    }))
    .unwrap();
    r.status = None;
    r
}

fn remote(name: &str) -> RemoteRepository {
    RemoteRepository {
        name: name.into(),
        arn: format!("arn:aws:ecr:us-east-1:123456789012:repository/{name}"),
        uri: format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}"),
        registry_id: "123456789012".into(),
        created_at: None,
        mutability: Mutability::Mutable,
        exclusion_filters: vec![],
        scan_on_push: false,
        encryption: EncryptionSettings {
            encryption_type: "AES256".into(),
            kms_key: None,
        },
    }
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const OWNER: &str = "c1/team-a/api";

#[test]
fn desired_adds_the_owner_tag_and_defaults_the_name() {
    let d = desired(&repo(json!({"tags": {"team": "a"}, "exclusionFilters": ["b", "a"], "imageTagMutability": "ImmutableWithExclusion"})), "c1").unwrap();
    assert_eq!(d.name, "api", "defaults to metadata.name");
    assert_eq!(d.owner, OWNER);
    assert_eq!(d.tags, tags(&[("team", "a"), (OWNER_TAG, OWNER)]));
    assert_eq!(d.exclusion_filters, ["a", "b"], "sorted");
    let d = desired(
        &repo(json!({"name": "team-a/api", "exclusionFilters": ["x"]})),
        "c1",
    )
    .unwrap();
    assert_eq!(d.name, "team-a/api");
    assert!(
        d.exclusion_filters.is_empty(),
        "filters only count with *WithExclusion"
    );
}

#[test]
fn ownership_table() {
    let d = desired(&repo(json!({})), "c1").unwrap();
    assert_eq!(check_owner(&d, &tags(&[])).unwrap(), Ownership::Unowned);
    assert_eq!(
        check_owner(&d, &tags(&[(OWNER_TAG, OWNER)])).unwrap(),
        Ownership::Ours
    );
    for other in ["c1/team-b/api", "c2/team-a/api"] {
        let err = check_owner(&d, &tags(&[(OWNER_TAG, other)])).unwrap_err();
        assert_eq!(err.reason(), "OwnedElsewhere", "{other}");
        assert!(
            err.to_string().contains("spec.takeOverFrom"),
            "says how to hand over: {err}"
        );
    }
    // spec.takeOverFrom names exactly one previous owner: this cluster's, or another's.
    for (take_over_from, owner, expected) in [
        ("team-b/api", "c1/team-b/api", Some("c1/team-b/api")),
        ("c2/team-a/api", "c2/team-a/api", Some("c2/team-a/api")),
        ("team-b/api", "c2/team-b/api", None),
        ("team-b/web", "c1/team-b/api", None),
    ] {
        let d = desired(&repo(json!({"takeOverFrom": take_over_from})), "c1").unwrap();
        let got = check_owner(&d, &tags(&[(OWNER_TAG, owner)]));
        match expected {
            Some(from) => assert_eq!(got.unwrap(), Ownership::HandedOver(from.into())),
            None => assert_eq!(
                got.unwrap_err().reason(),
                "OwnedElsewhere",
                "{take_over_from} vs {owner}"
            ),
        }
    }
    // takeOverFrom changes nothing for a repository that is already ours, or unowned.
    let d = desired(&repo(json!({"takeOverFrom": "team-b/api"})), "c1").unwrap();
    assert_eq!(
        check_owner(&d, &tags(&[(OWNER_TAG, OWNER)])).unwrap(),
        Ownership::Ours
    );
    assert_eq!(check_owner(&d, &tags(&[])).unwrap(), Ownership::Unowned);
}

#[test]
fn tenancy_table() {
    let registry = |spec: Value| -> Registry {
        serde_json::from_value(json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry", "metadata": {"name": "r"}, "spec": spec})).unwrap()
    };
    let labels = tags(&[("tenant", "true")]);
    let open = registry(json!({"region": "us-east-1"}));
    let selective =
        registry(json!({"region": "us-east-1", "allowedNamespaces": {"matchLabels": {"tenant": "true"}}}));
    let prefixed =
        registry(json!({"region": "us-east-1", "repositoryNamePolicy": {"requireNamespacePrefix": true}}));
    assert!(check_tenancy(&open, "team-a", &BTreeMap::new(), Some("api")).is_ok());
    assert!(check_tenancy(&selective, "team-a", &labels, Some("api")).is_ok());
    assert_eq!(
        check_tenancy(&selective, "team-a", &BTreeMap::new(), Some("api"))
            .unwrap_err()
            .reason(),
        "NotAllowed"
    );
    assert!(check_tenancy(&prefixed, "team-a", &BTreeMap::new(), Some("team-a/api")).is_ok());
    assert_eq!(
        check_tenancy(&prefixed, "team-a", &BTreeMap::new(), Some("team-b/api"))
            .unwrap_err()
            .reason(),
        "NotAllowed"
    );
    assert_eq!(
        check_tenancy(&prefixed, "team-a", &BTreeMap::new(), Some("team-aa/api"))
            .unwrap_err()
            .reason(),
        "NotAllowed"
    );
    // An allowedNamespaces stored before the selector rules: InvalidSpec naming the value, for
    // every namespace (labelled or not), never a silent match or refusal.
    let invalid = registry(
        json!({"region": "us-east-1", "allowedNamespaces": {"matchExpressions": [
        {"key": "tenant", "operator": "Equals", "values": ["true"]}]}}),
    );
    for namespace_labels in [labels.clone(), BTreeMap::new()] {
        let err = check_tenancy(&invalid, "team-a", &namespace_labels, Some("api")).unwrap_err();
        assert_eq!(err.reason(), "InvalidSpec");
        let text = err.to_string();
        assert!(
            text.contains("Registry r has an invalid allowedNamespaces: matchExpressions[].operator must be one of In, NotIn, Exists, DoesNotExist (matchExpressions[0].operator is \"Equals\")"),
            "{text}"
        );
    }
}

#[test]
fn a_repository_policy_longer_than_ecr_allows_is_refused_before_any_call() {
    let policy = |sid_length: usize| json!({"policy": {"Version": "2012-10-17", "Statement": [{"Sid": "s".repeat(sid_length), "Effect": "Allow"}]}});
    // The compact JSON around the Sid is 66 characters.
    for (sid_length, refused) in [
        (0, false),
        (10_240 - 66, false),
        (10_240 - 65, true),
        (20_000, true),
    ] {
        let d = desired(&repo(policy(sid_length)), "c1").unwrap();
        let text_length = d.policy.as_ref().unwrap().to_string().chars().count();
        assert_eq!(text_length, sid_length + 66);
        match check_desired(&d) {
            Ok(()) => assert!(!refused, "{text_length} characters accepted"),
            Err(e) => {
                assert!(refused, "{text_length} characters refused: {e}");
                assert_eq!(
                    (e.class(), e.reason()),
                    (crate::error::ErrorClass::Stalled, "InvalidPolicy")
                );
                assert_eq!(
                    e.to_string(),
                    format!(
                        "invalid repository policy (spec.policy): the policy is {text_length} characters as JSON; ECR allows at most 10240"
                    )
                );
            }
        }
    }
    assert!(check_desired(&desired(&repo(json!({})), "c1").unwrap()).is_ok());
}

#[test]
fn plan_table() {
    let in_sync_tags = tags(&[("team", "a"), (OWNER_TAG, OWNER)]);
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}]});
    type Case<'a> = (
        &'a str,
        Value,
        RemoteRepository,
        BTreeMap<String, String>,
        Option<&'a str>,
        Vec<String>,
        Vec<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "in sync: no change",
            json!({"tags": {"team": "a"}}),
            remote("api"),
            in_sync_tags.clone(),
            None,
            vec!["team".into()],
            vec![],
        ),
        (
            "mutability and scan on push drift",
            json!({"tags": {"team": "a"}, "imageTagMutability": "Immutable", "scanOnPush": true}),
            remote("api"),
            in_sync_tags.clone(),
            None,
            vec![],
            vec!["PutImageTagMutability", "PutImageScanningConfiguration"],
        ),
        (
            "exclusion filters drift",
            json!({"imageTagMutability": "ImmutableWithExclusion", "exclusionFilters": ["latest"], "tags": {"team": "a"}}),
            RemoteRepository {
                mutability: Mutability::ImmutableWithExclusion,
                exclusion_filters: vec!["dev".into()],
                ..remote("api")
            },
            in_sync_tags.clone(),
            None,
            vec![],
            vec!["PutImageTagMutability"],
        ),
        (
            "adoption: owner tag missing, foreign tag kept",
            json!({"tags": {"team": "a"}}),
            remote("api"),
            tags(&[("team", "a"), ("cost-center", "42")]),
            None,
            vec![],
            vec!["TagResource"],
        ),
        (
            "a tag removed from the spec is removed; a tag we never set stays",
            json!({}),
            remote("api"),
            tags(&[("team", "a"), ("cost-center", "42"), (OWNER_TAG, OWNER)]),
            None,
            vec!["team".into()],
            vec!["UntagResource"],
        ),
        (
            "policy missing",
            json!({"tags": {"team": "a"}, "policy": policy.clone()}),
            remote("api"),
            in_sync_tags.clone(),
            None,
            vec![],
            vec!["SetRepositoryPolicy"],
        ),
        (
            "policy equivalent but reformatted: no change",
            json!({"tags": {"team": "a"}, "policy": policy.clone()}),
            remote("api"),
            in_sync_tags.clone(),
            Some(
                r#"{"Statement":[{"Action":["ecr:BatchGetImage"],"Principal":"*","Effect":"Allow"}],"Version":"2012-10-17"}"#,
            ),
            vec![],
            vec![],
        ),
        (
            "policy unset in the spec: left alone",
            json!({"tags": {"team": "a"}}),
            remote("api"),
            in_sync_tags.clone(),
            Some(r#"{"Statement":[]}"#),
            vec![],
            vec![],
        ),
    ];
    for (name, spec, observed, observed_tags, observed_policy, managed, expected) in cases {
        let d = desired(&repo(spec), "c1").unwrap();
        let changes = plan(&d, &observed, &observed_tags, observed_policy, &managed).unwrap();
        let ops: Vec<&str> = changes.iter().map(RepositoryChange::operation).collect();
        assert_eq!(ops, expected, "{name}");
        if name.starts_with("a tag removed") {
            assert_eq!(
                changes[0],
                RepositoryChange::UntagResource(vec!["team".into()]),
                "only our key"
            );
        }
    }
}

#[test]
fn encryption_mismatch_is_stalled_never_a_recreate() {
    let d = desired(&repo(json!({"encryption": {"type": "KMS"}})), "c1").unwrap();
    let err = plan(&d, &remote("api"), &BTreeMap::new(), None, &[]).unwrap_err();
    assert_eq!(err.reason(), "EncryptionMismatch");
    assert_eq!(err.class(), crate::error::ErrorClass::Stalled);
    let kms = RemoteRepository {
        encryption: EncryptionSettings {
            encryption_type: "KMS".into(),
            kms_key: Some("arn:aws:kms:us-east-1:1:key/abc".into()),
        },
        ..remote("api")
    };
    let alias = desired(
        &repo(json!({"encryption": {"type": "KMS", "kmsKey": "alias/mine"}})),
        "c1",
    )
    .unwrap();
    assert!(
        plan(&alias, &kms, &tags(&[(OWNER_TAG, OWNER)]), None, &[]).is_ok(),
        "an alias cannot be compared with the ARN"
    );
    let other_arn = desired(
        &repo(json!({"encryption": {"type": "KMS", "kmsKey": "arn:aws:kms:us-east-1:1:key/other"}})),
        "c1",
    )
    .unwrap();
    assert_eq!(
        plan(&other_arn, &kms, &BTreeMap::new(), None, &[])
            .unwrap_err()
            .reason(),
        "EncryptionMismatch"
    );
}

#[test]
fn next_status_table() {
    let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
    let mut r = repo(json!({"tags": {"b": "2", "a": "1"}}));
    r.metadata.annotations = Some([(RECONCILE_REQUESTED_AT.to_owned(), "now-1".to_owned())].into());
    let ok: Result<Synced> = Ok(Synced {
        repo: remote("api"),
        created: true,
        adopted: false,
        changes: vec![],
        observe_only: false,
    });
    let s = next_status(&r, &ok, &now);
    assert_eq!(s.observed_generation, Some(2));
    assert_eq!(
        s.repository_uri.as_deref(),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/api")
    );
    assert_eq!(s.managed_tag_keys, ["a", "b"]);
    assert_eq!(s.last_handled_reconcile_at.as_deref(), Some("now-1"));
    assert_eq!(
        crate::status::kstatus(Some(2), s.observed_generation, &s.conditions, false),
        "Current"
    );
    // kstatus also reads a status without a Ready condition as Current: require Ready itself.
    let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Succeeded")
    );

    r.status = Some(s.clone());
    let err: Result<Synced> = Err(Error::backend("TagResource")(BackendError::Throttled("x".into())));
    let failed = next_status(&r, &err, &now);
    assert_eq!(
        failed.repository_uri, s.repository_uri,
        "a failure keeps what was known"
    );
    assert_eq!(
        crate::status::kstatus(Some(2), failed.observed_generation, &failed.conditions, false),
        "InProgress"
    );

    let observed: Result<Synced> = Ok(Synced {
        repo: remote("api"),
        created: false,
        adopted: false,
        changes: vec!["PutImageTagMutability"],
        observe_only: true,
    });
    let o = next_status(&r, &observed, &now);
    let drifted = o.conditions.iter().find(|c| c.type_ == DRIFTED).unwrap();
    assert_eq!(
        (drifted.status.as_str(), drifted.reason.as_str()),
        ("True", "DriftDetected")
    );
    assert!(drifted.message.contains("PutImageTagMutability"));
    assert_eq!(o.managed_tag_keys, s.managed_tag_keys, "ObserveOnly sets no tags");
}

#[test]
fn first_step_observes_creates_or_refuses() {
    let d = desired(&repo(json!({"tags": {"team": "a"}})), "c1").unwrap();
    let full = Mode {
        observe_only: false,
        adoption: Adoption::AdoptOrCreate,
    };
    let observe = Mode {
        observe_only: true,
        ..full
    };
    assert_eq!(
        first_step(&d, Some(remote("api")), full).unwrap(),
        First::Exists(remote("api"))
    );
    assert_eq!(
        first_step(&d, Some(remote("api")), observe).unwrap(),
        First::Exists(remote("api"))
    );
    assert_eq!(
        first_step(&d, None, observe).unwrap_err().reason(),
        "RepositoryNotFound"
    );
    match first_step(&d, None, full).unwrap() {
        // One call carries every setting and the owner tag.
        First::Create(new) => assert_eq!(new.tags, d.tags),
        other => panic!("{other:?}"),
    }
}

#[test]
fn decide_table() {
    let d = desired(&repo(json!({"tags": {"team": "a"}})), "c1").unwrap();
    let r = remote("api");
    let full = Mode {
        observe_only: false,
        adoption: Adoption::AdoptOrCreate,
    };
    let create_only = Mode {
        adoption: Adoption::CreateOnly,
        ..full
    };
    let observe = Mode {
        observe_only: true,
        ..full
    };
    let seen = |pairs: &[(&str, &str)], created: bool| Observed {
        tags: tags(pairs),
        policy: None,
        created,
    };
    let ours = seen(&[("team", "a"), (OWNER_TAG, OWNER)], false);
    let unowned = seen(&[], false);
    let foreign = seen(&[(OWNER_TAG, "c2/team-a/api")], false);
    let changes = |o: &Observed| plan(&d, &r, &o.tags, None, &[]).unwrap();

    // Ours: apply whatever differs, no adoption.
    assert_eq!(
        decide(&d, &r, &ours, full, &[]).unwrap(),
        Step::Apply {
            adopt: false,
            from: None,
            changes: changes(&ours)
        }
    );
    // No owner tag: adopted (the owner tag is among the changes).
    let step = decide(&d, &r, &unowned, full, &[]).unwrap();
    assert_eq!(
        step,
        Step::Apply {
            adopt: true,
            from: None,
            changes: changes(&unowned)
        }
    );
    assert!(changes(&unowned).iter().any(|c| c.operation() == "TagResource"));
    // CreateOnly refuses an existing unowned repository, but not one this reconcile created.
    assert_eq!(
        decide(&d, &r, &unowned, create_only, &[]).unwrap_err().reason(),
        "AlreadyExists"
    );
    let created = seen(&[("team", "a"), (OWNER_TAG, OWNER)], true);
    assert!(matches!(
        decide(&d, &r, &created, create_only, &[]).unwrap(),
        Step::Apply { adopt: false, .. }
    ));
    // The owner spec.takeOverFrom names: taken over (the owner tag is rewritten).
    let handing = desired(
        &repo(json!({"tags": {"team": "a"}, "takeOverFrom": "c2/team-a/api"})),
        "c1",
    )
    .unwrap();
    match decide(&handing, &r, &foreign, full, &[]).unwrap() {
        Step::Apply {
            adopt: false,
            from: Some(from),
            changes,
        } => {
            assert_eq!(from, "c2/team-a/api");
            assert!(changes.iter().any(|c| matches!(c, RepositoryChange::TagResource(t) if t.get(OWNER_TAG).map(String::as_str) == Some(OWNER))));
        }
        other => panic!("{other:?}"),
    }
    // Another owner: never written; an observer may still watch it and reports the drift.
    assert_eq!(
        decide(&d, &r, &foreign, full, &[]).unwrap_err().reason(),
        "OwnedElsewhere"
    );
    assert_eq!(
        decide(&d, &r, &foreign, observe, &[]).unwrap(),
        Step::Observe {
            drift: changes(&foreign).iter().map(|c| c.operation()).collect()
        }
    );
}
