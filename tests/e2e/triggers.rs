//! Status writes cause no work: after everything is Ready, the operator's own writes of a
//! Registry's status (a replication change) and of a LifecyclePolicy's status (a reconcile-now
//! request) make zero ECR calls for the Repositories involved, counted at the proxy.

use std::time::Duration;

use ecr_operator::api::v1alpha1::{LifecyclePolicy, Registry};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use crate::harness::env::OperatorEnv;
use crate::support::{eventually, quiet, temp_namespace};

const REPOSITORIES: usize = 5;
/// The ECR operations only a Repository reconcile makes.
const REPOSITORY_CALLS: [&str; 3] = ["ListTagsForResource", "DescribeRepositories", "CreateRepository"];

fn repository_calls(env: &OperatorEnv) -> Vec<(&'static str, usize)> {
    REPOSITORY_CALLS
        .iter()
        .map(|op| (*op, env.proxy.forwarded(op)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test]
async fn status_writes_by_the_operator_cause_no_repository_reconciles() {
    let env = OperatorEnv::start("e2e-triggers").await;
    let ns = temp_namespace(&env.client, "triggers").await;
    for i in 0..REPOSITORIES {
        env.apply_repository(&ns, &format!("r{i}"), json!({"name": format!("{ns}/r{i}")}))
            .await;
    }
    for i in 0..REPOSITORIES {
        env.wait_condition(&ns, &format!("r{i}"), "Ready", "True", None)
            .await;
    }
    let lp = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": "std"},
        "spec": {"repositories": (0..REPOSITORIES).map(|i| format!("r{i}")).collect::<Vec<_>>(),
            "rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                "countUnit": "days", "countNumber": 14}, "action": {"type": "expire"}}]}});
    env.apply(&ns, &lp).await.unwrap();
    let policies: Api<LifecyclePolicy> = Api::namespaced(env.client.clone(), &ns);
    eventually(
        Duration::from_secs(60),
        "the LifecyclePolicy to be Ready",
        || async {
            let p = policies.get("std").await.ok()?;
            let ready = p
                .status?
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(())
        },
    )
    .await;
    // Let the Repositories settle (the policy's arrival is not a Repository change).
    quiet(Duration::from_secs(3)).await;
    env.proxy.clear();

    // 1. A ReplicationRule makes the replication controller write the Registry's status.
    let rule = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ReplicationRule", "metadata": {"name": "e2e-triggers-rule"},
        "spec": {"registryRef": {"name": env.registry}, "destinations": [{"region": "us-west-2", "registryId": "111122223333"}]}});
    env.apply("", &rule).await.unwrap();
    let registries: Api<Registry> = Api::all(env.client.clone());
    eventually(
        Duration::from_secs(60),
        "the Registry's status to record the rule",
        || async {
            let r = registries.get(&env.registry).await.ok()?;
            let recorded = r
                .status?
                .replication?
                .rules
                .iter()
                .any(|a| a.name == "e2e-triggers-rule");
            recorded.then_some(())
        },
    )
    .await;

    // 2. A reconcile-now request makes the lifecycle controller write the policy's status.
    let annotation = json!({"metadata": {"annotations": {"ecr-operator.dev/reconcile-requested-at": "now"}}});
    policies
        .patch("std", &PatchParams::default(), &Patch::Merge(&annotation))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "the policy's status to echo the request",
        || async {
            let p = policies.get("std").await.ok()?;
            (p.status?.last_handled_reconcile_at.as_deref() == Some("now")).then_some(())
        },
    )
    .await;

    // Both status writes happened; give any re-queued reconcile time to call ECR.
    quiet(Duration::from_secs(5)).await;
    assert!(
        env.proxy.forwarded("PutReplicationConfiguration") >= 1,
        "the Registry's status was written"
    );
    assert!(
        env.proxy.forwarded("GetLifecyclePolicy") >= REPOSITORIES,
        "the policy was reconciled"
    );
    assert_eq!(
        repository_calls(&env),
        [],
        "status writes re-queued Repository reconciles"
    );
    let _ = Api::<ecr_operator::api::v1alpha1::ReplicationRule>::all(env.client.clone())
        .delete("e2e-triggers-rule", &DeleteParams::default())
        .await;
    env.delete_registry().await;
}
