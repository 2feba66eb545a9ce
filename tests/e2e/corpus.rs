//! The controller half of the bad-input corpus: `tests/fixtures/invalid/controller/*.yaml` pass admission
//! (CEL cannot see the problem) and the operator must answer with a condition and a reason.
//! Each file's first lines say `# expect-condition: Stalled|Reconciling|Suspended` and
//! `# expect-reason: <Reason>`; its last document is the object checked, the documents before it
//! are set-up (applied in order, each of ours waited for until Ready). Registries in the files
//! are pointed at the local ECR endpoint. The admission half is `tests/fixtures/invalid/`
//! (`admission.rs`).

use std::time::{Duration, Instant};

use ecr_operator_testenv::{repo_root, yaml_files};
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use serde_json::{Value, json};

use crate::harness::env::{OperatorEnv, tail};
use crate::support::{temp_namespace, yaml_documents};

async fn dynamic_api(client: &kube::Client, ns: &str, doc: &Value) -> Api<DynamicObject> {
    let api_version = doc["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, doc["kind"].as_str().unwrap());
    let (resource, caps) = pinned_kind(client, &gvk).await.unwrap();
    match caps.scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), ns, &resource),
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    }
}

/// The condition of `type_` that is True, as (reason, message).
fn true_condition(obj: &DynamicObject, type_: &str) -> Option<(String, String)> {
    let status = obj.data.get("status")?;
    if status["observedGeneration"].as_i64() != obj.metadata.generation {
        return None;
    }
    status["conditions"].as_array()?.iter().find_map(|c| {
        (c["type"] == type_ && c["status"] == "True").then(|| {
            (
                c["reason"].as_str().unwrap_or_default().to_owned(),
                c["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
    })
}

async fn wait_for(
    api: &Api<DynamicObject>,
    name: &str,
    type_: &str,
    limit: Duration,
) -> Option<(String, String)> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(found) = api
            .get_opt(name)
            .await
            .ok()
            .flatten()
            .and_then(|o| true_condition(&o, type_))
        {
            return Some(found);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

fn header(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
        .unwrap_or_else(|| panic!("missing `# {key}:` line"))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn every_controller_fixture_gets_its_condition_and_reason() {
    let env = OperatorEnv::start("corpus").await;
    env.wait_registry_ready().await;
    let files = yaml_files(&repo_root().join("tests/fixtures/invalid/controller")).unwrap();
    assert!(files.len() >= 10, "{} controller fixtures", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let (condition, reason) = (header(&text, "expect-condition"), header(&text, "expect-reason"));
        let ns = temp_namespace(&env.client, "corpus").await;
        let mut docs = yaml_documents(&text);
        for doc in &mut docs {
            if doc["kind"] == "Registry" {
                doc["spec"]["endpoint"] = json!(env.proxy.endpoint);
            }
        }
        let (last, setup) = docs.split_last().unwrap();
        for doc in setup {
            env.apply(&ns, doc)
                .await
                .unwrap_or_else(|e| panic!("{file}: set-up rejected: {e}"));
            let ours = doc["apiVersion"]
                .as_str()
                .unwrap()
                .starts_with("ecr-operator.dev/");
            let wants_ready = ours && !doc["spec"]["accountId"].is_string();
            if wants_ready {
                let api = dynamic_api(&env.client, &ns, doc).await;
                let name = doc["metadata"]["name"].as_str().unwrap();
                assert!(
                    wait_for(&api, name, "Ready", Duration::from_secs(60))
                        .await
                        .is_some(),
                    "{file}: set-up {name} not Ready\n{}",
                    tail(&env.logs(), 30)
                );
            }
        }
        env.apply(&ns, last).await.unwrap_or_else(|e| {
            panic!("{file}: must pass admission (the controller is what refuses it): {e}")
        });
        let api = dynamic_api(&env.client, &ns, last).await;
        let name = last["metadata"]["name"].as_str().unwrap();
        match wait_for(&api, name, &condition, Duration::from_secs(60)).await {
            Some((got, message)) if got == reason => eprintln!("{file}: {condition} {got}: {message}"),
            other => failures.push(format!("{file}: expected {condition}={reason}, got {other:?}")),
        }
        // Never Ready while refused.
        if wait_for(&api, name, "Ready", Duration::from_millis(10))
            .await
            .is_some()
        {
            failures.push(format!("{file}: Ready although {condition} {reason}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}\n{}", tail(&env.logs(), 40));
}
