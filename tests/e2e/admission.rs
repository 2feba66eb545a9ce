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
                other => panic!("{}: unexpected kind {other}", path.display()),
            }
        }
    }
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
    assert_eq!(stdout.matches("(server dry run)").count(), 6, "{stdout}");
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
