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

/// An upgrade leaves an object in storage that the new operator cannot decode: it was created
/// while the Repository CRD had no interval rule (an older release), then the validating CRD was
/// installed. The restarted operator reports that object by name (a Stalled status naming the
/// field, a Warning event), reconciles every other Repository, says `/readyz` 503 until its
/// watches have listed, picks up the fix, and exits cleanly on SIGTERM.
#[tokio::test]
async fn an_object_stored_before_its_admission_rule_is_reported_and_the_rest_reconciled() {
    use ecr_operator::api::v1alpha1::Repository;
    use ecr_operator_testenv::{install_crds, repo_root, yaml_documents};
    use kube::api::{Api, ListParams};
    use serde_json::json;

    use crate::harness::env::tail;
    use crate::harness::wait::{condition, wait_condition, wait_for};
    use crate::support::{api_code, apply, temp_namespace};

    let _serial = one_operator().await;
    let cp = ControlPlane::start().unwrap();
    let client = cp.client().await.unwrap();
    let moto = Moto::start().unwrap();

    // The CRDs of an older release: the Repository's interval is a free string.
    let old = std::env::temp_dir().join(format!("ecr-operator-old-crds-{}", std::process::id()));
    std::fs::create_dir_all(&old).unwrap();
    for entry in std::fs::read_dir(repo_root().join("crds")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut crd = yaml_documents(&text).unwrap().remove(0);
        if crd["spec"]["names"]["kind"] == "Repository" {
            let interval = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
                ["properties"]["interval"];
            let interval = interval.as_object_mut().unwrap();
            assert!(interval.remove("x-kubernetes-validations").is_some());
        }
        // JSON is YAML.
        std::fs::write(old.join(path.file_name().unwrap()), crd.to_string()).unwrap();
    }
    install_crds(&client, &old).await.unwrap();
    std::fs::remove_dir_all(&old).unwrap();

    let ns = temp_namespace(&client, "upgrade").await;
    let registry = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry", "metadata": {"name": "upgrade"},
        "spec": {"region": "us-east-1", "endpoint": moto.endpoint}});
    apply(&client, "", &registry).await.unwrap();
    let repository = |name: &str, interval: &str| {
        json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository", "metadata": {"name": name},
            "spec": {"registryRef": {"name": "upgrade"}, "name": format!("upgrade/{name}"), "interval": interval}})
    };
    apply(&client, &ns, &repository("stale", "1d")).await.unwrap();
    for name in ["good-1", "good-2"] {
        apply(&client, &ns, &repository(name, "10m")).await.unwrap();
    }

    // The upgrade: the validating CRDs. The stored object stays as it was; a new one is refused.
    cp.install_crds().await.unwrap();
    let refused = apply(&client, &ns, &repository("fresh", "1d")).await.unwrap_err();
    assert_eq!(api_code(&refused), Some(422));

    let bin = Path::new(env!("CARGO_BIN_EXE_ecr-operator"));
    let mut op = Operator::start(bin, &cp, &moto.endpoint, &["--cluster-id", "e2e-upgrade"]).unwrap();
    // /readyz says 200 only after the Repository watch has listed: the undecodable object is met
    // during that list, so its log line is already there at the first 200. (How soon the process
    // answers at all varies, so the 503s before it are not counted.)
    let logs_at_ready = eventually(Duration::from_secs(60), "/readyz", || {
        let answer = op.http_get("/readyz").ok();
        let logs = op.logs();
        async move { (answer?.0 == 200).then_some(logs) }
    })
    .await;
    assert!(
        logs_at_ready.contains("cannot decode this object"),
        "/readyz said ready before the Repository watch had listed:\n{}",
        tail(&logs_at_ready, 20)
    );

    let api: Api<Repository> = Api::namespaced(client.clone(), &ns);
    let limit = Duration::from_secs(90);
    for name in ["good-1", "good-2"] {
        wait_condition(&api, name, "Ready", "True", None, limit, || op.logs()).await;
    }
    // The stale object, read as the API server stores it (it does not decode into the type).
    let dynamic: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &kube::api::ApiResource::erase::<Repository>(&()),
    );
    let stalled = eventually(Duration::from_secs(30), "the stale object's status", || async {
        let o = dynamic.get("stale").await.ok()?;
        let status = o.data.get("status")?;
        (status["observedGeneration"].as_i64() == o.metadata.generation).then(|| status.clone())
    })
    .await;
    let stalled_condition = stalled["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Stalled")
        .unwrap()
        .clone();
    assert_eq!(stalled_condition["status"], "True");
    assert_eq!(stalled_condition["reason"], "InvalidSpec");
    let message = stalled_condition["message"].as_str().unwrap();
    assert!(
        message.contains("spec.interval") && message.contains("1d"),
        "{message}"
    );
    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().fields("involvedObject.name=stale"))
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("InvalidSpec") && e.type_.as_deref() == Some("Warning")),
        "{events:?}"
    );
    assert!(
        !op.logs().contains("\"interval\":\"1d\""),
        "the object's body is never logged"
    );

    // The controller keeps serving the kind: a new object converges, and the fix is picked up.
    apply(&client, &ns, &repository("good-3", "10m")).await.unwrap();
    wait_condition(&api, "good-3", "Ready", "True", None, limit, || op.logs()).await;
    apply(&client, &ns, &repository("stale", "1h")).await.unwrap();
    let fixed = wait_for(
        &api,
        "stale",
        limit,
        "the fixed object",
        || op.logs(),
        |r: &Repository| condition(r, "Ready").is_some_and(|c| c.status == "True"),
    )
    .await;
    assert!(condition(&fixed, "Stalled").is_none(), "{:?}", fixed.status);

    // SIGTERM: a clean exit, well within the Pod's grace period (30 s).
    op.signal("TERM");
    let exited = eventually(
        Duration::from_secs(25),
        "the operator to exit after SIGTERM",
        || {
            let code = op.exit_code();
            async move { code }
        },
    )
    .await;
    assert_eq!(exited, 0, "{}", op.logs());
}
