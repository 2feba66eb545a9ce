//! `cargo xtask sandbox`: the quick start on this machine. It starts the real control plane and
//! the local ECR endpoint (moto), installs the Helm chart with a `default` Registry pointing at
//! moto, runs the operator with the chart ServiceAccount's token, applies `examples/quickstart/`,
//! waits until everything is Ready and prints `kubectl get ecr -A` and the Warning events the
//! operator published (none on this happy path). Then it prints the next step, which works
//! against the sandbox: `kubectl apply -f` of a copy of `examples/` whose Registries use the local
//! endpoint (see [`write_local_examples`]), and stays up until Ctrl-C (or, with `--check`, for
//! scripts, exits at once: non-zero unless the quick start is Ready without Warning events).
//!
//! What outlives it is in its state directory, `~/.cache/ecr-operator/sandbox/` (under
//! `$ECR_OPERATOR_CACHE` or `$XDG_CACHE_HOME` when set): the operator's log and that copy of
//! `examples/`, kept until the next sandbox starts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ecr_operator_testenv::chart::{
    CHART_MADE_EXAMPLE, RELEASE, RELEASE_NAMESPACE, apply_dir, install_chart, operator_warnings,
    prepare_examples, run_output, service_account_kubeconfig, use_local_endpoint, wait_all_ready,
    write_local_examples,
};
use ecr_operator_testenv::{ControlPlane, Moto, Operator, error_chain, repo_root};

const FIELD_MANAGER: &str = "ecr-operator-sandbox";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let state = state_dir();
    let result = match claim(&state) {
        Ok(()) => {
            let result = run(check, &state).await;
            let _ = std::fs::remove_file(state.join("sandbox.pid"));
            result
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox: {e}");
            let log = state.join("operator.log");
            if log.exists() {
                eprintln!("sandbox: the operator log is kept at {}", log.display());
            }
            ExitCode::FAILURE
        }
    }
}

/// `$ECR_OPERATOR_CACHE/sandbox`, by default `~/.cache/ecr-operator/sandbox`: the cache directory
/// the tools are installed into (see `tests/testcluster/build.sh`).
fn state_dir() -> PathBuf {
    let cache = std::env::var_os("ECR_OPERATOR_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("ecr-operator")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ecr-operator")))
        .unwrap_or_else(|| std::env::temp_dir().join("ecr-operator"));
    cache.join("sandbox")
}

/// Makes the state directory this process's: refused while another sandbox runs, since both
/// would write the same log.
fn claim(state: &Path) -> Result<(), String> {
    std::fs::create_dir_all(state).map_err(|e| format!("creating {}: {e}", state.display()))?;
    let pid_file = state.join("sandbox.pid");
    if let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        && pid != std::process::id()
        && Path::new("/proc").join(pid.to_string()).exists()
    {
        return Err(format!(
            "another sandbox (pid {pid}) is running and uses {}; stop it first (Ctrl-C in its shell)",
            state.display()
        ));
    }
    std::fs::write(&pid_file, std::process::id().to_string())
        .map_err(|e| format!("writing {}: {e}", pid_file.display()))
}

async fn run(check: bool, state: &Path) -> Result<(), String> {
    let bin = std::env::var_os("ECR_OPERATOR_BIN")
        .ok_or("ECR_OPERATOR_BIN is not set (run `cargo xtask sandbox`)")?;
    let started = Instant::now();
    eprintln!("sandbox: starting the control plane (kube-apiserver, etcd, kube-controller-manager)");
    let cp = ControlPlane::start().map_err(|e| error_chain(&e))?;
    eprintln!("sandbox: starting the local ECR endpoint (moto)");
    let moto = Moto::start().map_err(|e| error_chain(&e))?;
    // examples/repository-kms-observe.yaml observes a repository made outside the operator.
    prepare_examples(&moto).await.map_err(|e| error_chain(&e))?;

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
    // The log lives in the state directory, not the control plane's (removed at exit).
    let log = state.join("operator.log");
    let mut operator = Operator::start_logging_to(
        bin.as_ref(),
        &kubeconfig,
        &log,
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
    eprintln!("sandbox: started the operator (log: {})", log.display());

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
    let warnings = operator_warnings(&client).await.map_err(|e| error_chain(&e))?;
    if all_ready {
        eprintln!(
            "sandbox: all {} objects are Ready ({:.0}s after start)",
            states.len(),
            started.elapsed().as_secs_f64()
        );
    } else {
        let pending: Vec<_> = states.iter().filter(|s| s.status != "True").collect();
        eprintln!("sandbox: not Ready after 120 s: {pending:?} (see the operator log)");
    }
    if warnings.is_empty() {
        eprintln!("sandbox: no Warning events\n");
    } else {
        eprintln!("sandbox: {} Warning event(s) from the operator:", warnings.len());
        for w in &warnings {
            eprintln!("  {w}");
        }
        eprintln!();
    }
    if check {
        operator.stop();
        let _ = std::fs::remove_file(log.with_extension("pid"));
        eprintln!("sandbox: stopped; the operator log is kept at {}", log.display());
        return match (all_ready, warnings.is_empty()) {
            (true, true) => Ok(()),
            (false, _) => Err("the quick start did not become Ready".into()),
            (true, false) => Err("the operator published Warning events on the quick start".into()),
        };
    }

    let examples = state.join("examples");
    write_local_examples(&examples, &moto.endpoint).map_err(|e| error_chain(&e))?;
    println!("The sandbox is running. In another shell:");
    println!("  export KUBECONFIG={}", cp.kubeconfig.display());
    println!("  export PATH={}:$PATH   # kubectl v1.34", cp.bin_dir.display());
    println!("  kubectl get ecr -A");
    println!("Next, every other example, all Ready a few seconds later:");
    println!("  kubectl apply -f {}/", examples.display());
    println!("  kubectl wait --for=condition=Ready ecr --all -A --timeout=60s");
    println!(
        "That directory holds copies of examples/*.yaml in which each Registry has spec.endpoint set to"
    );
    println!("the local ECR endpoint; examples/ itself is for a real AWS account (Registry shared-eu would");
    println!("call AWS). {CHART_MADE_EXAMPLE} is left out: the chart made Registry default. The local");
    println!("endpoint already holds legacy/batch, the repository repository-kms-observe.yaml observes.");
    println!(
        "Local ECR endpoint (moto): {}  (any access key; account 123456789012)",
        moto.endpoint
    );
    println!("Operator log: {} (kept when the sandbox stops)", log.display());
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    eprintln!("\nsandbox: stopping");
    operator.stop();
    let _ = std::fs::remove_file(log.with_extension("pid"));
    drop(moto);
    drop(cp);
    eprintln!("sandbox: stopped; the operator log is kept at {}", log.display());
    Ok(())
}
