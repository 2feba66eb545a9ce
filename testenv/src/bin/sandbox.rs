//! `cargo xtask sandbox`: the real control plane and the local ECR endpoint, with the CRDs
//! installed and `examples/` applied, running until Ctrl-C.

use std::process::ExitCode;

use ecr_operator_testenv::{ControlPlane, Moto, apply_document, error_chain, repo_root, yaml_documents};
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
    eprintln!("sandbox: starting the control plane (kube-apiserver, etcd, kube-controller-manager)");
    let cp = ControlPlane::start().map_err(|e| error_chain(&e))?;
    eprintln!("sandbox: starting the local ECR endpoint (moto)");
    let moto = Moto::start().map_err(|e| error_chain(&e))?;
    let crds = cp.install_crds().await.map_err(|e| error_chain(&e))?;
    eprintln!("sandbox: installed {} CRDs", crds.len());

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
    eprintln!("sandbox: applied {} files from examples/\n", files.len());

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
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    eprintln!("\nsandbox: stopping");
    Ok(())
}
