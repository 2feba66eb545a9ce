//! Where the test tools are: the repository, the control-plane binaries, moto's python, helm,
//! the kstatus command, and free ports.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result, io};

/// The repository root: the checkout that is running, found from the `CARGO_MANIFEST_DIR` cargo
/// sets when it runs a test or a binary. The compile-time value is only the fallback: cargo
/// shares build output between checkouts that use one `CARGO_TARGET_DIR` (it hashes paths
/// relative to the workspace), so a cached build may have been compiled in another checkout, whose
/// `crds/` and fixtures would then be used by mistake.
pub fn repo_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    start
        .ancestors()
        .find(|p| p.join("crds").is_dir() && p.join("testenv").is_dir())
        .map_or_else(
            || start.parent().map(Path::to_path_buf).unwrap_or_default(),
            Path::to_path_buf,
        )
}

/// Runs an install/build script of the repository that prints a path as its last stdout line.
fn script_output(script: &str) -> Result<PathBuf> {
    script_output_with(script, &[])
}

/// [`script_output`] with arguments to the script.
fn script_output_with(script: &str, args: &[&str]) -> Result<PathBuf> {
    let path = repo_root().join(script);
    let out = Command::new("bash")
        .arg(&path)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(io(format!("running {script}")))?;
    if !out.status.success() {
        return Err(Error::Setup(format!("{script} failed with {}", out.status)));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().trim();
    if last.is_empty() {
        return Err(Error::Setup(format!("{script} printed no path")));
    }
    Ok(PathBuf::from(last))
}

/// Directory holding `testcluster`, `kubectl`, `kube-apiserver`, ...: `$ECR_OPERATOR_TESTCLUSTER_DIR`
/// or the output of `tests/testcluster/build.sh` (built on first use, then cached).
pub fn testcluster_bin_dir() -> Result<PathBuf> {
    match std::env::var_os("ECR_OPERATOR_TESTCLUSTER_DIR") {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => script_output("tests/testcluster/build.sh"),
    }
}

/// Directory holding `testcluster-node` (the control plane plus the kubelet, kube-scheduler and
/// the node supervisor): `$ECR_OPERATOR_TESTCLUSTER_DIR` when it has that binary, else the
/// output of `tests/testcluster/build.sh --node` (built on first use, then cached).
pub fn testcluster_node_bin_dir() -> Result<PathBuf> {
    match std::env::var_os("ECR_OPERATOR_TESTCLUSTER_DIR").map(PathBuf::from) {
        Some(dir) if dir.join("testcluster-node").exists() => Ok(dir),
        _ => script_output_with("tests/testcluster/build.sh", &["--node"]),
    }
}

/// The node's Debian tools (containerd, runc, CNI plugins, iptables, catatonit):
/// `$ECR_OPERATOR_NODE_TOOLS` or the output of `tests/node/install.sh`.
pub fn node_tools() -> Result<PathBuf> {
    match std::env::var_os("ECR_OPERATOR_NODE_TOOLS") {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => script_output("tests/node/install.sh"),
    }
}

/// The python of moto's virtualenv: `$ECR_OPERATOR_MOTO_PYTHON` or the output of
/// `tests/moto/install.sh`.
pub fn moto_python() -> Result<PathBuf> {
    match std::env::var_os("ECR_OPERATOR_MOTO_PYTHON") {
        Some(p) => Ok(PathBuf::from(p)),
        None => script_output("tests/moto/install.sh"),
    }
}

/// The `helm` binary: `$ECR_OPERATOR_HELM` or the output of `tests/testcluster/helm.sh`.
pub fn helm_bin() -> Result<PathBuf> {
    match std::env::var_os("ECR_OPERATOR_HELM") {
        Some(p) => Ok(PathBuf::from(p)),
        None => script_output("tests/testcluster/helm.sh"),
    }
}

/// The `kstatus` command (the real kstatus library's verdict on objects; see
/// [`crate::gitops::kstatus_verdicts`]): `$ECR_OPERATOR_KSTATUS` or the output of
/// `tests/kstatus/build.sh` (built with Go on first use, then cached).
pub fn kstatus_bin() -> Result<PathBuf> {
    match std::env::var_os("ECR_OPERATOR_KSTATUS") {
        Some(p) => Ok(PathBuf::from(p)),
        None => script_output("tests/kstatus/build.sh"),
    }
}

/// A free TCP port on 127.0.0.1 (small race window between this call and its use; fine for tests).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(l.local_addr().map_err(io("finding a free port"))?.port())
}
