//! The Helm chart installed with `helm install` into a fresh control plane; the operator then
//! runs as a process with the chart ServiceAccount's own token (no admin credentials), and the
//! quick start plus every file of `examples/` reaches Ready, applied as `cargo xtask sandbox`
//! tells the user to: the chart's RBAC is sufficient, and the sandbox's next step works.
//! The same identity is refused what it has no business doing: the RBAC is tight where
//! Kubernetes allows.

use std::path::Path;
use std::time::{Duration, Instant};

use ecr_operator::api::v1alpha1::Registry;
use ecr_operator_testenv::chart::{
    CHART_MADE_EXAMPLE, RELEASE, RELEASE_NAMESPACE, apply_dir, helm, install_chart, operator_warnings,
    prepare_examples, run_output, service_account_kubeconfig, use_local_endpoint, wait_all_ready,
    write_local_examples,
};
use ecr_operator_testenv::gitops::{argocd_health, argocd_health_checks};
use ecr_operator_testenv::{
    ControlPlane, Moto, Operator, TEST_FIELD_MANAGER, apply_document, repo_root, yaml_files,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use crate::harness::env::one_operator;
use crate::harness::wait::{condition, wait_condition};
use crate::support::api_code;

#[tokio::test]
async fn helm_install_gives_an_operator_identity_that_runs_every_example_to_ready() {
    let _serial = one_operator().await;
    // Its own control plane: the chart installs the CRDs and cluster-wide RBAC.
    let cp = ControlPlane::start().unwrap();
    let moto = Moto::start().unwrap();
    let chart = repo_root().join("charts/ecr-operator");
    run_output(
        helm(&cp).unwrap().args(["lint", "--strict"]).arg(&chart),
        "helm lint",
    )
    .unwrap();

    let start = Instant::now();
    let notes = install_chart(
        &cp,
        &[
            ("defaultRegistry.create", "true"),
            ("defaultRegistry.spec.endpoint", &moto.endpoint),
        ],
    )
    .unwrap();
    eprintln!("helm install took {:?}", start.elapsed());
    assert!(notes.contains("STATUS: deployed"), "{notes}");
    let admin = cp.client().await.unwrap();
    let crds = Api::<CustomResourceDefinition>::all(admin.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/part-of=ecr-operator"))
        .await
        .unwrap();
    assert_eq!(
        crds.items.len(),
        ecr_operator::api::crds().len(),
        "the chart installed every CRD"
    );

    // The operator process gets the chart ServiceAccount's token and nothing else.
    let kubeconfig = service_account_kubeconfig(&cp, RELEASE_NAMESPACE, RELEASE)
        .await
        .unwrap();
    prepare_examples(&moto).await.unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_ecr-operator"));
    let args = [
        "--cluster-id",
        "chart",
        "--leader-elect",
        "--lease-name",
        "ecr-operator-leader",
        "--lease-namespace",
        RELEASE_NAMESPACE,
    ];
    let operator = Operator::start_with_kubeconfig(bin, &kubeconfig, &cp.dir, &moto.endpoint, &args).unwrap();

    // The user applies the quick start, then every other example (every kind) the way
    // `cargo xtask sandbox` tells them to: `kubectl apply -f` of the copies whose Registries use
    // the local endpoint. kubectl must print nothing but what it did (no warning, no error).
    let start = Instant::now();
    let mut applied = apply_dir(
        &admin,
        &repo_root().join("examples/quickstart"),
        "default",
        TEST_FIELD_MANAGER,
        use_local_endpoint(&moto.endpoint),
    )
    .await
    .unwrap();
    let examples = cp.dir.join("examples");
    let copies = write_local_examples(&examples, &moto.endpoint).unwrap();
    let out = cp
        .kubectl()
        .arg("apply")
        .arg("-f")
        .arg(&examples)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stderr.is_empty(),
        "kubectl apply -f {}:\n{stdout}{stderr}",
        examples.display()
    );
    applied.extend(stdout.lines().map(str::to_owned));
    run_output(
        cp.kubectl().args([
            "wait",
            "--for=condition=Ready",
            "ecr",
            "--all",
            "-A",
            "--timeout=120s",
        ]),
        "kubectl wait (the sandbox's next step)",
    )
    .unwrap();
    assert_eq!(
        copies.len(),
        yaml_files(&repo_root().join("examples")).unwrap().len() - 1,
        "every example but {CHART_MADE_EXAMPLE}, which the chart's default Registry stands for"
    );
    let (all_ready, states) = wait_all_ready(&cp, Duration::from_secs(120)).await.unwrap();
    let not_ready: Vec<_> = states.iter().filter(|s| s.status != "True").collect();
    assert!(
        all_ready,
        "not Ready: {not_ready:?}\napplied: {applied:?}\noperator log:\n{}",
        operator.logs()
    );
    // The happy path publishes no Warning event: the quick start is applied right after the
    // operator starts, so its objects are reconciled before the default Registry is Ready, and
    // waiting for a Registry that exists is not a warning.
    let warnings = operator_warnings(&admin).await.unwrap();
    assert!(
        warnings.is_empty(),
        "Warning events on the happy path:\n{}",
        warnings.join("\n")
    );
    // The chart's rbac.imageInventory (on by default) lets the inventory of images in use list
    // what it watches: no watch of it was refused.
    assert!(
        !operator.logs().contains("image inventory watch failed"),
        "the inventory's watches failed as the chart ServiceAccount:\n{}",
        operator.logs()
    );
    eprintln!(
        "{} objects ({} applied documents) Ready {:?} after applying, as the chart ServiceAccount",
        states.len(),
        applied.len(),
        start.elapsed()
    );
    for kind in [
        "Registry",
        "Repository",
        "LifecyclePolicy",
        "ReplicationRule",
        "PullSecret",
        "ClusterPullSecret",
    ] {
        assert!(
            states.iter().any(|s| s.object.starts_with(&format!("{kind}/"))),
            "no {kind} in {states:?}"
        );
    }
    // docs/gitops.md's Argo CD health check calls every one of them Healthy.
    let checks = argocd_health_checks().unwrap();
    let listed = run_output(
        cp.kubectl().args(["get", "ecr", "-A", "-o", "json"]),
        "kubectl get",
    )
    .unwrap();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    for obj in listed["items"].as_array().unwrap() {
        let kind = obj["kind"].as_str().unwrap();
        let script = &checks.iter().find(|(k, _)| k == kind).unwrap().1;
        let (health, message) = argocd_health(script, obj).unwrap();
        assert_eq!(health, "Healthy", "{kind} {}: {message}", obj["metadata"]["name"]);
    }
    // The assumed-role Registry reached moto's account through STS AssumeRole.
    assert!(
        states
            .iter()
            .any(|s| s.object == "Registry/shared-eu" && s.status == "True")
    );
    let logs = operator.logs();
    let denials: Vec<&str> = logs
        .lines()
        .filter(|l| l.to_lowercase().contains("forbidden"))
        .collect();
    assert!(denials.is_empty(), "RBAC denials: {denials:#?}");

    // /metrics: reconciles per controller, ECR calls per operation, token expiry, leadership.
    let (code, metrics) = operator.http_get("/metrics").unwrap();
    assert_eq!(code, 200);
    for controller in [
        "registry",
        "repository",
        "lifecycle-policy",
        "replication",
        "pull-secret",
        "cluster-pull-secret",
    ] {
        let needle = format!(r#"ecr_operator_reconcile_total{{controller="{controller}",result="success"}}"#);
        assert!(metrics.contains(&needle), "{needle} missing from /metrics");
        let needle = format!(r#"ecr_operator_reconcile_duration_seconds_count{{controller="{controller}"}}"#);
        assert!(metrics.contains(&needle), "{needle} missing from /metrics");
    }
    for needle in [
        r#"ecr_operator_backend_requests_total{operation="CreateRepository",outcome="ok"}"#,
        r#"ecr_operator_backend_requests_total{operation="GetAuthorizationToken",outcome="ok"}"#,
        r#"ecr_operator_pull_secret_expiry_timestamp_seconds{registry="default"}"#,
        "ecr_operator_leader 1",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from /metrics");
    }

    // Tight where Kubernetes allows: the operator's identity cannot read a Secret it does not
    // manage, nor create or delete the users' objects.
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "db-password"}, "stringData": {"password": "hunter2"}}),
    )
    .unwrap();
    Api::<Secret>::namespaced(admin.clone(), "shop")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let sa = cp
        .client_as_service_account(RELEASE_NAMESPACE, RELEASE)
        .await
        .unwrap();
    let refused = Api::<Secret>::namespaced(sa.clone(), "shop")
        .get("db-password")
        .await
        .unwrap_err();
    assert_eq!(api_code(&refused), Some(403), "{refused}");
    let refused = Api::<Secret>::namespaced(sa.clone(), "kube-system")
        .get("anything")
        .await
        .unwrap_err();
    assert_eq!(api_code(&refused), Some(403), "{refused}");
    let repos: Api<kube::api::DynamicObject> = Api::namespaced_with(
        sa.clone(),
        "shop",
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("ecr-operator.dev", "v1alpha1", "Repository"),
            "repositories",
        ),
    );
    let refused = repos.delete("web", &Default::default()).await.unwrap_err();
    assert_eq!(api_code(&refused), Some(403), "{refused}");
    // Nor, by default (`rbac.tenantIdentities` off), mint a token of another ServiceAccount.
    let token_request: k8s_openapi::api::authentication::v1::TokenRequest = serde_json::from_value(
        json!({"spec": {"audiences": ["sts.amazonaws.com"], "expirationSeconds": 600}}),
    )
    .unwrap();
    let refused = Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(sa.clone(), "kube-system")
        .create_token_request("namespace-controller", &PostParams::default(), &token_request)
        .await
        .unwrap_err();
    assert_eq!(api_code(&refused), Some(403), "{refused}");

    // A Registry whose static keys live where the chart grants no `get` (here `shop`): its status
    // says, in one sentence, what was forbidden and which chart value fixes it.
    let registry = json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "keys-elsewhere"},
        "spec": {
            "region": "us-east-1", "endpoint": moto.endpoint,
            "auth": {"secretRef": {"namespace": "shop", "name": "db-password"}},
        },
    });
    apply_document(&admin, "default", &registry, TEST_FIELD_MANAGER)
        .await
        .unwrap();
    let registries: Api<Registry> = Api::all(admin.clone());
    let stalled = wait_condition(
        &registries,
        "keys-elsewhere",
        "Stalled",
        "True",
        Some("KubernetesForbidden"),
        Duration::from_secs(60),
        || operator.logs(),
    )
    .await;
    let message = &condition(&stalled, "Ready").unwrap().message;
    assert_eq!(
        message,
        &format!(
            "Kubernetes forbids system:serviceaccount:{RELEASE_NAMESPACE}:{RELEASE} to get secrets \"db-password\" \
             in namespace \"shop\" (needed to read the Registry's credentials Secret); the chart grants get on \
             Secrets only in its release namespace and in the namespaces listed in its value \
             rbac.credentialSecretNamespaces: add \"shop\" to that list (or keep the Secret in the release \
             namespace)"
        )
    );
    assert!(!message.contains("hunter2"));

    // Uninstalling keeps the CRDs (and so every object and its ECR repository).
    drop(operator);
    run_output(
        helm(&cp)
            .unwrap()
            .args(["uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE]),
        "helm uninstall",
    )
    .unwrap();
    let kept = Api::<CustomResourceDefinition>::all(admin.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/part-of=ecr-operator"))
        .await
        .unwrap();
    assert_eq!(
        kept.items.len(),
        ecr_operator::api::crds().len(),
        "CRDs are kept on uninstall"
    );
    assert!(
        moto.ecr_client("us-east-1")
            .describe_repositories()
            .repository_names("shop/web")
            .send()
            .await
            .is_ok()
    );
}
