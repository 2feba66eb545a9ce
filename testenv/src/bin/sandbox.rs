//! `cargo xtask sandbox`: the real control plane, the local ECR endpoint and the operator, with
//! the CRDs installed and `examples/` applied, running until Ctrl-C.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ecr_operator_testenv::{
    ControlPlane, Moto, Operator, apply_document, error_chain, repo_root, yaml_documents,
};
use serde_json::json;

const FIELD_MANAGER: &str = "ecr-operator-sandbox";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let bin = std::env::var_os("ECR_OPERATOR_BIN")
        .ok_or("ECR_OPERATOR_BIN is not set (run `cargo xtask sandbox`)")?;
    eprintln!("sandbox: starting the control plane (kube-apiserver, etcd, kube-controller-manager)");
    let cp = ControlPlane::start().map_err(|e| error_chain(&e))?;
    eprintln!("sandbox: starting the local ECR endpoint (moto)");
    let moto = Moto::start().map_err(|e| error_chain(&e))?;
    let crds = cp.install_crds().await.map_err(|e| error_chain(&e))?;
    eprintln!("sandbox: installed {} CRDs", crds.len());

    // examples/repository-kms-observe.yaml observes a repository created outside the operator.
    let kms = aws_sdk_ecr::types::EncryptionConfiguration::builder()
        .encryption_type(aws_sdk_ecr::types::EncryptionType::Kms)
        .build()
        .map_err(|e| e.to_string())?;
    moto.ecr_client("us-east-1")
        .create_repository()
        .repository_name("legacy/batch")
        .encryption_configuration(kms)
        .send()
        .await
        .map_err(|e| format!("creating legacy/batch in the local ECR: {e}"))?;

    let client = cp.client().await.map_err(|e| error_chain(&e))?;
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("examples"))
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        for mut doc in yaml_documents(&text).map_err(|e| error_chain(&e))? {
            // The default Registry talks to the local ECR endpoint instead of AWS.
            if doc["kind"] == "Registry" && doc["metadata"]["name"] == "default" {
                doc["spec"]["endpoint"] = json!(moto.endpoint);
            }
            apply_document(&client, "default", &doc, FIELD_MANAGER)
                .await
                .map_err(|e| format!("applying {}: {e}", path.display()))?;
        }
    }
    eprintln!("sandbox: applied {} files from examples/", files.len());

    let operator = Operator::start(bin.as_ref(), &cp, &moto.endpoint, &["--cluster-id", "sandbox"])
        .map_err(|e| error_chain(&e))?;
    eprintln!("sandbox: started the operator (log: {})", operator.log.display());
    wait_until_default_registry_is_ready(&cp).await?;

    let out = cp
        .kubectl()
        .args(["get", "ecr", "-A"])
        .output()
        .map_err(|e| e.to_string())?;
    println!("{}", String::from_utf8_lossy(&out.stdout));
    println!("The sandbox is running. In another shell:");
    println!("  export KUBECONFIG={}", cp.kubeconfig.display());
    println!("  export PATH={}:$PATH   # kubectl v1.34", cp.bin_dir.display());
    println!("  kubectl get ecr -A");
    println!(
        "Local ECR endpoint (moto): {}  (any access key; account 123456789012)",
        moto.endpoint
    );
    println!("Operator log: {}", operator.log.display());
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    eprintln!("\nsandbox: stopping");
    drop(operator);
    Ok(())
}

/// Waits (at most 90 s) until every example object is Ready, except the `shared-eu` Registry,
/// which points at real AWS (unreachable from the sandbox) and says so in its status.
async fn wait_until_default_registry_is_ready(cp: &ControlPlane) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let jsonpath = r#"jsonpath={range .items[*]}{.kind}/{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#;
    loop {
        let out = cp
            .kubectl()
            .args(["get", "ecr", "-A", "-o", jsonpath])
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let relevant: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("Registry/shared-eu="))
            .collect();
        let pending: Vec<&str> = relevant
            .iter()
            .copied()
            .filter(|l| !l.ends_with("=True"))
            .collect();
        if !relevant.is_empty() && pending.is_empty() {
            eprintln!(
                "sandbox: all {} example objects on the local ECR endpoint are Ready\n",
                relevant.len()
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            eprintln!("sandbox: not Ready after 90s: {pending:?} (see the operator log)\n");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
