//! The operator process's own lifecycle: `/healthz` at once, `/readyz` only once the CRDs are
//! Established and the caches are synced.

use std::path::Path;
use std::time::Duration;

use ecr_operator_testenv::{ControlPlane, Moto, Operator};

use crate::harness::env::one_operator;
use crate::support::eventually;

#[tokio::test]
async fn readyz_turns_ready_only_after_the_crds_exist_and_caches_sync() {
    let _serial = one_operator().await;
    // A control plane without the CRDs yet.
    let cp = ControlPlane::start().unwrap();
    let moto = Moto::start().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_ecr-operator"));
    let op = Operator::start(bin, &cp, &moto.endpoint, &["--cluster-id", "e2e-readyz"]).unwrap();
    eventually(Duration::from_secs(30), "/healthz", || async {
        (op.http_get("/healthz").ok()?.0 == 200).then_some(())
    })
    .await;
    for _ in 0..8 {
        assert_eq!(
            op.http_get("/readyz").unwrap().0,
            503,
            "not ready without the CRDs"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(op.logs().contains("waiting for CRD"));
    cp.install_crds().await.unwrap();
    eventually(
        Duration::from_secs(60),
        "/readyz after the CRDs are installed",
        || async { (op.http_get("/readyz").ok()?.0 == 200).then_some(()) },
    )
    .await;
    let logs = op.logs();
    let synced = logs.find("caches synced").expect("caches synced is logged");
    let started = logs
        .find("controllers started")
        .expect("controllers started is logged");
    assert!(synced < started, "caches sync before the controllers start");
}
