//! The control plane: kube-apiserver + etcd + kube-controller-manager as one tethered
//! `testcluster` process, its clients, and the CRDs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};

use crate::TEST_FIELD_MANAGER;
use crate::error::{Error, Result, error_chain, io, kube_err};
use crate::tether::Tethered;
use crate::tools::{node_tools, repo_root, testcluster_bin_dir, testcluster_node_bin_dir};
use crate::yaml::yaml_files;

/// A running control plane. Dropping it stops every component and removes its directory.
pub struct ControlPlane {
    proc: Tethered,
    /// State directory: PKI, kubeconfig, etcd data, component logs.
    pub dir: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// Admin kubeconfig (client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
    /// etcd's client URL, `http://127.0.0.1:<port>` (its v3 JSON gateway is on it too).
    pub etcd: String,
    /// Directory of the `testcluster` binary and its `kubectl`, `kube-apiserver`, ... links.
    pub bin_dir: PathBuf,
    /// The Node, when started with [`ControlPlane::start_with_node`].
    pub node: Option<NodeInfo>,
}

/// The Node of a control plane started with [`ControlPlane::start_with_node`]
/// (tests/testcluster/README.md, "The node").
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The Node's name (`localhost`).
    pub name: String,
    /// Directory of `tests/node/install.sh`: `bin/ctr`, `bin/runc`, ...
    pub tools: PathBuf,
    /// containerd's socket.
    pub containerd: PathBuf,
    /// The Pod network's gateway: a Pod reaches `127.0.0.1:<port>` of the host at
    /// `<pod_gateway>:<port>`.
    pub pod_gateway: String,
}

impl ControlPlane {
    /// Builds (if needed) and starts a control plane with kube-controller-manager, and waits
    /// until it is ready.
    pub fn start() -> Result<Self> {
        Self::start_up(testcluster_bin_dir()?, "testcluster", &["--with-kcm"], 180)
    }

    /// Like [`ControlPlane::start`], plus one Node that really runs Pods: kube-scheduler, and
    /// containerd and the kubelet under `testcluster-node`'s node supervisor (built with
    /// `tests/testcluster/build.sh --node`; the Debian tools from `tests/node/install.sh`).
    /// Returns once the Node is Ready. Needs root.
    pub fn start_with_node() -> Result<Self> {
        let tools = node_tools()?;
        let tools = tools.to_string_lossy().into_owned();
        Self::start_up(
            testcluster_node_bin_dir()?,
            "testcluster-node",
            &["--with-node", "--node-tools", &tools],
            300,
        )
    }

    fn start_up(bin_dir: PathBuf, binary: &str, flags: &[&str], timeout_secs: u64) -> Result<Self> {
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!(
            "ecr-operator-test-{}-{}",
            std::process::id(),
            unique_suffix()
        ));
        std::fs::create_dir_all(&dir).map_err(io("creating the control-plane directory"))?;
        let log = std::fs::File::create(dir.join("up.log")).map_err(io("creating up.log"))?;
        let log2 = log.try_clone().map_err(io("creating up.log"))?;
        let child = Command::new(bin_dir.join(binary))
            .arg("up")
            .args(flags)
            .args(["--exit-on-stdin-eof", "--dir"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io("starting testcluster"))?;
        let mut proc = Tethered::new("testcluster", child);

        let ready = dir.join("ready");
        let deadline = Instant::now() + Duration::from_secs(timeout_secs);
        while !ready.exists() {
            if let Some(why) = proc.exited() {
                return Err(Error::Setup(format!("{why}\n{}", tail_logs(&dir))));
            }
            if Instant::now() > deadline {
                return Err(Error::Setup(format!(
                    "control plane not ready after {timeout_secs}s\n{}",
                    tail_logs(&dir)
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let info = std::fs::read_to_string(&ready).map_err(io("reading the ready file"))?;
        let field = |key: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                .map(str::to_owned)
                .ok_or_else(|| Error::Setup(format!("ready file has no {key}")))
        };
        let node = match field("node") {
            Ok(name) => Some(NodeInfo {
                name,
                tools: PathBuf::from(field("node_tools")?),
                containerd: PathBuf::from(field("containerd")?),
                pod_gateway: field("pod_gateway")?,
            }),
            Err(_) => None,
        };
        Ok(Self {
            server: field("server")?,
            kubeconfig: PathBuf::from(field("kubeconfig")?),
            etcd: field("etcd")?,
            proc,
            dir,
            bin_dir,
            node,
        })
    }

    /// `ctr` against the Node's containerd, in the namespace the kubelet uses (`k8s.io`).
    pub fn ctr(&self) -> Result<Command> {
        let node = self
            .node
            .as_ref()
            .ok_or_else(|| Error::Setup("this control plane has no node".into()))?;
        let mut cmd = Command::new(node.tools.join("bin/ctr"));
        cmd.arg("--address").arg(&node.containerd).args(["-n", "k8s.io"]);
        Ok(cmd)
    }

    /// Imports an OCI archive into the Node's containerd without a registry, naming the image
    /// `<base_name>:<the archive's org.opencontainers.image.ref.name>`; returns ctr's output.
    pub fn import_image(&self, archive: &Path, base_name: &str) -> Result<String> {
        let out = self
            .ctr()?
            .args(["images", "import", "--base-name", base_name])
            .arg(archive)
            .output()
            .map_err(io("running ctr images import"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(Error::Setup(format!(
                "ctr images import failed ({}): {text}",
                out.status
            )))
        }
    }

    /// Restarts kube-apiserver (same port and certificates; etcd keeps running with its data)
    /// and waits until it is ready again. Returns how long it was gone.
    pub fn restart_apiserver(&mut self) -> Result<Duration> {
        let up_log = self.dir.join("up.log");
        let restarts = || {
            std::fs::read_to_string(&up_log)
                .unwrap_or_default()
                .matches("RESTARTED")
                .count()
        };
        let before = restarts();
        let start = Instant::now();
        let status = Command::new("kill")
            .args(["-USR1", &self.proc.child.id().to_string()])
            .status()
            .map_err(io("signalling testcluster"))?;
        if !status.success() {
            return Err(Error::Setup(format!("kill -USR1 failed: {status}")));
        }
        while restarts() == before {
            if let Some(why) = self.proc.exited() {
                return Err(Error::Setup(format!("{why}\n{}", tail_logs(&self.dir))));
            }
            if start.elapsed() > Duration::from_secs(150) {
                return Err(Error::Setup(format!(
                    "kube-apiserver did not come back\n{}",
                    tail_logs(&self.dir)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(start.elapsed())
    }

    /// The last lines of every component log, for failure messages.
    pub fn logs(&self) -> String {
        tail_logs(&self.dir)
    }

    /// Whether the control plane is still running.
    pub fn is_running(&mut self) -> bool {
        self.proc.exited().is_none()
    }

    /// The admin client configuration.
    pub async fn config(&self) -> Result<kube::Config> {
        let kc = Kubeconfig::read_from(&self.kubeconfig)
            .map_err(|e| Error::Setup(format!("reading {}: {e}", self.kubeconfig.display())))?;
        kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Setup(format!("loading {}: {e}", self.kubeconfig.display())))
    }

    /// An admin client (`system:masters`). Build one per test: a client is bound to the tokio
    /// runtime it was first used on.
    pub async fn client(&self) -> Result<kube::Client> {
        kube::Client::try_from(self.config().await?).map_err(kube_err("building the admin client"))
    }

    /// A bound token (TokenRequest, 1 h) for ServiceAccount `namespace/name`.
    pub async fn service_account_token(&self, namespace: &str, name: &str) -> Result<String> {
        let admin = self.client().await?;
        let sas: Api<ServiceAccount> = Api::namespaced(admin, namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let issued = sas
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .map_err(kube_err(format!("requesting a token for {namespace}/{name}")))?;
        issued
            .status
            .map(|s| s.token)
            .ok_or_else(|| Error::Setup("TokenRequest returned no status".into()))
    }

    /// A client that authenticates as ServiceAccount `namespace/name` with a bound token from the
    /// TokenRequest API, so RBAC applies exactly as it would to a Pod using that account.
    pub async fn client_as_service_account(&self, namespace: &str, name: &str) -> Result<kube::Client> {
        let token = self.service_account_token(namespace, name).await?;
        let mut cfg = self.config().await?;
        cfg.auth_info = AuthInfo {
            token: Some(token.into()),
            ..Default::default()
        };
        kube::Client::try_from(cfg).map_err(kube_err("building a ServiceAccount client"))
    }

    /// `kubectl` against this control plane (admin kubeconfig).
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("kubectl"));
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// Applies the committed `crds/*.yaml` (server-side apply) and waits until each is Established.
    pub async fn install_crds(&self) -> Result<Vec<String>> {
        let client = self.client().await?;
        install_crds(&client, &repo_root().join("crds")).await
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.proc.stop();
        if std::env::var_os("ECR_OPERATOR_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Applies every `*.yaml` CRD in `dir` with server-side apply and waits until each is Established.
pub async fn install_crds(client: &kube::Client, dir: &Path) -> Result<Vec<String>> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for path in yaml_files(dir)? {
        let text = std::fs::read_to_string(&path).map_err(io(format!("reading {}", path.display())))?;
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&text)
            .map_err(|e| Error::Setup(format!("{} is not a CRD: {e}", path.display())))?;
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply(TEST_FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .map_err(kube_err(format!("applying CRD {name}")))?;
        names.push(name);
    }
    for name in &names {
        tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(api.clone(), name, conditions::is_crd_established()),
        )
        .await
        .map_err(|_| Error::Setup(format!("CRD {name} not Established after 60s")))?
        .map_err(|e| Error::Setup(format!("waiting for CRD {name}: {e}")))?;
    }
    Ok(names)
}

/// One control plane per test process, started on first use with the CRDs of `crds/`
/// installed. It stops when the process exits (its stdin pipe closes).
pub fn shared_control_plane() -> Result<&'static ControlPlane, String> {
    static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let cp = ControlPlane::start().map_err(|e| error_chain(&e))?;
            // A dedicated runtime on its own thread: clients are bound to the runtime that made
            // them, and a runtime cannot be dropped inside the caller's async context.
            std::thread::scope(|s| {
                s.spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    rt.block_on(cp.install_crds())
                        .map_err(|e| format!("{}\n{}", error_chain(&e), cp.logs()))
                })
                .join()
                .map_err(|_| "installing CRDs panicked".to_owned())?
            })?;
            Ok(cp)
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Removes control-plane directories left by test processes that no longer run.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("ecr-operator-test-")
            .and_then(|r| r.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn tail_logs(dir: &Path) -> String {
    let mut out = String::new();
    for name in [
        "up.log",
        "kube-apiserver.log",
        "kube-controller-manager.log",
        "etcd.log",
        "kube-scheduler.log",
        "node.log",
        "containerd.log",
        "kubelet.log",
    ] {
        let Ok(text) = std::fs::read_to_string(dir.join(name)) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(20);
        out.push_str(&format!("--- {name} (last {} lines)\n", lines.len() - start));
        for l in &lines[start..] {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}
