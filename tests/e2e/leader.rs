//! Leader election: two operator processes, exactly one reconciles; killing it hands over to the
//! standby once the lease expires.

use std::path::Path;
use std::time::{Duration, Instant};

use ecr_operator_testenv::{FaultProxy, Moto, Operator};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;

use crate::faults::{assert_exactly_once, create_repositories, creates_under_way, report, wait_all_current};
use crate::harness::env::one_operator;
use crate::support::{apply, cluster, eventually, temp_namespace};

fn args(name: &str) -> Vec<String> {
    [
        "--cluster-id",
        "e2e-leader",
        "--leader-elect",
        "--lease-name",
        "e2e-leader",
        "--lease-namespace",
        "default",
        "--lease-duration",
        "6",
        "--lease-grace",
        "2",
        "--pod-name",
        name,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn start(name: &str, sts: &str) -> Operator {
    let a: Vec<String> = args(name);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    Operator::start(Path::new(env!("CARGO_BIN_EXE_ecr-operator")), cluster(), sts, &a).unwrap()
}

/// The holder of the test Lease.
async fn lease_holder(client: &kube::Client) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), "default")
        .get_opt("e2e-leader")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
}

/// Starts `name` and waits until it holds the Lease and says so in its metrics.
async fn start_leader(client: &kube::Client, name: &str, sts: &str) -> Operator {
    let op = start(name, sts);
    let what = format!("{name} to lead");
    eventually(Duration::from_secs(60), &what, || async {
        (lease_holder(client).await.as_deref() == Some(name) && is_leader(&op) == Some(true)).then_some(())
    })
    .await;
    op
}

fn is_leader(op: &Operator) -> Option<bool> {
    let (code, body) = op.http_get("/metrics").ok()?;
    (code == 200).then(|| body.lines().any(|l| l.trim() == "ecr_operator_leader 1"))
}

#[tokio::test]
async fn exactly_one_replica_reconciles_and_a_standby_takes_over() {
    let _serial = one_operator().await;
    let client = cluster().client().await.unwrap();
    let moto = Moto::start().unwrap();
    let holder = || lease_holder(&client);

    let mut a = start_leader(&client, "leader-a", &moto.endpoint).await;
    let b = start("leader-b", &moto.endpoint);
    eventually(
        Duration::from_secs(30),
        "leader-b to serve as a standby",
        || async { is_leader(&b).map(|l| !l).filter(|s| *s) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(is_leader(&a), Some(true));
    assert_eq!(is_leader(&b), Some(false), "only one replica leads");
    assert_eq!(b.http_get("/readyz").unwrap().0, 200, "a standby is ready");
    assert!(a.logs().contains("controllers started"));
    assert!(
        !b.logs().contains("controllers started"),
        "the standby runs no controller"
    );

    // The leader dies without releasing the lease: the standby takes over once it expires.
    a.signal("KILL");
    let killed = Instant::now();
    eventually(Duration::from_secs(60), "leader-b to take over", || async {
        (holder().await.as_deref() == Some("leader-b") && b.logs().contains("controllers started"))
            .then_some(())
    })
    .await;
    eprintln!(
        "standby took over {:?} after the leader was killed (lease duration 6 s)",
        killed.elapsed()
    );
    a.stop();
    drop(b);
    // A graceful stop releases the lease.
    eventually(Duration::from_secs(30), "the lease to be released", || async {
        (holder().await.as_deref() != Some("leader-b")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_leader_killed_mid_create_hands_over_without_duplicate_repositories() {
    let _serial = one_operator().await;
    let client = cluster().client().await.unwrap();
    let moto = Moto::start().unwrap();
    let proxy = FaultProxy::start(&moto.endpoint).unwrap();
    let registry = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "e2e-failover"}, "spec": {"region": "us-east-1", "endpoint": proxy.endpoint}});
    apply(&client, "", &registry).await.unwrap();
    let ns = temp_namespace(&client, "failover").await;
    let holder = || lease_holder(&client);

    let mut a = start_leader(&client, "failover-a", &moto.endpoint).await;
    let b = start("failover-b", &moto.endpoint);
    const N: usize = 30;
    create_repositories(&client, &ns, "e2e-failover", N).await;
    // Kill the leader in the middle of the mass create.
    creates_under_way(&proxy, 3).await;
    a.signal("KILL");
    let killed = Instant::now();
    let created_by_a = proxy.forwarded("CreateRepository");
    wait_all_current(&client, &ns, N, Duration::from_secs(120), || b.logs()).await;
    report(
        "leader-failover",
        killed.elapsed(),
        &format!(
            "{N} repositories, {created_by_a} created by the killed leader; lease 6 s; time from the kill"
        ),
    );
    assert_eq!(holder().await.as_deref(), Some("failover-b"));
    assert_eq!(
        proxy.forwarded("CreateRepository"),
        N,
        "each repository created exactly once"
    );
    assert_exactly_once(&moto.ecr_client("us-east-1"), &ns, N).await;
    a.stop();
    drop(b);
}
