//! Leader election: two operator processes, exactly one reconciles; killing it hands over to the
//! standby once the lease expires.

use std::path::Path;
use std::time::{Duration, Instant};

use ecr_operator_testenv::{Moto, Operator};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

use crate::operator::one_operator;
use crate::support::{cluster, eventually};

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

fn is_leader(op: &Operator) -> Option<bool> {
    let (code, body) = op.http_get("/metrics").ok()?;
    (code == 200).then(|| body.lines().any(|l| l.trim() == "ecr_operator_leader 1"))
}

#[tokio::test]
async fn exactly_one_replica_reconciles_and_a_standby_takes_over() {
    let _serial = one_operator().await;
    let client = cluster().client().await.unwrap();
    let moto = Moto::start().unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let holder = || async {
        leases
            .get_opt("e2e-leader")
            .await
            .ok()
            .flatten()?
            .spec?
            .holder_identity
    };

    let mut a = start("leader-a", &moto.endpoint);
    eventually(Duration::from_secs(60), "leader-a to hold the lease", || async {
        (holder().await.as_deref() == Some("leader-a") && is_leader(&a) == Some(true)).then_some(())
    })
    .await;
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
