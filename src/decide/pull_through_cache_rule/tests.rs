use super::*;
use crate::status::{KStatus, kstatus};

fn rule(spec: serde_json::Value, status: serde_json::Value) -> PullThroughCacheRule {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullThroughCacheRule",
        "metadata": {"name": "hub", "generation": 3},
        "spec": spec,
        "status": status,
    }))
    .unwrap()
}

fn hub(extra: serde_json::Value) -> PullThroughCacheRule {
    let mut spec = serde_json::json!({
        "ecrRepositoryPrefix": "docker-hub", "upstreamRegistry": "docker-hub",
        "upstreamRegistryUrl": "registry-1.docker.io",
        "credentialsSecretRef": {"name": "hub-creds", "namespace": "ops"},
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    rule(spec, serde_json::Value::Null)
}

fn remote(url: &str, kind: &str, credential: Option<&str>) -> RemoteCacheRule {
    RemoteCacheRule {
        prefix: "docker-hub".into(),
        upstream_registry: Some(kind.into()),
        upstream_url: url.into(),
        upstream_prefix: Some("ROOT".into()),
        credential_arn: credential.map(str::to_owned),
        custom_role_arn: None,
        registry_id: "123456789012".into(),
        created_at: Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)),
    }
}

const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub-AbCdEf";

#[test]
fn the_secret_is_named_under_the_prefix_ecr_requires() {
    assert_eq!(
        secret_name(&hub(serde_json::json!({}))).as_deref(),
        Some("ecr-pullthroughcache/hub")
    );
    let named = hub(
        serde_json::json!({"credentialsSecretRef": {"name": "c", "namespace": "ops", "secretName": "team/hub"}}),
    );
    assert_eq!(
        secret_name(&named).as_deref(),
        Some("ecr-pullthroughcache/team/hub")
    );
    let arn_only = hub(serde_json::json!({"credentialsSecretRef": null, "credentialArn": ARN}));
    assert_eq!(secret_name(&arn_only), None, "a credentialArn is never written");
}

#[test]
fn the_secret_body_needs_both_keys_and_compares_as_json() {
    let data = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect::<BTreeMap<_, _>>()
    };
    let body = secret_body("ops/hub", &data(&[("username", "bot"), ("accessToken", "t0k\n")])).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"username": "bot", "accessToken": "t0k"})
    );
    for missing in [
        data(&[("username", "bot")]),
        data(&[("accessToken", "t")]),
        data(&[("username", " "), ("accessToken", "t")]),
    ] {
        let e = secret_body("ops/hub", &missing).unwrap_err();
        assert_eq!(e.reason(), "InvalidSpec");
        assert!(e.to_string().contains("ops/hub"), "{e}");
    }
    let cases = [
        (Some(r#"{"accessToken":"t0k","username":"bot"}"#), true),
        (Some(r#"{ "username": "bot", "accessToken": "t0k" }"#), true),
        (Some(r#"{"username":"bot","accessToken":"old"}"#), false),
        (Some("not json"), false),
        (None, false),
    ];
    for (current, in_sync) in cases {
        assert_eq!(secret_in_sync(current, &body), in_sync, "{current:?}");
    }
}

#[test]
fn the_owner_tag_tells_the_secrets_the_operator_created() {
    let r = hub(serde_json::json!({}));
    let tags = owner_tags("c1", &r);
    assert_eq!(
        tags.get(OWNER_TAG).map(String::as_str),
        Some("c1/pullthroughcacherule/hub")
    );
    assert!(owns_secret(&tags, "c1", &r));
    assert!(!owns_secret(&tags, "c2", &r), "another cluster's");
    assert!(!owns_secret(&BTreeMap::new(), "c1", &r), "a pre-existing secret");
}

#[test]
fn the_plan_creates_updates_credentials_and_refuses_another_upstream() {
    let r = hub(serde_json::json!({}));
    let want = desired(&r, Some(ARN));
    assert_eq!(want.prefix, "docker-hub");
    assert_eq!(want.credential_arn.as_deref(), Some(ARN));
    let other_arn = ARN.replace("hub-", "old-");
    let cases: Vec<(Option<RemoteCacheRule>, Result<Plan, &str>)> = vec![
        (None, Ok(Plan::Create)),
        (
            Some(remote("registry-1.docker.io", "docker-hub", Some(ARN))),
            Ok(Plan::InSync),
        ),
        (
            Some(remote("registry-1.docker.io", "docker-hub", Some(&other_arn))),
            Ok(Plan::Update),
        ),
        (
            Some(remote("registry-1.docker.io", "docker-hub", None)),
            Ok(Plan::Update),
        ),
        (
            Some(remote("ghcr.io", "github-container-registry", Some(ARN))),
            Err("Conflict"),
        ),
    ];
    for (remote, expected) in cases {
        let got = plan(remote.as_ref(), &want).map_err(|e| e.reason());
        assert_eq!(got, expected, "{remote:?}");
    }
    // A trailing slash is ECR's assumed one: the same prefix.
    let slash = hub(serde_json::json!({"ecrRepositoryPrefix": "docker-hub/"}));
    assert_eq!(desired(&slash, None).prefix, "docker-hub");
    // A credentialArn in the spec wins (CEL admits only one of them).
    let by_arn = hub(serde_json::json!({"credentialsSecretRef": null, "credentialArn": ARN}));
    assert_eq!(desired(&by_arn, None).credential_arn.as_deref(), Some(ARN));
}

#[test]
fn status_records_creation_validation_and_who_created_what() {
    let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap());
    let r = hub(serde_json::json!({}));
    let synced = |plan: Plan, valid: bool| Synced {
        remote: remote("registry-1.docker.io", "docker-hub", Some(ARN)),
        plan,
        secret: Some(ManagedSecret {
            arn: ARN.into(),
            created_by_operator: true,
            written: false,
        }),
        validation: CacheRuleValidation {
            valid,
            failure: (!valid).then(|| "bad token".to_owned()),
        },
    };
    let created = next_status(&r, &Ok(synced(Plan::Create, true)), &now);
    assert_eq!(created.observed_generation, Some(3));
    assert_eq!(created.created, Some(true));
    assert_eq!(created.secret_created, Some(true));
    assert_eq!(created.upstream_valid.as_deref(), Some("True"));
    assert_eq!(created.credential_arn.as_deref(), Some(ARN));
    assert_eq!(created.registry_id.as_deref(), Some("123456789012"));
    assert_eq!(
        created.created_at.as_ref().map(|t| t.0.as_second()),
        Some(1_700_000_000)
    );
    let verdict = kstatus(Some(3), created.observed_generation, &created.conditions, false);
    assert_eq!(verdict, KStatus::Current);

    // Found in ECR without a record: adopted, never deleted with the object.
    let adopted = next_status(&r, &Ok(synced(Plan::InSync, true)), &now);
    assert_eq!(adopted.created, Some(false));
    // Once recorded as created, it stays so.
    let mut again = r.clone();
    again.status = Some(created.clone());
    assert_eq!(
        next_status(&again, &Ok(synced(Plan::InSync, true)), &now),
        created
    );

    // Invalid upstream credentials: Stalled with ECR's reason, recorded.
    let invalid = check_validation(&synced(Plan::InSync, false).validation).unwrap_err();
    assert_eq!(invalid.reason(), "UpstreamInvalid");
    let stalled = next_status(&again, &Err(invalid), &now);
    assert_eq!(stalled.upstream_valid.as_deref(), Some("False"));
    assert!(
        stalled
            .upstream_failure
            .as_deref()
            .unwrap_or_default()
            .contains("bad token")
    );
    assert_eq!(stalled.created, Some(true), "what was observed is kept");
    let verdict = kstatus(Some(3), stalled.observed_generation, &stalled.conditions, false);
    assert_eq!(verdict, KStatus::Failed);
    assert!(check_validation(&synced(Plan::InSync, true).validation).is_ok());
}

#[test]
fn events_only_when_something_changed() {
    let base = Synced {
        remote: remote("registry-1.docker.io", "docker-hub", Some(ARN)),
        plan: Plan::InSync,
        secret: Some(ManagedSecret {
            arn: ARN.into(),
            created_by_operator: true,
            written: false,
        }),
        validation: CacheRuleValidation {
            valid: true,
            failure: None,
        },
    };
    assert_eq!(event(&base), None);
    let mut written = base.clone();
    if let Some(s) = written.secret.as_mut() {
        s.written = true;
    }
    assert_eq!(event(&written).map(|n| n.0), Some("Updated"));
    let created = Synced {
        plan: Plan::Create,
        ..base.clone()
    };
    assert_eq!(event(&created).map(|n| n.0), Some("Created"));
    let updated = Synced {
        plan: Plan::Update,
        ..base
    };
    assert_eq!(event(&updated).map(|n| n.0), Some("Updated"));
}

/// A rule named `name`, created at second `created`, on Registry `registry`, with a prefix and
/// the Secrets Manager name its credentials go to (`None`: a credentialArn, nothing written).
fn claimant(
    name: &str,
    created: i64,
    registry: &str,
    prefix: &str,
    secret: Option<&str>,
) -> PullThroughCacheRule {
    let mut r = hub(serde_json::json!({
        "registryRef": {"name": registry},
        "ecrRepositoryPrefix": prefix,
        "credentialsSecretRef": secret.map(|s| serde_json::json!({"name": "c", "namespace": "ops", "secretName": s})),
        "credentialArn": secret.is_none().then_some(ARN),
    }));
    r.metadata.name = Some(name.into());
    r.metadata.creation_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::from_second(created).unwrap()));
    r
}

#[test]
fn an_older_rule_of_the_same_registry_holds_its_prefix_and_its_secret() {
    let all = vec![
        claimant("first", 10, "prod", "hub", Some("hub")),
        claimant("same-prefix", 20, "prod", "hub/", Some("other")),
        claimant("same-secret", 30, "prod", "quay", Some("hub")),
        claimant("other-registry", 40, "staging", "hub", Some("hub")),
        claimant("same-account", 50, "prod-alias", "hub", None),
        claimant("alone", 60, "prod", "gcr", None),
    ];
    // "prod" and "prod-alias" reach the same account and region; "staging" another.
    let place = |registry: &str| match registry {
        "prod" | "prod-alias" => "account 1 in eu-west-1".to_owned(),
        other => format!("Registry {other}"),
    };
    // (object, the holder named in its Conflict, what the message says)
    let cases = [
        ("first", None, ""),
        ("same-prefix", Some("first"), "prefix hub/"),
        ("same-secret", Some("first"), "ecr-pullthroughcache/hub"),
        ("other-registry", None, ""),
        ("same-account", Some("first"), "prefix hub/"),
        ("alone", None, ""),
    ];
    for (name, holder, says) in cases {
        let mine = all.iter().find(|r| r.name_any() == name).unwrap();
        match (claimed(mine, &all, place), holder) {
            (Ok(()), None) => {}
            (Err(Error::Conflict(m)), Some(h)) => {
                assert!(
                    m.starts_with(&format!("PullThroughCacheRule {h} (older)")),
                    "{name}: {m}"
                );
                assert!(m.contains(says), "{name}: {m}");
            }
            (got, want) => panic!("{name}: got {got:?}, want holder {want:?}"),
        }
    }
}

#[test]
fn a_secret_tagged_for_another_object_is_not_written() {
    let rule = hub(serde_json::json!({}));
    let tags = |v: &str| BTreeMap::from([(OWNER_TAG.to_owned(), v.to_owned())]);
    let cases = [
        (BTreeMap::new(), true),                           // made by hand for this rule
        (tags("prod/pullthroughcacherule/hub"), true),     // ours
        (tags("prod/pullthroughcacherule/other"), false),  // another object here
        (tags("staging/pullthroughcacherule/hub"), false), // the same name in another cluster
    ];
    for (found, writable) in cases {
        let got = check_secret_owner(&found, "prod", &rule, "ecr-pullthroughcache/hub");
        assert_eq!(got.is_ok(), writable, "{found:?}");
        if let Err(e) = got {
            assert!(matches!(e, Error::Conflict(_)), "{e:?}");
            assert!(e.to_string().contains("secretName"), "{e}");
        }
    }
}
