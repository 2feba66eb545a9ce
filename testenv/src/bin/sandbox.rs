//! `cargo xtask sandbox`: the quick start on this machine. It starts the real control plane and
//! the local ECR endpoint (moto), installs the Helm chart with a `default` Registry pointing at
//! moto, runs the operator with the chart ServiceAccount's token, applies `examples/quickstart/`,
//! waits until everything is Ready and prints `kubectl get ecr -A`. Then it stays up until
//! Ctrl-C (or exits at once with `--check`, for scripts).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ecr_operator_testenv::chart::{
    RELEASE, RELEASE_NAMESPACE, apply_dir, install_chart, run_output, service_account_kubeconfig,
    use_local_endpoint, wait_all_ready,
};
use ecr_operator_testenv::{ControlPlane, Moto, Operator, error_chain, repo_root};

const FIELD_MANAGER: &str = "ecr-operator-sandbox";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    match run(check).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(check: bool) -> Result<(), String> {
    let bin = std::env::var_os("ECR_OPERATOR_BIN")
        .ok_or("ECR_OPERATOR_BIN is not set (run `cargo xtask sandbox`)")?;
    let started = Instant::now();
    eprintln!("sandbox: starting the control plane (kube-apiserver, etcd, kube-controller-manager)");
    let cp = ControlPlane::start().map_err(|e| error_chain(&e))?;
    eprintln!("sandbox: starting the local ECR endpoint (moto)");
    let moto = Moto::start().map_err(|e| error_chain(&e))?;

    eprintln!("sandbox: helm install {RELEASE} charts/ecr-operator (CRDs, RBAC, a default Registry on moto)");
    install_chart(
        &cp,
        &[
            ("defaultRegistry.create", "true"),
            ("defaultRegistry.spec.endpoint", &moto.endpoint),
        ],
    )
    .map_err(|e| error_chain(&e))?;
    // No kubelet runs the chart's Deployment: the operator runs here, as the chart's
    // ServiceAccount (its own token, its own RBAC), exactly as the Pod would.
    let kubeconfig = service_account_kubeconfig(&cp, RELEASE_NAMESPACE, RELEASE)
        .await
        .map_err(|e| error_chain(&e))?;
    let operator = Operator::start_with_kubeconfig(
        bin.as_ref(),
        &kubeconfig,
        &cp.dir,
        &moto.endpoint,
        &[
            "--cluster-id",
            "sandbox",
            "--leader-elect",
            "--lease-name",
            "ecr-operator-leader",
            "--lease-namespace",
            RELEASE_NAMESPACE,
        ],
    )
    .map_err(|e| error_chain(&e))?;
    eprintln!("sandbox: started the operator (log: {})", operator.log.display());

    let client = cp.client().await.map_err(|e| error_chain(&e))?;
    let applied = apply_dir(
        &client,
        &repo_root().join("examples/quickstart"),
        "default",
        FIELD_MANAGER,
        use_local_endpoint(&moto.endpoint),
    )
    .await
    .map_err(|e| error_chain(&e))?;
    eprintln!(
        "sandbox: applied examples/quickstart/ ({} objects)",
        applied.len()
    );

    let (all_ready, states) = wait_all_ready(&cp, Duration::from_secs(120))
        .await
        .map_err(|e| error_chain(&e))?;
    let table = run_output(cp.kubectl().args(["get", "ecr", "-A"]), "kubectl get ecr -A")
        .map_err(|e| error_chain(&e))?;
    println!("\n$ kubectl get ecr -A\n{table}");
    if all_ready {
        eprintln!(
            "sandbox: all {} objects are Ready ({:.0}s after start)\n",
            states.len(),
            started.elapsed().as_secs_f64()
        );
    } else {
        let pending: Vec<_> = states.iter().filter(|s| s.status != "True").collect();
        eprintln!("sandbox: not Ready after 120 s: {pending:?} (see the operator log)\n");
    }
    if check {
        return if all_ready {
            Ok(())
        } else {
            Err("the quick start did not become Ready".into())
        };
    }
    println!("The sandbox is running. In another shell:");
    println!("  export KUBECONFIG={}", cp.kubeconfig.display());
    println!("  export PATH={}:$PATH   # kubectl v1.34", cp.bin_dir.display());
    println!("  kubectl get ecr -A");
    println!("  kubectl apply -f examples/          # every other example");
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
