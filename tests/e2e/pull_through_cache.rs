//! PullThroughCacheRule against the real control plane and moto with the pull-through cache
//! extension (tests/moto/ecr_pull_through_cache.py), Secrets Manager served by moto too: the
//! examples become Ready, a `credentialsSecretRef` becomes a Secrets Manager secret under
//! `ecr-pullthroughcache/` that follows the Kubernetes Secret, drift of the rule is reverted, a
//! restart writes nothing, an immutable field is refused at admission, and deletion removes what
//! the operator created and leaves a pre-existing secret alone.

use std::time::Duration;

use ecr_operator::api::v1alpha1::PullThroughCacheRule;
use ecr_operator_testenv::repo_root;
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

use crate::harness::env::{OperatorEnv, tail};
use crate::harness::wait::wait_condition;
use crate::support::{api_message, apply, cluster, eventually, temp_namespace, yaml_documents};

const PRE_EXISTING: &str = "ecr-pullthroughcache/e2e-ptc-pre";

async fn wait_ready(env: &OperatorEnv, name: &str) -> PullThroughCacheRule {
    let api: Api<PullThroughCacheRule> = Api::all(env.client.clone());
    wait_condition(
        &api,
        name,
        "Ready",
        "True",
        Some("Succeeded"),
        Duration::from_secs(90),
        || env.logs(),
    )
    .await
}

/// The rule of `prefix` ECR holds, if any.
async fn ecr_rule(env: &OperatorEnv, prefix: &str) -> Option<aws_sdk_ecr::types::PullThroughCacheRule> {
    let out = env
        .ecr
        .describe_pull_through_cache_rules()
        .ecr_repository_prefixes(prefix)
        .send()
        .await
        .ok()?;
    out.pull_through_cache_rules().first().cloned()
}

/// The JSON value of the Secrets Manager secret `name`, if it exists.
async fn secret_value(env: &OperatorEnv, name: &str) -> Option<Value> {
    let out = env
        .moto
        .secrets_client("us-east-1")
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .ok()?;
    serde_json::from_str(out.secret_string()?).ok()
}

fn credentials(ns: &str, name: &str, token: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
        "stringData": {"username": "e2e-bot", "accessToken": token}})
}

/// An example of `examples/`, on this env's Registry and under a name unique to this test.
fn example(env: &OperatorEnv, file: &str, name: &str, ns: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo_root().join("examples").join(file)).unwrap();
    yaml_documents(&text)
        .into_iter()
        .map(|mut doc| {
            if doc["kind"] == "PullThroughCacheRule" {
                doc["metadata"]["name"] = json!(name);
                doc["spec"]["registryRef"] = json!({"name": env.registry});
                doc["spec"]["ecrRepositoryPrefix"] = json!(name);
                if doc["spec"].get("credentialsSecretRef").is_some() {
                    doc["spec"]["credentialsSecretRef"]["namespace"] = json!(ns);
                    doc["spec"]["interval"] = json!("10s");
                }
            } else {
                doc["metadata"]["namespace"] = json!(ns);
            }
            doc
        })
        .collect()
}

#[tokio::test]
async fn cache_rules_keep_their_credentials_in_secrets_manager_and_clean_up_what_they_made() {
    // Secrets Manager through the counting proxy: a restart that rewrote a secret would show.
    let mut env = OperatorEnv::start_with_secrets_through_proxy("e2e-ptc").await;
    env.wait_registry_ready().await;
    let ns = temp_namespace(&env.client, "ptc").await;
    // A secret someone made before, of the name a rule will use.
    env.moto
        .secrets_client("us-east-1")
        .create_secret()
        .name(PRE_EXISTING)
        .secret_string(r#"{"username":"old","accessToken":"old"}"#)
        .send()
        .await
        .unwrap();

    // The two examples (Docker Hub with credentialsSecretRef, ECR Public without credentials) and
    // a GitHub rule whose secret name is the pre-existing secret's.
    let mut docs = example(&env, "pullthroughcacherule-docker-hub.yaml", "e2e-ptc-hub", &ns);
    docs.extend(example(
        &env,
        "pullthroughcacherule-ecr-public.yaml",
        "e2e-ptc-public",
        &ns,
    ));
    apply(&env.client, &ns, &credentials(&ns, "gh-creds", "gh-token"))
        .await
        .unwrap();
    docs.push(
        json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullThroughCacheRule",
        "metadata": {"name": "e2e-ptc-gh"},
        "spec": {"registryRef": {"name": env.registry}, "ecrRepositoryPrefix": "e2e-ptc-gh",
            "upstreamRegistry": "github-container-registry", "upstreamRegistryUrl": "ghcr.io",
            "credentialsSecretRef": {"name": "gh-creds", "namespace": ns, "secretName": "e2e-ptc-pre"}}}),
    );
    for doc in &docs {
        if doc["kind"] == "Secret" {
            apply(&env.client, &ns, doc).await.unwrap();
        } else {
            env.apply("", doc).await.unwrap();
        }
    }
    let hub = wait_ready(&env, "e2e-ptc-hub").await;
    let public = wait_ready(&env, "e2e-ptc-public").await;
    let gh = wait_ready(&env, "e2e-ptc-gh").await;

    // The Docker Hub rule: in ECR with the secret the operator created from the Secret's values.
    let status = hub.status.clone().unwrap();
    assert!(status.created_at.is_some(), "{status:?}");
    assert_eq!(status.upstream_valid.as_deref(), Some("True"));
    assert_eq!((status.created, status.secret_created), (Some(true), Some(true)));
    let arn = status.credential_arn.clone().unwrap();
    assert!(arn.contains(":secret:ecr-pullthroughcache/e2e-ptc-hub-"), "{arn}");
    let rule = ecr_rule(&env, "e2e-ptc-hub").await.expect("the rule in ECR");
    assert_eq!(rule.upstream_registry_url(), Some("registry-1.docker.io"));
    assert_eq!(rule.credential_arn(), Some(arn.as_str()));
    assert_eq!(
        secret_value(&env, "ecr-pullthroughcache/e2e-ptc-hub").await,
        Some(json!({"username": "my-docker-hub-user", "accessToken": "dckr_pat_replace-me"}))
    );
    let public_status = public.status.unwrap();
    assert_eq!(public_status.credential_arn, None);
    assert_eq!(public_status.secret_created, None);
    // The GitHub rule took the pre-existing secret over: written, but not its own.
    assert_eq!(gh.status.unwrap().secret_created, Some(false));
    assert_eq!(
        secret_value(&env, PRE_EXISTING).await,
        Some(json!({"username": "e2e-bot", "accessToken": "gh-token"}))
    );

    // `kubectl get ecr -A` lists them with their columns.
    let out = cluster().kubectl().args(["get", "ecr", "-A"]).output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    for name in ["e2e-ptc-hub", "e2e-ptc-public", "e2e-ptc-gh"] {
        assert!(listed.contains(name), "{name} not in:\n{listed}");
    }

    // The Kubernetes Secret changes: the Secrets Manager secret follows (within spec.interval).
    let mut rotated = docs.iter().find(|d| d["kind"] == "Secret").unwrap().clone();
    rotated["stringData"]["accessToken"] = json!("dckr_pat_rotated");
    apply(&env.client, &ns, &rotated).await.unwrap();
    eventually(
        Duration::from_secs(60),
        "the rotated token in Secrets Manager",
        || async {
            let v = secret_value(&env, "ecr-pullthroughcache/e2e-ptc-hub").await?;
            (v["accessToken"] == "dckr_pat_rotated").then_some(())
        },
    )
    .await;

    // Drift behind the operator's back: the rule deleted in ECR comes back.
    env.ecr
        .delete_pull_through_cache_rule()
        .ecr_repository_prefix("e2e-ptc-hub")
        .send()
        .await
        .unwrap();
    eventually(Duration::from_secs(60), "the deleted rule recreated", || async {
        ecr_rule(&env, "e2e-ptc-hub").await.map(drop)
    })
    .await;

    // ECR cannot change a rule's upstream: admission refuses it with the message.
    let mut moved = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "e2e-ptc-public")
        .unwrap()
        .clone();
    moved["spec"]["upstreamRegistry"] = json!("quay");
    moved["spec"]["upstreamRegistryUrl"] = json!("quay.io");
    let refused = env.apply("", &moved).await.unwrap_err();
    assert!(
        api_message(&refused).contains("upstreamRegistryUrl is immutable"),
        "{}",
        api_message(&refused)
    );

    // In sync: a restart reads and writes nothing to ECR or Secrets Manager (whose reads the
    // proxy saw: the secrets were compared, not skipped).
    env.restart_and_settle("ValidatePullThroughCacheRule", 3).await;
    assert!(
        env.proxy.forwarded("GetSecretValue") >= 2,
        "the restarted operator read the secrets through the proxy"
    );
    let writes = env.proxy.forwarded_writes();
    assert!(
        writes.is_empty(),
        "a restart wrote {writes:?}\n{}",
        tail(&env.logs(), 30)
    );

    // Deletion: the rules go, the secret the operator made goes, the pre-existing one stays.
    let api: Api<PullThroughCacheRule> = Api::all(env.client.clone());
    for name in ["e2e-ptc-hub", "e2e-ptc-public", "e2e-ptc-gh"] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    eventually(Duration::from_secs(60), "the rules deleted", || async {
        let left = api.list(&Default::default()).await.ok()?;
        let ours = left.items.iter().filter(|r| {
            r.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("e2e-ptc-"))
        });
        (ours.count() == 0).then_some(())
    })
    .await;
    for prefix in ["e2e-ptc-hub", "e2e-ptc-public", "e2e-ptc-gh"] {
        assert!(ecr_rule(&env, prefix).await.is_none(), "{prefix} still in ECR");
    }
    assert_eq!(secret_value(&env, "ecr-pullthroughcache/e2e-ptc-hub").await, None);
    assert!(
        secret_value(&env, PRE_EXISTING).await.is_some(),
        "the pre-existing secret is left alone"
    );
}

/// The message of the `Stalled` condition of `name`, once it is `Conflict`.
async fn conflict(env: &OperatorEnv, name: &str) -> String {
    let api: Api<PullThroughCacheRule> = Api::all(env.client.clone());
    let stalled = wait_condition(
        &api,
        name,
        "Stalled",
        "True",
        Some("Conflict"),
        Duration::from_secs(60),
        || env.logs(),
    )
    .await;
    let conditions = stalled.status.unwrap().conditions;
    conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap()
        .message
}

/// Pull-through cache rules carry no owner tag, so two objects naming one prefix (or one Secrets
/// Manager secret) would share it: the older holds it, the others are Stalled with `Conflict` and
/// write nothing, and when the holder goes the next one takes over, re-queued by that deletion.
#[tokio::test]
async fn a_second_object_for_a_prefix_or_a_secret_waits_and_takes_over_when_the_first_goes() {
    let env = OperatorEnv::start("e2e-ptc-two").await;
    env.wait_registry_ready().await;
    let ns = temp_namespace(&env.client, "ptc-two").await;
    apply(&env.client, &ns, &credentials(&ns, "two-creds", "two-token"))
        .await
        .unwrap();
    let rule = |name: &str, prefix: &str| {
        json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullThroughCacheRule",
            "metadata": {"name": name},
            "spec": {"registryRef": {"name": env.registry}, "ecrRepositoryPrefix": prefix,
                "upstreamRegistry": "github-container-registry", "upstreamRegistryUrl": "ghcr.io",
                "credentialsSecretRef": {"name": "two-creds", "namespace": ns, "secretName": "e2e-two"}}})
    };
    let api: Api<PullThroughCacheRule> = Api::all(env.client.clone());
    env.apply("", &rule("e2e-two-a", "e2e-two")).await.unwrap();
    wait_ready(&env, "e2e-two-a").await;
    env.apply("", &rule("e2e-two-b", "e2e-two")).await.unwrap();
    env.apply("", &rule("e2e-two-c", "e2e-two-other")).await.unwrap();
    let same_prefix = conflict(&env, "e2e-two-b").await;
    assert!(
        same_prefix.contains("PullThroughCacheRule e2e-two-a (older)")
            && same_prefix.contains("prefix e2e-two/"),
        "{same_prefix}"
    );
    let same_secret = conflict(&env, "e2e-two-c").await;
    assert!(
        same_secret.contains("PullThroughCacheRule e2e-two-a (older)")
            && same_secret.contains("ecr-pullthroughcache/e2e-two"),
        "{same_secret}"
    );
    // The refused objects wrote nothing: no rule for e2e-two-other, the holder's rule as it was.
    assert!(ecr_rule(&env, "e2e-two-other").await.is_none());
    let first_created = ecr_rule(&env, "e2e-two").await.unwrap().created_at().copied();

    // The holder goes (its cleanup deletes the rule and the secret it created); the next one
    // takes both over without waiting for its interval, and the third now names that one.
    api.delete("e2e-two-a", &DeleteParams::default()).await.unwrap();
    let b = wait_ready(&env, "e2e-two-b").await;
    let status = b.status.unwrap();
    assert_eq!((status.created, status.secret_created), (Some(true), Some(true)));
    let rule_now = ecr_rule(&env, "e2e-two").await.expect("the rule, created again");
    assert_ne!(
        rule_now.created_at().copied(),
        first_created,
        "created anew by e2e-two-b"
    );
    assert_eq!(
        secret_value(&env, "ecr-pullthroughcache/e2e-two").await,
        Some(json!({"username": "e2e-bot", "accessToken": "two-token"}))
    );
    eventually(Duration::from_secs(60), "e2e-two-c naming e2e-two-b", || async {
        let c = api.get("e2e-two-c").await.ok()?;
        let message = c
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Stalled")?
            .message;
        message
            .contains("PullThroughCacheRule e2e-two-b (older)")
            .then_some(())
    })
    .await;
    for name in ["e2e-two-b", "e2e-two-c"] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
}
