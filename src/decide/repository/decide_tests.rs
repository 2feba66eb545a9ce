use super::tests::{OWNER, remote, repo, tags};
use super::*;
use crate::api::OWNER_TAG;
use crate::api::v1alpha1::Adoption;
use crate::backend::BackendError;
use crate::backend::EncryptionSettings;
use serde_json::json;
use std::collections::BTreeMap;

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
        insight: None,
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
        insight: None,
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
