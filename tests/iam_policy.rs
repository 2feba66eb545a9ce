//! `docs/iam-policy.json` lists exactly the ECR and Secrets Manager actions the operator calls:
//! every operation named in `src/backend/ecr/` (and the change operations of
//! `src/backend/mod.rs`), no more; the Secrets Manager ones only on `ecr-pullthroughcache/`
//! secrets; and the ECR Public actions `src/backend/ecr/public.rs` calls, with
//! `sts:GetServiceBearerToken`, which ECR Public's GetAuthorizationToken requires.

// Test code: helpers may unwrap (the standard forbids unwrap outside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The quoted CamelCase word right after `marker` on each line that contains it.
fn quoted_after(text: &str, marker: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(i) = rest.find(marker) {
            rest = &rest[i + marker.len()..];
            let word: String = rest
                .trim_start()
                .trim_start_matches('"')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if rest.trim_start().starts_with('"')
                && word.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            {
                out.insert(word);
            }
        }
    }
    out
}

#[test]
fn iam_policy_lists_exactly_the_ecr_actions_the_operator_calls() {
    // Every file of the SDK backend.
    let mut files: Vec<_> = std::fs::read_dir(root().join("src/backend/ecr"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let ecr: String = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let domain = std::fs::read_to_string(root().join("src/backend/mod.rs")).unwrap();
    let mut called = quoted_after(&ecr, "self.call(target, ");
    called.extend(quoted_after(&ecr, "self\n                .call(target, "));
    // Calls split over lines by rustfmt: `.call(target, "Op", ...)`.
    called.extend(quoted_after(&ecr, ".call(target, "));
    // RepositoryChange::operation() names the calls of apply_change.
    let ops = &domain[domain.find("pub fn operation(&self)").unwrap()..];
    let ops = &ops[..ops.find("\n    }\n").unwrap()];
    called.extend(quoted_after(ops, "=> "));
    assert!(called.len() >= 20, "found only {called:?}");
    // Secrets Manager's operations (no ECR operation names a secret).
    let (mut secrets, called): (BTreeSet<String>, BTreeSet<String>) =
        called.into_iter().partition(|op| op.contains("Secret"));
    assert!(secrets.len() >= 4, "found only {secrets:?}");
    // CreateSecret with tags (the operator's owner tag) also needs secretsmanager:TagResource.
    assert!(secrets.contains("CreateSecret"));
    secrets.insert("TagResource".into());

    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("docs/iam-policy.json")).unwrap()).unwrap();
    let listed: BTreeSet<String> = policy["Statement"][0]["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().strip_prefix("ecr:").unwrap().to_owned())
        .collect();
    assert_eq!(
        listed, called,
        "docs/iam-policy.json must list exactly the ECR operations the backend calls"
    );
    let statement = &policy["Statement"][1];
    let listed: BTreeSet<String> = statement["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap()
                .strip_prefix("secretsmanager:")
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        listed, secrets,
        "docs/iam-policy.json must list exactly the Secrets Manager operations the backend calls"
    );
    assert_eq!(
        statement["Resource"], "arn:aws:secretsmanager:*:*:secret:ecr-pullthroughcache/*",
        "Secrets Manager only for pull-through cache credentials"
    );

    // A customRoleArn (of a pull-through cache rule or a creation template) is a role passed to
    // ECR: iam:PassRole, and only to ECR's own service principals. Nothing else of IAM.
    let passes_roles = ecr.contains(".custom_role_arn(") || ecr.contains(".set_custom_role_arn(");
    assert!(
        passes_roles,
        "the backend no longer sends a customRoleArn: drop iam:PassRole"
    );
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(
        statements.len(),
        4,
        "ECR, Secrets Manager, PassRole, ECR Public: {statements:#?}"
    );
    let pass = &statements[2];
    assert_eq!(pass["Action"], "iam:PassRole");
    assert_eq!(
        pass["Condition"]["StringEquals"]["iam:PassedToService"],
        serde_json::json!(["ecr.amazonaws.com", "pullthroughcache.ecr.amazonaws.com"]),
        "roles are passed to ECR only"
    );
}

#[test]
fn iam_policy_lists_exactly_the_ecr_public_actions_the_operator_calls() {
    let public = std::fs::read_to_string(root().join("src/backend/ecr/public.rs")).unwrap()
        + &std::fs::read_to_string(root().join("src/backend/ecr_public.rs")).unwrap();
    let mut called = BTreeSet::new();
    // Every quoted `"ecr-public:<Operation>"`: the names `call` runs under.
    for line in public.lines() {
        for part in line.split("\"ecr-public:").skip(1) {
            let op: String = part.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            called.insert(format!("ecr-public:{op}"));
        }
    }
    assert!(called.len() >= 14, "found only {called:?}");
    called.insert("sts:GetServiceBearerToken".into());
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("docs/iam-policy.json")).unwrap()).unwrap();
    let statement = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "EcrPublic")
        .expect("an EcrPublic statement");
    let listed: BTreeSet<String> = statement["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        listed, called,
        "docs/iam-policy.json must list exactly the ECR Public operations the backend calls"
    );
}
