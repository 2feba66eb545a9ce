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
/// `--set` values. On a control plane without a node nothing runs the Deployment: the operator is
/// started as a process with the chart ServiceAccount's token instead, see
/// [`service_account_kubeconfig`] (`tests/node/` installs the chart on a real node).
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

/// The example the chart's `defaultRegistry` stands in for after [`install_chart`] with
/// `defaultRegistry.create=true`: [`write_local_examples`] leaves it out.
pub const CHART_MADE_EXAMPLE: &str = "registry-default.yaml";

/// What the sandbox tells the user to apply after the quick start: `out_dir` receives a copy of
/// every `examples/*.yaml` but [`CHART_MADE_EXAMPLE`] (and not the quick start, which is already
/// applied) in which each Registry gets one line, `spec.endpoint: <endpoint>`, and nothing else
/// changes, comments included. The committed examples are for a real AWS account; with these
/// copies, and the repository [`prepare_examples`] creates, every object becomes Ready against the
/// local endpoint, and `kubectl apply -f` of them prints nothing but what it created. (Applied
/// over the chart's `default` Registry, `registry-default.yaml` would make kubectl warn that the
/// object lacks its last-applied annotation.) Earlier `*.yaml` files in `out_dir` are removed.
/// Returns the files written.
pub fn write_local_examples(out_dir: &Path, endpoint: &str) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir).map_err(io(format!("creating {}", out_dir.display())))?;
    for old in yaml_files(out_dir)? {
        std::fs::remove_file(&old).map_err(io(format!("removing {}", old.display())))?;
    }
    let mut written = Vec::new();
    for path in yaml_files(&repo_root().join("examples"))? {
        let Some(name) = path.file_name() else {
            continue;
        };
        if name == CHART_MADE_EXAMPLE {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(io(format!("reading {}", path.display())))?;
        let edited = add_registry_endpoint(&text, endpoint)
            .map_err(|e| Error::Setup(format!("{}: {e}", path.display())))?;
        // The copy must mean exactly what the example means with the endpoint set.
        let mut expected = yaml_documents(&text)?;
        expected.iter_mut().for_each(use_local_endpoint(endpoint));
        if yaml_documents(&edited)? != expected {
            return Err(Error::Setup(format!(
                "{}: adding spec.endpoint to its Registries changed more than that",
                path.display()
            )));
        }
        // Numbered so that `kubectl apply -f <dir>/`, which goes in file-name order, applies what
        // is named before what names it (a LifecyclePolicy naming a Repository applied first
        // would rightly warn that the Repository does not exist, until it does).
        let out = out_dir.join(format!(
            "{}-{}",
            apply_rank(&name.to_string_lossy()),
            name.to_string_lossy()
        ));
        std::fs::write(&out, edited).map_err(io(format!("writing {}", out.display())))?;
        written.push(out);
    }
    written.sort();
    Ok(written)
}

/// The apply order of an example by the kind its file name starts with: what is named comes
/// before what names it.
fn apply_rank(file_name: &str) -> u8 {
    const ORDER: [&str; 9] = [
        "registry",
        "repository",
        "replicationrule",
        "lifecyclepolicy",
        "pullsecret",
        "clusterpullsecret",
        "pullthroughcacherule",
        "repositorycreationtemplate",
        "publicrepository",
    ];
    let kind = file_name.split('-').next().unwrap_or_default();
    ORDER
        .iter()
        .position(|k| *k == kind)
        .and_then(|i| u8::try_from(10 * (i + 1)).ok())
        .unwrap_or(90)
}

/// Adds `  endpoint: <endpoint>` right after the top-level `spec:` line of every Registry
/// document of a YAML text (documents separated by `---` lines).
fn add_registry_endpoint(text: &str, endpoint: &str) -> std::result::Result<String, String> {
    let mut out = String::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, doc) in lines.split(|l| *l == "---").enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let registry = doc.iter().any(|l| l.trim_end() == "kind: Registry");
        let mut added = false;
        for line in doc {
            out.push_str(line);
            out.push('\n');
            if registry && !added && line.trim_end() == "spec:" {
                out.push_str(&format!(
                    "  endpoint: {endpoint}  # the sandbox's local ECR endpoint (this line is not in examples/)\n"
                ));
                added = true;
            }
        }
        if registry && !added {
            return Err("a Registry without a block `spec:` line".into());
        }
    }
    Ok(out)
}

/// The Warning events the operator published (its controllers report as
/// `ecr-operator.dev/<name>-controller`), as `Kind namespace/name Reason: note`, oldest first.
/// The quick start's happy path has none.
pub async fn operator_warnings(client: &kube::Client) -> Result<Vec<String>> {
    use k8s_openapi::api::events::v1::Event;
    let events = kube::Api::<Event>::all(client.clone())
        .list(&Default::default())
        .await
        .map_err(crate::kube_err("listing events"))?;
    let mut warnings: Vec<_> = events
        .items
        .into_iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.reporting_controller
                    .as_deref()
                    .is_some_and(|c| c.starts_with("ecr-operator.dev/"))
        })
        .map(|e| {
            let regarding = e.regarding.unwrap_or_default();
            let object = match regarding.namespace.as_deref() {
                Some(ns) if !ns.is_empty() => format!("{ns}/{}", regarding.name.unwrap_or_default()),
                _ => regarding.name.unwrap_or_default(),
            };
            (
                e.event_time.map(|t| t.0.to_string()).unwrap_or_default(),
                format!(
                    "{} {object} {}: {}",
                    regarding.kind.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default()
                ),
            )
        })
        .collect();
    warnings.sort();
    Ok(warnings.into_iter().map(|(_, w)| w).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_gets_the_endpoint_line_and_nothing_else_changes() {
        let text = "# a comment\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: spec\n---\n# the Registry\napiVersion: ecr-operator.dev/v1alpha1\nkind: Registry\nmetadata:\n  name: r\nspec:\n  region: us-east-1\n";
        let edited = add_registry_endpoint(text, "http://127.0.0.1:5000").unwrap();
        assert_eq!(
            edited,
            "# a comment\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: spec\n---\n# the Registry\napiVersion: ecr-operator.dev/v1alpha1\nkind: Registry\nmetadata:\n  name: r\nspec:\n  endpoint: http://127.0.0.1:5000  # the sandbox's local ECR endpoint (this line is not in examples/)\n  region: us-east-1\n"
        );
        assert!(add_registry_endpoint("kind: Registry\nspec: {region: x}\n", "e").is_err());
    }

    #[test]
    fn every_example_is_copied_with_its_registries_on_the_local_endpoint() {
        let dir = std::env::temp_dir().join(format!("ecr-operator-local-examples-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("stale.yaml"), "kind: Stale\n").unwrap();
        let written = write_local_examples(&dir, "http://127.0.0.1:5000").unwrap();
        let examples = yaml_files(&repo_root().join("examples")).unwrap();
        assert_eq!(written.len(), examples.len() - 1, "all but {CHART_MADE_EXAMPLE}");
        assert!(!written.iter().any(|p| p.ends_with(CHART_MADE_EXAMPLE)));
        assert_eq!(yaml_files(&dir).unwrap(), written, "the stale file is gone");
        // kubectl applies in file-name order: what is named comes before what names it.
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let first = |kind: &str| {
            names
                .iter()
                .position(|n| n.contains(&format!("-{kind}-")))
                .unwrap()
        };
        let last = |kind: &str| {
            names
                .iter()
                .rposition(|n| n.contains(&format!("-{kind}-")))
                .unwrap()
        };
        assert!(last("repository") < first("lifecyclepolicy"), "{names:?}");
        assert!(last("registry") < first("repository"), "{names:?}");
        let mut registries = 0;
        for path in &written {
            let text = std::fs::read_to_string(path).unwrap();
            for doc in yaml_documents(&text).unwrap() {
                if doc["kind"] == "Registry" {
                    assert_eq!(
                        doc["spec"]["endpoint"],
                        "http://127.0.0.1:5000",
                        "{}",
                        path.display()
                    );
                    registries += 1;
                }
            }
        }
        assert!(
            registries >= 1,
            "the multi-tenant Registry is on the local endpoint"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
