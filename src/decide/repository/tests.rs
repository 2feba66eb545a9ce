use super::*;
use crate::api::OWNER_TAG;
use crate::api::v1alpha1::Registry;
use crate::backend::EncryptionSettings;
use crate::backend::Mutability;
use crate::decide::registry::check_tenancy;
use serde_json::Value;
use serde_json::json;
use std::collections::BTreeMap;

pub(super) fn repo(spec: Value) -> Repository {
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

pub(super) fn remote(name: &str) -> RemoteRepository {
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

pub(super) fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(super) const OWNER: &str = "c1/team-a/api";

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
