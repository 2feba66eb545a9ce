//! The Helm chart installed into a [`ControlPlane`], and the operator run with the chart's own
//! ServiceAccount: what the chart test and `cargo xtask sandbox` share.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kube::config::{AuthInfo, Kubeconfig};
use serde_json::Value;

use crate::{
    ControlPlane, Error, Result, apply_document, helm_bin, io, kube_err, repo_root, yaml_documents,
    yaml_files,
};

/// The release name the tests and the sandbox install.
pub const RELEASE: &str = "ecr-operator";
/// The namespace they install it into.
pub const RELEASE_NAMESPACE: &str = "ecr-system";

/// `helm` against this control plane.
pub fn helm(cp: &ControlPlane) -> Result<Command> {
    let mut cmd = Command::new(helm_bin()?);
    cmd.env("KUBECONFIG", &cp.kubeconfig)
        // Keep Helm's cache and config out of the user's home.
        .env("HELM_CACHE_HOME", cp.dir.join("helm/cache"))
        .env("HELM_CONFIG_HOME", cp.dir.join("helm/config"))
        .env("HELM_DATA_HOME", cp.dir.join("helm/data"));
    Ok(cmd)
}

/// Runs a command to completion; its combined output on success, an error with it otherwise.
pub fn run_output(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.output().map_err(io(format!("running {what}")))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(Error::Setup(format!("{what} failed ({}):\n{text}", out.status)))
    }
}

/// `helm install` of `charts/ecr-operator` as [`RELEASE`] into [`RELEASE_NAMESPACE`] with
/// `--set` values. Nothing runs the Deployment (there is no kubelet): the operator is started as
/// a process with the chart ServiceAccount's token instead, see [`service_account_kubeconfig`].
pub fn install_chart(cp: &ControlPlane, values: &[(&str, &str)]) -> Result<String> {
    let mut cmd = helm(cp)?;
    cmd.args(["install", RELEASE])
        .arg(repo_root().join("charts/ecr-operator"))
        .args(["--namespace", RELEASE_NAMESPACE, "--create-namespace"]);
    for (k, v) in values {
        cmd.args(["--set", &format!("{k}={v}")]);
    }
    run_output(&mut cmd, "helm install")
}

/// A kubeconfig file that authenticates as ServiceAccount `namespace/name` with a bound token
/// (TokenRequest, 1 h), so a process using it gets exactly that account's RBAC.
pub async fn service_account_kubeconfig(cp: &ControlPlane, namespace: &str, name: &str) -> Result<PathBuf> {
    let token = cp.service_account_token(namespace, name).await?;
    let mut kc = Kubeconfig::read_from(&cp.kubeconfig)
        .map_err(|e| Error::Setup(format!("reading {}: {e}", cp.kubeconfig.display())))?;
    for named in &mut kc.auth_infos {
        named.auth_info = Some(AuthInfo {
            token: Some(token.clone().into()),
            ..Default::default()
        });
    }
    // JSON is YAML: kubectl, Helm and kube-rs all read it.
    let json =
        serde_json::to_vec_pretty(&kc).map_err(|e| Error::Setup(format!("writing a kubeconfig: {e}")))?;
    let path = cp.dir.join(format!("sa-{namespace}-{name}.kubeconfig"));
    std::fs::write(&path, json).map_err(io("writing the ServiceAccount kubeconfig"))?;
    Ok(path)
}

/// Applies every YAML file of `dir` (sorted), changing each document with `edit` first.
/// Returns `Kind/name` of what was applied.
pub async fn apply_dir(
    client: &kube::Client,
    dir: &Path,
    namespace: &str,
    field_manager: &str,
    mut edit: impl FnMut(&mut Value),
) -> Result<Vec<String>> {
    let mut applied = Vec::new();
    for path in yaml_files(dir)? {
        let text = std::fs::read_to_string(&path).map_err(io(format!("reading {}", path.display())))?;
        for mut doc in yaml_documents(&text)? {
            edit(&mut doc);
            let ns = doc["metadata"]["namespace"]
                .as_str()
                .unwrap_or(namespace)
                .to_owned();
            apply_document(client, &ns, &doc, field_manager)
                .await
                .map_err(kube_err(format!("applying {}", path.display())))?;
            applied.push(format!(
                "{}/{}",
                doc["kind"].as_str().unwrap_or_default(),
                doc["metadata"]["name"].as_str().unwrap_or_default()
            ));
        }
    }
    Ok(applied)
}

/// One object of `kubectl get ecr -A`: `Kind/namespace/name` and its Ready condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyState {
    pub object: String,
    /// `True`, `False`, `Unknown`, or empty before the first status.
    pub status: String,
    pub reason: String,
}

/// The Ready condition of every object in the `ecr` category.
pub fn ready_states(cp: &ControlPlane) -> Result<Vec<ReadyState>> {
    let jsonpath = r#"jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}|{.status.conditions[?(@.type=="Ready")].status}|{.status.conditions[?(@.type=="Ready")].reason}{"\n"}{end}"#;
    let text = run_output(
        cp.kubectl().args(["get", "ecr", "-A", "-o", jsonpath]),
        "kubectl get ecr",
    )?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split('|');
            Some(ReadyState {
                object: parts.next()?.replace("//", "/"),
                status: parts.next().unwrap_or_default().to_owned(),
                reason: parts.next().unwrap_or_default().to_owned(),
            })
        })
        .collect())
}

/// Waits (at most `timeout`) until every object in the `ecr` category is Ready; returns the
/// last states either way, and whether all were Ready.
pub async fn wait_all_ready(cp: &ControlPlane, timeout: Duration) -> Result<(bool, Vec<ReadyState>)> {
    let deadline = Instant::now() + timeout;
    loop {
        let states = ready_states(cp)?;
        let ready = !states.is_empty() && states.iter().all(|s| s.status == "True");
        if ready || Instant::now() > deadline {
            return Ok((ready, states));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Prepares the local ECR endpoint for `examples/`: `repository-kms-observe.yaml` observes a
/// KMS-encrypted repository that was created outside the operator.
pub async fn prepare_examples(moto: &crate::Moto) -> Result<()> {
    let kms = aws_sdk_ecr::types::EncryptionConfiguration::builder()
        .encryption_type(aws_sdk_ecr::types::EncryptionType::Kms)
        .build()
        .map_err(|e| Error::Setup(e.to_string()))?;
    moto.ecr_client("us-east-1")
        .create_repository()
        .repository_name("legacy/batch")
        .encryption_configuration(kms)
        .send()
        .await
        .map_err(|e| Error::Setup(format!("creating legacy/batch in the local ECR: {e}")))?;
    Ok(())
}

/// Points every Registry of the examples at the local ECR endpoint instead of AWS.
pub fn use_local_endpoint(endpoint: &str) -> impl FnMut(&mut Value) + '_ {
    move |doc: &mut Value| {
        if doc["kind"] == "Registry" {
            doc["spec"]["endpoint"] = Value::String(endpoint.to_owned());
        }
    }
}
