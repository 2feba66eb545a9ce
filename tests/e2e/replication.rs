//! ReplicationRule against the real control plane and moto with the multi-rule extension
//! (tests/moto/ecr_replication.py: moto alone accepts one rule). Nothing is actually replicated
//! by moto; these tests check the document ECR holds.

use std::time::Duration;

use aws_sdk_ecr::types::{
    ReplicationConfiguration, ReplicationDestination, ReplicationRule as EcrRule, RepositoryFilter,
    RepositoryFilterType,
};
use ecr_operator::api::v1alpha1::ReplicationRule;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use crate::harness::env::{OperatorEnv, tail};
use crate::harness::wait::wait_condition;
use crate::support::eventually;

async fn apply_rule(env: &OperatorEnv, name: &str, priority: i32, filter: &str, region: &str) {
    let doc = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ReplicationRule", "metadata": {"name": name},
        "spec": {"registryRef": {"name": env.registry}, "priority": priority,
                 "destinations": [{"region": region, "registryId": "111122223333"}],
                 "repositoryFilters": [{"filter": filter, "filterType": "PREFIX_MATCH"}]}});
    env.apply("", &doc).await.unwrap();
}

/// The first filter of each rule in ECR's document, in order.
async fn document(env: &OperatorEnv) -> Vec<String> {
    let r = env.ecr.describe_registry().send().await.unwrap();
    r.replication_configuration()
        .map(|c| {
            c.rules()
                .iter()
                .map(|r| {
                    r.repository_filters()
                        .first()
                        .map(|f| f.filter().to_owned())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_document(env: &OperatorEnv, expected: &[&str]) {
    let what = format!("the replication document {expected:?}");
    let ok = tokio::time::timeout(
        Duration::from_secs(60),
        eventually(Duration::from_secs(60), &what, || async {
            (document(env).await == expected).then_some(())
        }),
    )
    .await;
    if ok.is_err() {
        panic!(
            "timed out waiting for {what}; ECR has {:?}\n{}",
            document(env).await,
            tail(&env.logs(), 30)
        );
    }
}

async fn wait_rule(env: &OperatorEnv, name: &str, type_: &str, reason: &str) -> ReplicationRule {
    let api: Api<ReplicationRule> = Api::all(env.client.clone());
    let limit = Duration::from_secs(60);
    wait_condition(&api, name, type_, "True", Some(reason), limit, || env.logs()).await
}

async fn delete_rule(env: &OperatorEnv, name: &str) {
    let _ = Api::<ReplicationRule>::all(env.client.clone())
        .delete(name, &DeleteParams::default())
        .await;
}

#[tokio::test]
async fn three_teams_share_one_document_and_a_foreign_rule_survives_until_exclusive() {
    let mut env = OperatorEnv::start("e2e-repl").await;
    // A rule written directly in ECR, outside the operator.
    let foreign = EcrRule::builder()
        .destinations(
            ReplicationDestination::builder()
                .region("ap-south-1")
                .registry_id("444455556666")
                .build()
                .unwrap(),
        )
        .repository_filters(
            RepositoryFilter::builder()
                .filter("legacy/")
                .filter_type(RepositoryFilterType::PrefixMatch)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    env.ecr
        .put_replication_configuration()
        .replication_configuration(
            ReplicationConfiguration::builder()
                .rules(foreign)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    apply_rule(&env, "e2e-repl-team-c", 5, "team-c/", "us-west-2").await;
    apply_rule(&env, "e2e-repl-team-b", 0, "team-b/", "eu-west-1").await;
    apply_rule(&env, "e2e-repl-team-a", 0, "team-a/", "us-west-2").await;
    wait_document(&env, &["team-a/", "team-b/", "team-c/", "legacy/"]).await;
    let r = wait_rule(&env, "e2e-repl-team-c", "Ready", "Succeeded").await;
    assert_eq!(r.status.unwrap().position, Some(2));

    // Editing one rule changes only its entry; deleting one removes only its entry.
    apply_rule(&env, "e2e-repl-team-b", 0, "team-b2/", "eu-west-1").await;
    wait_document(&env, &["team-a/", "team-b2/", "team-c/", "legacy/"]).await;
    delete_rule(&env, "e2e-repl-team-a").await;
    wait_document(&env, &["team-b2/", "team-c/", "legacy/"]).await;

    // In sync: a restart writes nothing.
    env.restart_and_settle("DescribeRegistry", 2).await;
    assert_eq!(
        env.proxy.forwarded("PutReplicationConfiguration"),
        0,
        "no write when in sync"
    );

    // exclusive: true removes the foreign rule.
    env.apply_registry(json!({"replication": {"exclusive": true}}))
        .await;
    wait_document(&env, &["team-b2/", "team-c/"]).await;
    for name in ["e2e-repl-team-b", "e2e-repl-team-c"] {
        delete_rule(&env, name).await;
    }
    wait_document(&env, &[]).await;
    env.delete_registry().await;
}

#[tokio::test]
async fn the_eleventh_rule_is_stalled_until_one_is_removed() {
    let env = OperatorEnv::start("e2e-limit").await;
    for i in 0..11 {
        apply_rule(
            &env,
            &format!("e2e-limit-r{i:02}"),
            0,
            &format!("t{i:02}/"),
            "us-west-2",
        )
        .await;
    }
    let stalled = wait_rule(&env, "e2e-limit-r10", "Stalled", "LimitExceeded").await;
    let message = &stalled
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap()
        .message;
    assert!(
        message.contains("11 rules") && message.contains("ECR allows 10"),
        "{message}"
    );
    let expected: Vec<String> = (0..10).map(|i| format!("t{i:02}/")).collect();
    wait_document(&env, &expected.iter().map(String::as_str).collect::<Vec<_>>()).await;
    for i in 0..10 {
        wait_rule(&env, &format!("e2e-limit-r{i:02}"), "Ready", "Succeeded").await;
    }
    delete_rule(&env, "e2e-limit-r03").await;
    wait_rule(&env, "e2e-limit-r10", "Ready", "Succeeded").await;
    let mut expected: Vec<String> = (0..11).filter(|i| *i != 3).map(|i| format!("t{i:02}/")).collect();
    expected.sort();
    wait_document(&env, &expected.iter().map(String::as_str).collect::<Vec<_>>()).await;
    for i in (0..11).filter(|i| *i != 3) {
        delete_rule(&env, &format!("e2e-limit-r{i:02}")).await;
    }
    env.delete_registry().await;
}

/// A ReplicationRule deleted while its Registry is itself being deleted (held by `InUse` for a
/// Repository) leaves ECR's replication configuration: the merge keeps running for a Registry
/// being deleted (it used to be skipped, and the entry stayed for good), and the rule's recorded
/// entry holds the Registry until it is out of ECR.
#[tokio::test]
async fn a_rule_deleted_while_its_registry_is_being_deleted_leaves_the_document() {
    use crate::harness::wait::has_condition;
    use crate::support::temp_namespace;
    let env = OperatorEnv::start("e2e-repl-deleting").await;
    let ns = temp_namespace(&env.client, "repl-deleting").await;
    env.apply_repository(&ns, "holder", json!({"name": "held/app"}))
        .await;
    env.wait_condition(&ns, "holder", "Ready", "True", None).await;
    apply_rule(&env, "e2e-repl-deleting-r", 0, "held/", "us-west-2").await;
    wait_document(&env, &["held/"]).await;

    env.delete_registry().await;
    env.wait_registry(|r| has_condition(r, "InUse", "True", Some("InUse")))
        .await;
    delete_rule(&env, "e2e-repl-deleting-r").await;
    wait_document(&env, &[]).await;

    Api::<ecr_operator::api::v1alpha1::Repository>::namespaced(env.client.clone(), &ns)
        .delete("holder", &DeleteParams::default())
        .await
        .unwrap();
}
