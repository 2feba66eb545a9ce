//! One writer per registry-wide setting, and a Registry that never silently moves to another
//! account: two Registry objects that reach the same registry (same moto endpoint and region:
//! moto is account 123456789012 for both), each setting scanning, a registry policy and a
//! ReplicationRule; and an edit of `auth` that reaches another account (moto answers an assumed
//! role's credentials in the role's account).

use std::time::Duration;

use aws_sdk_ecr::types::ReplicationConfiguration;
use ecr_operator::api::v1alpha1::{Registry, ReplicationRule};
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

use crate::harness::env::{OperatorEnv, tail};
use crate::harness::wait::{condition, has_condition, wait_condition, wait_for};
use crate::support::{eventually, quiet, temp_namespace};

const LIMIT: Duration = Duration::from_secs(60);

/// moto accepts only V1 registry policies (ecr:CreateRepository / ecr:ReplicateImage).
fn settings(filter: &str, principal: &str) -> Value {
    json!({
        "interval": "10s",
        "scanning": {"scanType": "Basic", "rules": [{"scanFrequency": "ScanOnPush", "repositoryFilters": [filter]}]},
        "policy": {"Version": "2012-10-17", "Statement": [{"Sid": "Replication", "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{principal}:root")},
            "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
            "Resource": "arn:aws:ecr:us-east-1:123456789012:repository/*"}]},
    })
}

async fn apply_registry(env: &OperatorEnv, name: &str, extra: Value) {
    let mut spec = json!({"region": "us-east-1", "endpoint": env.proxy.endpoint});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let doc = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry", "metadata": {"name": name}, "spec": spec});
    env.apply("", &doc).await.unwrap();
}

async fn apply_rule(env: &OperatorEnv, name: &str, registry: &str, filter: &str) {
    let doc = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ReplicationRule", "metadata": {"name": name},
        "spec": {"registryRef": {"name": registry}, "interval": "10s",
                 "destinations": [{"region": "us-west-2", "registryId": "111122223333"}],
                 "repositoryFilters": [{"filter": filter, "filterType": "PREFIX_MATCH"}]}});
    env.apply("", &doc).await.unwrap();
}

/// What ECR holds: the scanning filter, the policy's principal account, the replication filters.
async fn ecr_settings(env: &OperatorEnv) -> (String, String, Vec<String>) {
    let scanning = env
        .ecr
        .get_registry_scanning_configuration()
        .send()
        .await
        .unwrap();
    let filter = scanning
        .scanning_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.repository_filters().first())
        .map(|f| f.filter().to_owned())
        .unwrap_or_default();
    let policy = env
        .ecr
        .get_registry_policy()
        .send()
        .await
        .ok()
        .and_then(|p| p.policy_text().map(str::to_owned))
        .unwrap_or_default();
    let principal = ["444455556666", "777788889999"]
        .into_iter()
        .find(|p| policy.contains(p))
        .unwrap_or_default()
        .to_owned();
    let replication = env
        .ecr
        .describe_registry()
        .send()
        .await
        .unwrap()
        .replication_configuration()
        .map(ReplicationConfiguration::rules)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.repository_filters().first().map(|f| f.filter().to_owned()))
        .collect();
    (filter, principal, replication)
}

async fn wait_ecr(env: &OperatorEnv, expected: (&str, &str, &[&str])) {
    let what = format!("ECR to hold {expected:?}");
    let expected = (
        expected.0.to_owned(),
        expected.1.to_owned(),
        expected.2.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
    );
    let found = tokio::time::timeout(
        LIMIT,
        eventually(LIMIT, &what, || async {
            (ecr_settings(env).await == expected).then_some(())
        }),
    )
    .await;
    if found.is_err() {
        panic!(
            "timed out waiting for {what}; ECR has {:?}\n{}",
            ecr_settings(env).await,
            tail(&env.logs(), 40)
        );
    }
}

async fn delete<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let _ = api.delete(name, &DeleteParams::default()).await;
}

/// The Warning events with `reason` about the cluster-scoped object `name`.
async fn warnings(env: &OperatorEnv, name: &str, reason: &str) -> usize {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), "default");
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.type_.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some(reason)
        })
        .count()
}

#[tokio::test]
async fn two_registries_of_one_registry_have_one_owner_of_each_setting() {
    let env = OperatorEnv::start("e2e-owners-a").await;
    let (a, b) = ("e2e-owners-a", "e2e-owners-b");
    let (rule_a, rule_b) = ("e2e-owners-a-dr", "e2e-owners-b-dr");
    let registries: Api<Registry> = Api::all(env.client.clone());
    let rules: Api<ReplicationRule> = Api::all(env.client.clone());
    env.wait_registry_ready().await;
    env.apply_registry(settings("a*", "444455556666")).await;
    env.wait_registry(|r| has_condition(r, "Ready", "True", None))
        .await;
    // The second Registry is strictly newer (creationTimestamp has whole seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    apply_registry(&env, b, settings("b*", "777788889999")).await;
    apply_rule(&env, rule_a, a, "a/").await;
    apply_rule(&env, rule_b, b, "b/").await;

    // The newer one: Ready (it serves its Repositories), and says who owns what.
    let newer = wait_condition(
        &registries,
        b,
        "SettingsConflict",
        "True",
        Some("Conflict"),
        LIMIT,
        || env.logs(),
    )
    .await;
    assert!(has_condition(&newer, "Ready", "True", None), "{:?}", newer.status);
    let message = &condition(&newer, "SettingsConflict").unwrap().message;
    assert!(
        message.starts_with(&format!(
            "Registry {a} reaches the same registry (account 123456789012 in us-east-1 at "
        )) && message.contains("scanning configuration, registry policy and replication configuration"),
        "{message}"
    );
    let stalled = wait_condition(&rules, rule_b, "Stalled", "True", Some("Conflict"), LIMIT, || {
        env.logs()
    })
    .await;
    assert!(
        condition(&stalled, "Stalled")
            .unwrap()
            .message
            .contains(&format!("registryRef {a}"))
    );
    wait_condition(&rules, rule_a, "Ready", "True", None, LIMIT, || env.logs()).await;
    let older = env
        .wait_registry(|r| has_condition(r, "Ready", "True", None))
        .await;
    assert!(
        condition(&older, "SettingsConflict").is_none(),
        "{:?}",
        older.status
    );
    wait_ecr(&env, ("a*", "444455556666", &["a/"])).await;

    // Several intervals of both (10 s each): the owner is in sync and the other writes nothing,
    // so nothing is written at all; before, each reverted the other every interval.
    let warned = warnings(&env, b, "Conflict").await;
    assert!(warned >= 1, "a Warning when it started to yield");
    env.proxy.clear();
    tokio::time::sleep(Duration::from_secs(32)).await;
    assert!(
        env.proxy.forwarded("DescribeRegistry") >= 6,
        "both Registries were reconciled: {} DescribeRegistry calls",
        env.proxy.forwarded("DescribeRegistry")
    );
    assert_eq!(
        env.proxy.forwarded_writes(),
        Vec::<String>::new(),
        "no registry-wide write by either\n{}",
        tail(&env.logs(), 40)
    );
    assert_eq!(
        ecr_settings(&env).await,
        ("a*".to_owned(), "444455556666".to_owned(), vec!["a/".to_owned()])
    );
    assert_eq!(
        warnings(&env, b, "Conflict").await,
        warned,
        "Warnings on transitions, not one per interval"
    );

    // Each setting has its own owner: once the older Registry has no rule left (and has taken
    // its entry out of ECR), the newer one owns the replication configuration; the older one
    // keeps scanning and the policy.
    delete(&rules, rule_a).await;
    wait_ecr(&env, ("a*", "444455556666", &["b/"])).await;
    wait_condition(&rules, rule_b, "Ready", "True", None, LIMIT, || env.logs()).await;
    // The older one goes: the newer one takes over the rest.
    env.delete_registry().await;
    wait_for(
        &registries,
        b,
        LIMIT,
        "the Registry to own its settings",
        || env.logs(),
        |r| has_condition(r, "Ready", "True", None) && condition(r, "SettingsConflict").is_none(),
    )
    .await;
    wait_ecr(&env, ("b*", "777788889999", &["b/"])).await;

    delete(&rules, rule_b).await;
    wait_ecr(&env, ("b*", "777788889999", &[])).await;
    delete(&registries, b).await;
}

#[tokio::test]
async fn an_edit_that_reaches_another_account_stalls_until_the_account_is_set() {
    let env = OperatorEnv::start("e2e-owners-account").await;
    let registries: Api<Registry> = Api::all(env.client.clone());
    env.wait_registry_ready().await;
    let ns = temp_namespace(&env.client, "owners").await;
    env.apply_repository(&ns, "app", json!({"name": "owners/app"}))
        .await;
    env.wait_condition(&ns, "app", "Ready", "True", None).await;
    assert_eq!(env.proxy.forwarded("CreateRepository"), 1);

    // The credentials now reach account 111122223333 (moto answers an assumed role's calls in the
    // role's account): the Registry stalls instead of moving its Repository there.
    let other = json!({"auth": {"assumeRole": {"roleArn": "arn:aws:iam::111122223333:role/ecr-operator"}}});
    env.apply_registry(other.clone()).await;
    let stalled = env
        .wait_registry(|r| has_condition(r, "Stalled", "True", Some("AccountMismatch")))
        .await;
    let message = &condition(&stalled, "Stalled").unwrap().message;
    assert!(
        message.contains("now reach account 111122223333")
            && message.contains("has served account 123456789012"),
        "{message}"
    );
    let status = stalled.status.clone().unwrap();
    assert_eq!(
        status.registry_id.as_deref(),
        Some("123456789012"),
        "what it served stays"
    );
    env.wait_condition(&ns, "app", "Reconciling", "True", Some("DependencyNotReady"))
        .await;
    quiet(Duration::from_secs(3)).await;
    assert_eq!(
        env.proxy.forwarded("CreateRepository"),
        1,
        "nothing created in the other account"
    );

    // Moved on purpose: spec.accountId names the new account.
    let mut moved = other;
    moved["accountId"] = json!("111122223333");
    env.apply_registry(moved).await;
    let ready = env
        .wait_registry(|r| has_condition(r, "Ready", "True", None))
        .await;
    let status = ready.status.unwrap();
    assert_eq!(status.registry_id.as_deref(), Some("111122223333"));
    assert_eq!(
        status.registry_host.as_deref(),
        Some("111122223333.dkr.ecr.us-east-1.amazonaws.com")
    );
    // The documented effect: the Repository is created in the new account; the old one stays.
    env.wait_condition(&ns, "app", "Ready", "True", None).await;
    assert_eq!(env.proxy.forwarded("CreateRepository"), 2);
    assert!(env.ecr_exists("owners/app").await, "still in 123456789012");

    let repositories: Api<ecr_operator::api::v1alpha1::Repository> = Api::namespaced(env.client.clone(), &ns);
    delete(&repositories, "app").await;
    eventually(LIMIT, "the Repository to go", || async {
        repositories.get_opt("app").await.unwrap().is_none().then_some(())
    })
    .await;
    delete(&registries, &env.registry).await;
}
