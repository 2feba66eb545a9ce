use super::*;
use crate::status::{KStatus, kstatus};

fn template(extra: serde_json::Value) -> RepositoryCreationTemplate {
    let mut spec = serde_json::json!({
        "prefix": "docker-hub", "appliedFor": ["PullThroughCache", "Replication"],
        "imageTagMutability": "ImmutableWithExclusion", "exclusionFilters": ["latest", "dev-*"],
        "resourceTags": {"team": "platform"},
        "repositoryPolicy": {"Version": "2012-10-17", "Statement": [{"Sid": "Pull", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]},
        "lifecycleRules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged",
            "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7}, "action": {"type": "expire"}}],
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "RepositoryCreationTemplate",
        "metadata": {"name": "hub", "generation": 2}, "spec": spec,
    }))
    .unwrap()
}

fn remote_of(settings: TemplateSettings) -> RemoteTemplate {
    RemoteTemplate {
        settings,
        registry_id: "123456789012".into(),
        created_at: Some(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)),
    }
}

#[test]
fn desired_renders_ecr_spelling_and_the_lifecycle_policy() {
    let d = desired(&template(serde_json::json!({}))).unwrap();
    assert_eq!(d.applied_for, ["PULL_THROUGH_CACHE", "REPLICATION"]);
    assert_eq!(d.exclusion_filters, ["dev-*", "latest"], "sorted");
    assert_eq!(d.mutability, Some(Mutability::ImmutableWithExclusion));
    assert_eq!(
        d.encryption.as_ref().map(|e| e.encryption_type.as_str()),
        Some("AES256")
    );
    let lifecycle: serde_json::Value = serde_json::from_str(d.lifecycle_policy.as_deref().unwrap()).unwrap();
    assert_eq!(lifecycle["rules"][0]["rulePriority"], 1);
    let policy: serde_json::Value = serde_json::from_str(d.repository_policy.as_deref().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Sid"], "Pull");
    // Unset policies are not managed.
    let bare = desired(&template(
        serde_json::json!({"repositoryPolicy": null, "lifecycleRules": null}),
    ))
    .unwrap();
    assert_eq!((bare.repository_policy, bare.lifecycle_policy), (None, None));
}

#[test]
fn lifecycle_rules_go_through_the_lifecyclepolicy_validator() {
    // Two tagged rules with the same tag set in one storage class: CEL cannot see it, the
    // LifecyclePolicy validator does, with its own message.
    let rule = |p: i32| {
        serde_json::json!({"rulePriority": p, "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"],
            "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}})
    };
    let t = template(serde_json::json!({"lifecycleRules": [rule(1), rule(2)]}));
    let rules = t.spec.lifecycle_rules.clone().unwrap();
    let expected = crate::lifecycle::validate::violations(&rules);
    assert!(!expected.is_empty());
    let e = desired(&t).unwrap_err();
    assert_eq!(e.reason(), "InvalidPolicy");
    assert!(e.to_string().contains(&expected[0]), "{e}");
}

#[test]
fn the_plan_compares_policies_semantically_and_leaves_unset_fields_alone() {
    let t = template(serde_json::json!({}));
    let want = desired(&t).unwrap();
    assert_eq!(plan(&t, None, &want), Plan::Create);
    assert_eq!(plan(&t, Some(&remote_of(want.clone())), &want), Plan::InSync);

    // ECR reformats the policies: same meaning, no write.
    let mut reformatted = want.clone();
    let policy: serde_json::Value = serde_json::from_str(want.repository_policy.as_deref().unwrap()).unwrap();
    reformatted.repository_policy = Some(serde_json::to_string_pretty(&policy).unwrap());
    let mut lifecycle: serde_json::Value =
        serde_json::from_str(want.lifecycle_policy.as_deref().unwrap()).unwrap();
    lifecycle["rules"][0]["selection"]["storageClass"] = serde_json::json!("standard");
    reformatted.lifecycle_policy = Some(lifecycle.to_string());
    reformatted.description = Some("set in the console".into());
    reformatted.custom_role_arn = Some("arn:aws:iam::123456789012:role/console".into());
    assert_eq!(plan(&t, Some(&remote_of(reformatted)), &want), Plan::InSync);

    type Change = fn(&mut TemplateSettings);
    let cases: Vec<(Change, &str)> = vec![
        (|s| s.applied_for = vec!["REPLICATION".into()], "appliedFor"),
        (|s| s.mutability = Some(Mutability::Mutable), "imageTagMutability"),
        (
            |s| s.exclusion_filters = vec!["latest".into()],
            "imageTagMutability",
        ),
        (
            |s| {
                s.encryption = Some(EncryptionSettings {
                    encryption_type: "KMS".into(),
                    kms_key: None,
                })
            },
            "encryption",
        ),
        (
            |s| {
                s.tags.insert("extra".into(), "x".into());
            },
            "resourceTags",
        ),
        (
            |s| s.repository_policy = Some(r#"{"Statement":[]}"#.into()),
            "repositoryPolicy",
        ),
        (|s| s.repository_policy = None, "repositoryPolicy"),
        (|s| s.lifecycle_policy = Some("not json".into()), "lifecycleRules"),
    ];
    for (change, field) in cases {
        let mut drifted = want.clone();
        change(&mut drifted);
        assert_eq!(
            plan(&t, Some(&remote_of(drifted)), &want),
            Plan::Update(vec![field]),
            "{field}"
        );
    }
}

#[test]
fn status_records_creation_and_who_created_it() {
    let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap());
    let t = template(serde_json::json!({}));
    let want = desired(&t).unwrap();
    let synced = |plan| Synced {
        remote: remote_of(want.clone()),
        plan,
    };
    let created = next_status(&t, &Ok(synced(Plan::Create)), &now);
    assert_eq!(created.created, Some(true));
    assert_eq!(
        created.created_at.as_ref().map(|t| t.0.as_second()),
        Some(1_700_000_000)
    );
    assert_eq!(
        kstatus(Some(2), created.observed_generation, &created.conditions, false),
        KStatus::Current
    );
    assert_eq!(event(&synced(Plan::Create)).map(|n| n.0), Some("Created"));
    assert_eq!(
        event(&synced(Plan::Update(vec!["resourceTags"]))).map(|n| n.1.contains("resourceTags")),
        Some(true)
    );
    assert_eq!(event(&synced(Plan::InSync)), None);

    let found = next_status(&t, &Ok(synced(Plan::InSync)), &now);
    assert_eq!(found.created, Some(false), "found in ECR: left there on deletion");
    let mut again = t.clone();
    again.status = Some(created.clone());
    let failed = next_status(&again, &Err(Error::InvalidPolicy("x".into())), &now);
    assert_eq!(failed.created, Some(true));
    assert_eq!(
        kstatus(Some(2), failed.observed_generation, &failed.conditions, false),
        KStatus::Failed
    );
}

#[test]
fn an_older_template_of_the_same_registry_holds_its_prefix() {
    let claimant = |name: &str, created: i64, registry: &str, prefix: &str| {
        let mut t = template(serde_json::json!({"registryRef": {"name": registry}, "prefix": prefix}));
        t.metadata.name = Some(name.into());
        t.metadata.creation_timestamp =
            Some(Time(k8s_openapi::jiff::Timestamp::from_second(created).unwrap()));
        t
    };
    let all = vec![
        claimant("root", 10, "prod", "ROOT"),
        claimant("root-again", 20, "prod-alias", "ROOT"),
        claimant("hub", 30, "prod", "docker-hub/"),
        claimant("hub-again", 40, "prod", "docker-hub"),
        claimant("hub-staging", 50, "staging", "docker-hub"),
    ];
    let place = |registry: &str| match registry {
        "prod" | "prod-alias" => "account 1 in eu-west-1".to_owned(),
        other => format!("Registry {other}"),
    };
    let cases = [
        ("root", None),
        ("root-again", Some("root")),
        ("hub", None),
        ("hub-again", Some("hub")), // the trailing slash names the same prefix
        ("hub-staging", None),
    ];
    for (name, holder) in cases {
        let mine = all.iter().find(|t| t.name_any() == name).unwrap();
        match (claimed(mine, &all, place), holder) {
            (Ok(()), None) => {}
            (Err(Error::Conflict(m)), Some(h)) => {
                assert!(
                    m.starts_with(&format!("RepositoryCreationTemplate {h} (older)")),
                    "{name}: {m}"
                );
            }
            (got, want) => panic!("{name}: got {got:?}, want holder {want:?}"),
        }
    }
}
