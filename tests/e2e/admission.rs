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
