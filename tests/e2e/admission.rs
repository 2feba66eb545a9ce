//! What the real API server accepts and rejects: the CRDs, every example, every invalid fixture.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use ecr_operator::api::v1alpha1::*;
use serde_json::Value;

use crate::support::{api_code, api_message, apply, cluster, temp_namespace, yaml_documents};

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    ecr_operator_testenv::yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)).unwrap()
}

/// Parses what the server stored into our typed object, so schema and Rust types agree
/// (including the defaults the server filled in).
fn typed<K: serde::de::DeserializeOwned>(stored: &kube::api::DynamicObject) -> K {
    serde_json::from_value(serde_json::to_value(stored).unwrap()).unwrap()
}

#[tokio::test]
async fn every_example_is_accepted_with_schema_defaults() {
    let cp = cluster();
    let client = cp.client().await.unwrap();
    let ns = temp_namespace(&client, "examples").await;
    let files = yaml_files("examples");
    assert!(files.len() >= 6, "at least one example per kind");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in yaml_documents(&text) {
            if doc["kind"] == "Secret" {
                // An example's credentials (in the operator's namespace): not the operator's kind.
                continue;
            }
            let stored = apply(&client, &ns, &doc)
                .await
                .unwrap_or_else(|e| panic!("{} was rejected: {}", path.display(), api_message(&e)));
            let name = stored.metadata.name.clone().unwrap();
            match doc["kind"].as_str().unwrap() {
                "Registry" => {
                    let r: Registry = typed(&stored);
                    assert_eq!(
                        Some(&r.spec.region),
                        doc["spec"]["region"].as_str().map(str::to_owned).as_ref()
                    );
                }
                "Repository" => {
                    let r: Repository = typed(&stored);
                    // Defaults come from the schema, applied by the API server.
                    assert_eq!(r.spec.registry_ref.name, "default", "{name}");
                    assert_eq!(r.spec.adoption, Adoption::AdoptOrCreate, "{name}");
                    if doc["spec"].get("deletionPolicy").is_none() {
                        assert_eq!(
                            r.spec.deletion_policy,
                            DeletionPolicy::Retain,
                            "{name}: safe default"
                        );
                    }
                }
                "LifecyclePolicy" => {
                    let p: LifecyclePolicy = typed(&stored);
                    assert_eq!(
                        p.spec.rules.len(),
                        doc["spec"]["rules"].as_array().unwrap().len(),
                        "{name}"
                    );
                }
                "ReplicationRule" => {
                    let r: ReplicationRule = typed(&stored);
                    assert!(!r.spec.destinations.is_empty(), "{name}");
                }
                "PullSecret" => {
                    let p: PullSecret = typed(&stored);
                    assert_eq!(p.spec.refresh_fraction, 0.5, "{name}: default refreshFraction");
                }
                "ClusterPullSecret" => {
                    let p: ClusterPullSecret = typed(&stored);
                    assert_eq!(p.spec.registries, ["default"], "{name}");
                }
                "RepositoryCreationTemplate" => {
                    let t: RepositoryCreationTemplate = typed(&stored);
                    assert_eq!(t.spec.registry_ref.name, "default", "{name}");
                    assert!(!t.spec.applied_for.is_empty(), "{name}");
                }
                "PublicRepository" => {
                    let r: ecr_operator::api::v1alpha1::PublicRepository = typed(&stored);
                    assert_eq!(r.spec.registry_ref.name, "default", "{name}");
                    assert_eq!(r.spec.deletion_policy, DeletionPolicy::Retain, "{name}");
                }
                "PullThroughCacheRule" => {
                    let r: PullThroughCacheRule = typed(&stored);
                    assert_eq!(r.spec.registry_ref.name, "default", "{name}");
                    assert!(!r.spec.suspend, "{name}");
                }
                "ImagePolicy" => {
                    let p: ecr_operator::api::v1alpha1::ImagePolicy = typed(&stored);
                    // Schema defaults: unknown images admitted, system namespaces left out.
                    assert_eq!(
                        p.spec.unknown,
                        ecr_operator::api::v1alpha1::UnknownImages::Allow,
                        "{name}"
                    );
                    assert!(!p.spec.allow_system_namespaces, "{name}");
                }
                other => panic!("{}: unexpected kind {other}", path.display()),
            }
        }
    }
}

/// A RepositoryCreationTemplate's `lifecycleRules` are the LifecyclePolicy's rule types with its
/// rules: each LifecyclePolicy fixture about the rules, its rules moved into a template, is refused
/// with the same message.
#[tokio::test]
async fn creation_template_lifecycle_rules_are_refused_like_a_lifecyclepolicys() {
    const NOT_ABOUT_RULES: [&str; 7] = [
        "both-selectors",
        "no-selector",
        "selector-bad-operator",
        "selector-in-without-values",
        "interval-negative",
        "protection-grace-days",
        "protection-negative-revisions",
    ];
    let cp = cluster();
    let client = cp.client().await.unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in yaml_files("tests/fixtures/invalid") {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(case) = file
            .strip_prefix("lifecyclepolicy-")
            .and_then(|f| f.strip_suffix(".yaml"))
        else {
            continue;
        };
        if NOT_ABOUT_RULES.contains(&case) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap();
        let policy = yaml_documents(&text).pop().unwrap();
        let template = serde_json::json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "RepositoryCreationTemplate",
            "metadata": {"name": format!("rct-lp-{case}")},
            "spec": {"registryRef": {"name": "admission-only"}, "suspend": true, "prefix": "team-a",
                "appliedFor": ["CreateOnPush"], "lifecycleRules": policy["spec"]["rules"]},
        });
        checked += 1;
        match apply(&client, "default", &template).await {
            Ok(_) => failures.push(format!("{file}: accepted in a template, expected {expect:?}")),
            Err(e) if api_code(&e) == Some(422) && api_message(&e).contains(expect) => {}
            Err(e) => failures.push(format!(
                "{file}: expected 422 with {expect:?}, got {}",
                api_message(&e)
            )),
        }
    }
    assert!(
        checked >= 15,
        "only {checked} LifecyclePolicy fixtures are about rules"
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn every_invalid_fixture_is_rejected_with_its_message() {
    let cp = cluster();
    let client = cp.client().await.unwrap();
    let files = yaml_files("tests/fixtures/invalid");
    assert!(
        files.len() >= 40,
        "the bad-input corpus has {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap()
            .to_owned();
        let docs: Vec<Value> = yaml_documents(&text);
        let ns = temp_namespace(&client, "invalid").await;
        let (last, setup) = docs.split_last().unwrap();
        for doc in setup {
            if let Err(e) = apply(&client, &ns, doc).await {
                failures.push(format!(
                    "{}: setup document rejected: {}",
                    path.display(),
                    api_message(&e)
                ));
            }
        }
        match apply(&client, &ns, last).await {
            Ok(_) => failures.push(format!("{}: accepted, expected {expect:?}", path.display())),
            Err(e) => {
                let msg = api_message(&e);
                if api_code(&e) != Some(422) || !msg.contains(&expect) {
                    failures.push(format!(
                        "{}: expected HTTP 422 with {expect:?}, got {:?}: {msg}",
                        path.display(),
                        api_code(&e)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn crd_command_output_passes_server_dry_run() {
    let cp = cluster();
    let crd = std::process::Command::new(env!("CARGO_BIN_EXE_ecr-operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(crd.status.success());
    let mut kubectl = cp
        .kubectl()
        .args(["apply", "--dry-run=server", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    kubectl.stdin.take().unwrap().write_all(&crd.stdout).unwrap();
    let out = kubectl.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.matches("(server dry run)").count(),
        ecr_operator::api::crds().len(),
        "{stdout}"
    );
}

/// The real API server and the operator's decoder accept exactly the same intervals: every string
/// the server admits decodes, and every string it refuses is refused with the rule's message. The
/// strings are the fixed edge cases plus 400 generated ones (a fixed seed, so a failure repeats).
#[tokio::test]
async fn the_api_server_admits_exactly_the_intervals_the_decoder_accepts() {
    use ecr_operator::api::interval::{Interval, RULE_MESSAGE};
    use kube::api::{Api, PostParams};

    let cp = cluster();
    let client = cp.client().await.unwrap();
    let ns = temp_namespace(&client, "intervals").await;
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client, &ns, &kube::api::ApiResource::erase::<Repository>(&()));
    let mut cases: Vec<String> = [
        "10s",
        "9s",
        "0s",
        "24h",
        "24h0m1s",
        "1439m60s",
        "1h30m",
        "-5m",
        "+5m",
        "1d",
        "1.5h",
        "1e3s",
        "500ms",
        "10 s",
        "",
        "99999999999999999999h",
        "99999h",
        "123456s",
        "1m1h",
        "10S",
    ]
    .map(str::to_owned)
    .to_vec();
    // A small linear congruential generator over the characters that matter.
    let alphabet: Vec<char> = "0123456789hmsun.+-e ".chars().collect();
    let mut seed: u64 = 0x5eed;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for _ in 0..300 {
        let len = 1 + next(8);
        let s: String = (0..len)
            .map(|_| {
                // Digits half of the time, so that well-formed values are common.
                if next(2) == 0 {
                    char::from(b'0' + u8::try_from(next(10)).unwrap())
                } else {
                    alphabet[usize::try_from(next(alphabet.len() as u64)).unwrap()]
                }
            })
            .collect();
        cases.push(s);
    }
    // And 100 well-formed ones around the range limits.
    for _ in 0..100 {
        let mut s = String::new();
        for (unit, max) in [('h', 30), ('m', 1500), ('s', 100_000)] {
            if next(2) == 0 {
                s.push_str(&format!("{}{unit}", next(max)));
            }
        }
        cases.push(s);
    }
    let dry_run = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let (mut accepted, mut mismatches) = (0, Vec::new());
    for (i, text) in cases.iter().enumerate() {
        let obj: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
            "metadata": {"name": format!("interval-{i}")},
            "spec": {"name": format!("intervals/r{i}"), "interval": text},
        }))
        .unwrap();
        let admitted = match api.create(&dry_run, &obj).await {
            Ok(_) => true,
            Err(e) => {
                let msg = api_message(&e);
                assert!(
                    msg.contains(RULE_MESSAGE),
                    "{text:?} was refused without the interval rule's message: {msg}"
                );
                false
            }
        };
        accepted += usize::from(admitted);
        if admitted != Interval::parse(text).is_ok() {
            mismatches.push(format!("{text:?}: API server admitted={admitted}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "admission and decoder disagree: {mismatches:#?}"
    );
    // The generated set must exercise both sides.
    assert!(
        accepted >= 30 && accepted < cases.len() - 100,
        "{accepted} of {} accepted",
        cases.len()
    );
}

/// The real API server and the operator's selector decoder accept exactly the same
/// `matchExpressions` requirements: every operator spelling (valid, mis-cased, invented, empty,
/// 64 characters) with no `values`, an empty list, one value and two. Every refusal carries one of
/// the rules' messages, and the decoder's error starts with the same message.
#[tokio::test]
async fn the_api_server_admits_exactly_the_selectors_the_decoder_accepts() {
    use ecr_operator::api::selector::{
        OPERATOR_MESSAGE, VALUES_FORBIDDEN_MESSAGE, VALUES_REQUIRED_MESSAGE, parse,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use kube::api::{Api, PostParams};

    let cp = cluster();
    let client = cp.client().await.unwrap();
    let ns = temp_namespace(&client, "selectors").await;
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client,
        &ns,
        &kube::api::ApiResource::erase::<LifecyclePolicy>(&()),
    );
    let long = "X".repeat(64);
    let operators = [
        "In",
        "NotIn",
        "Exists",
        "DoesNotExist",
        "Equals",
        "in",
        "exists",
        "NotEquals",
        "",
        &long,
    ];
    let values = [
        None,
        Some(serde_json::json!([])),
        Some(serde_json::json!(["a"])),
        Some(serde_json::json!(["a", "b"])),
    ];
    let dry_run = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let messages = [
        OPERATOR_MESSAGE,
        VALUES_REQUIRED_MESSAGE,
        VALUES_FORBIDDEN_MESSAGE,
    ];
    let (mut accepted, mut refused, mut mismatches) = (0, 0, Vec::new());
    for (i, (operator, values)) in operators
        .iter()
        .flat_map(|o| values.iter().map(move |v| (o, v)))
        .enumerate()
    {
        // A valid requirement first, so the refused one is matchExpressions[1].
        let mut requirement = serde_json::json!({"key": "tier", "operator": operator});
        if let Some(v) = values {
            requirement["values"] = v.clone();
        }
        let selector = serde_json::json!({"matchExpressions": [
            {"key": "team", "operator": "Exists"}, requirement]});
        let obj: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "LifecyclePolicy",
            "metadata": {"name": format!("selector-{i}")},
            "spec": {"repositorySelector": selector, "rules": [{"rulePriority": 1,
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5},
                "action": {"type": "expire"}}]},
        }))
        .unwrap();
        let admitted = match api.create(&dry_run, &obj).await {
            Ok(_) => true,
            Err(e) => {
                let msg = api_message(&e);
                assert!(
                    messages.iter().any(|m| msg.contains(m)) && msg.contains("matchExpressions[1]"),
                    "{selector} was refused without a selector rule's message: {msg}"
                );
                false
            }
        };
        let decoded = parse(&serde_json::from_value::<LabelSelector>(selector.clone()).unwrap());
        if let Err(e) = &decoded {
            let text = e.to_string();
            assert!(messages.iter().any(|m| text.starts_with(m)), "{text}");
            assert!(text.contains("matchExpressions[1]"), "{text}");
        }
        if admitted != decoded.is_ok() {
            mismatches.push(format!(
                "{selector}: API server admitted={admitted}, decoder {decoded:?}"
            ));
        }
        accepted += usize::from(admitted);
        refused += usize::from(!admitted);
    }
    assert!(
        mismatches.is_empty(),
        "admission and decoder disagree: {mismatches:#?}"
    );
    // In/NotIn with one or two values, Exists/DoesNotExist with none or an empty list.
    assert_eq!((accepted, refused), (8, 32));
}

/// The real API server and the operator accept exactly the same region codes, for the Registry's
/// region and a replication destination's alike (one rule), each refusal with the rule's message.
#[tokio::test]
async fn the_api_server_admits_exactly_the_regions_the_operator_accepts() {
    use ecr_operator::api::common::{REGION_MESSAGE, is_region};
    use kube::api::{Api, PostParams};

    let cp = cluster();
    let client = cp.client().await.unwrap();
    let registries: Api<kube::api::DynamicObject> =
        Api::all_with(client.clone(), &kube::api::ApiResource::erase::<Registry>(&()));
    let rules: Api<kube::api::DynamicObject> =
        Api::all_with(client, &kube::api::ApiResource::erase::<ReplicationRule>(&()));
    let cases = [
        "eu-west-1",
        "us-east-1",
        "us-gov-west-1",
        "cn-north-1",
        "ap-southeast-5",
        "us-isob-east-1",
        "us-eest-1",
        "uswest2",
        "us-west",
        "us-west-",
        "US-WEST-2",
        "us_west_2",
        "u-west-2",
        "usa-west-2",
        "us-west-2a",
        "us--west-2",
        " us-west-2",
        "us-west-2 ",
        "eu-west-12345678901234567",
        "eu-west-123456789012345678",
    ];
    let dry_run = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let mut mismatches = Vec::new();
    for (i, region) in cases.iter().enumerate() {
        let registry: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
            "metadata": {"name": format!("region-{i}")},
            "spec": {"region": region, "suspend": true},
        }))
        .unwrap();
        let rule: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ReplicationRule",
            "metadata": {"name": format!("region-{i}")},
            "spec": {"suspend": true, "destinations": [{"region": region, "registryId": "111122223333"}]},
        }))
        .unwrap();
        for (kind, result) in [
            ("Registry", registries.create(&dry_run, &registry).await),
            ("ReplicationRule", rules.create(&dry_run, &rule).await),
        ] {
            let admitted = match result {
                Ok(_) => true,
                Err(e) => {
                    let msg = api_message(&e);
                    // Longer than the bound: the length check speaks instead of the rule.
                    assert!(
                        msg.contains(REGION_MESSAGE) || (region.len() > 25 && msg.contains("Too long")),
                        "{kind} {region:?} was refused without the region rule's message: {msg}"
                    );
                    false
                }
            };
            if admitted != is_region(region) {
                mismatches.push(format!("{kind} {region:?}: API server admitted={admitted}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "admission and operator disagree: {mismatches:#?}"
    );
}
