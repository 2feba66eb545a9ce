//! The real components ecr-operator's tests and sandbox run against:
//!
//! - [`ControlPlane`]: kube-apiserver + etcd + kube-controller-manager (garbage-collector,
//!   namespace, serviceaccount, serviceaccount-token and clusterrole-aggregation controllers),
//!   built from the Kubernetes Go modules by `tests/testcluster/build.sh`, RBAC on, on free
//!   127.0.0.1 ports with generated PKI and an admin kubeconfig.
//! - [`Moto`]: moto's server (the local ECR endpoint), pinned in `tests/moto/requirements.txt`
//!   and installed into a cached virtualenv by `tests/moto/install.sh`.
//!
//! Both run as child processes whose standard input is a pipe held by this process: when the
//! test process ends, however it ends (panic, abort, SIGKILL), the pipe closes and the children
//! shut themselves down, so no stray server outlives a test run.

pub mod chart;
pub mod gitops;
mod operator;
mod proxy;

pub use operator::Operator;
pub use proxy::{Call, Fault, FaultPlan, FaultProxy, is_write};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::Value;

/// Field manager for everything the test harness writes, so it never takes ownership of fields
/// the operator's own managers hold.
pub const TEST_FIELD_MANAGER: &str = "ecr-operator-test";

/// A test-environment failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Setup(String),
    #[error("I/O error while {action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Kubernetes call failed while {action}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let action = action.into();
    move |source| Error::Io { action, source }
}

fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Runs an install/build script of the repository that prints a path as its last stdout line.
fn script_output(script: &str) -> Result<PathBuf> {
    let path = repo_root().join(script);
    let out = Command::new("bash")
        .arg(&path)
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

/// A free TCP port on 127.0.0.1 (small race window between this call and its use; fine for tests).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(l.local_addr().map_err(io("finding a free port"))?.port())
}

/// A child process that shuts itself down when its stdin closes.
struct Tethered {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
}

/// Waits up to 20 s for `child` to exit by itself, then calls `kill` and reaps it.
pub(crate) fn wait_or_kill(child: &mut Child, kill: impl FnOnce(&mut Child)) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    kill(child);
    let _ = child.wait();
}

/// The `*.yaml` files of a directory, sorted.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(format!("reading {}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

impl Tethered {
    fn stop(&mut self) {
        drop(self.stdin.take());
        wait_or_kill(&mut self.child, |c| {
            let _ = c.kill();
        });
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited with {status}", self.name)),
            Ok(None) => None,
            Err(e) => Some(format!("{}: {e}", self.name)),
        }
    }
}

impl Drop for Tethered {
    fn drop(&mut self) {
        self.stop();
    }
}

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
}

impl ControlPlane {
    /// Builds (if needed) and starts a control plane with kube-controller-manager, and waits
    /// until it is ready.
    pub fn start() -> Result<Self> {
        let bin_dir = testcluster_bin_dir()?;
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!(
            "ecr-operator-test-{}-{}",
            std::process::id(),
            unique_suffix()
        ));
        std::fs::create_dir_all(&dir).map_err(io("creating the control-plane directory"))?;
        let log = std::fs::File::create(dir.join("up.log")).map_err(io("creating up.log"))?;
        let log2 = log.try_clone().map_err(io("creating up.log"))?;
        let mut child = Command::new(bin_dir.join("testcluster"))
            .args(["up", "--with-kcm", "--exit-on-stdin-eof", "--dir"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io("starting testcluster"))?;
        let stdin = child.stdin.take();
        let mut proc = Tethered {
            name: "testcluster",
            child,
            stdin,
        };

        let ready = dir.join("ready");
        let deadline = Instant::now() + Duration::from_secs(180);
        while !ready.exists() {
            if let Some(why) = proc.exited() {
                return Err(Error::Setup(format!("{why}\n{}", tail_logs(&dir))));
            }
            if Instant::now() > deadline {
                return Err(Error::Setup(format!(
                    "control plane not ready after 180s\n{}",
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
        Ok(Self {
            server: field("server")?,
            kubeconfig: PathBuf::from(field("kubeconfig")?),
            etcd: field("etcd")?,
            proc,
            dir,
            bin_dir,
        })
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

    /// Compacts etcd's history up to its current revision (physically), as etcd's periodic
    /// compaction does, so a watch from an older resourceVersion can only be answered with
    /// 410 Gone. Returns the revision.
    pub fn compact_etcd(&self) -> Result<u64> {
        let range = etcd_post(&self.etcd, "/v3/kv/range", r#"{"key":"AA==","limit":1}"#)?;
        let revision: u64 = range["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| Error::Setup(format!("no revision in {range}")))?;
        etcd_post(
            &self.etcd,
            "/v3/kv/compaction",
            &format!(r#"{{"revision":"{revision}","physical":true}}"#),
        )?;
        Ok(revision)
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

/// Server-side applies one document (any kind the server knows) under `field_manager`;
/// namespaced objects go to `namespace`. Returns what the server stored.
pub async fn apply_document(
    client: &kube::Client,
    namespace: &str,
    doc: &Value,
    field_manager: &str,
) -> Result<DynamicObject, kube::Error> {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, doc["kind"].as_str().unwrap_or_default());
    let (resource, caps) = pinned_kind(client, &gvk).await?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), namespace, &resource),
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    api.patch(
        name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(doc),
    )
    .await
}

/// The non-empty documents of a multi-document YAML text.
pub fn yaml_documents(text: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            if current
                .lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            {
                docs.push(
                    serde_saphyr::from_str(&current)
                        .map_err(|e| Error::Setup(format!("invalid YAML document: {e}")))?,
                );
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    Ok(docs)
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

/// A running moto server on 127.0.0.1. Dropping it stops the server.
pub struct Moto {
    proc: Tethered,
    /// Its TCP port.
    pub port: u16,
    /// `http://127.0.0.1:<port>`: the endpoint URL for aws-sdk-ecr and `Registry.spec.endpoint`.
    pub endpoint: String,
}

impl Moto {
    /// Installs (if needed) and starts moto's server on a free port, and waits until it answers.
    pub fn start() -> Result<Self> {
        let python = moto_python()?;
        let port = free_port()?;
        let mut child = Command::new(python)
            .arg(repo_root().join("tests/moto/server.py"))
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("starting moto"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let mut proc = Tethered {
            name: "moto",
            child,
            stdin,
        };
        if let Some(out) = stdout {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            if !line.starts_with("READY") {
                let why = proc.exited().unwrap_or_else(|| format!("moto printed {line:?}"));
                return Err(Error::Setup(why));
            }
        }
        let moto = Self {
            proc,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match moto.http("GET", "/moto-api/") {
                Ok(200) => return Ok(moto),
                _ if Instant::now() > deadline => {
                    return Err(Error::Setup("moto did not answer /moto-api/ within 30s".into()));
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Wipes every account's and region's state.
    pub fn reset(&self) -> Result<()> {
        match self.http("POST", "/moto-api/reset")? {
            200 => Ok(()),
            code => Err(Error::Setup(format!("moto reset answered HTTP {code}"))),
        }
    }

    /// Whether the server is still running.
    pub fn is_running(&mut self) -> bool {
        self.proc.exited().is_none()
    }

    /// A plain HTTP/1.1 request without a body; returns the status code.
    fn http(&self, method: &str, path: &str) -> Result<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(io("connecting to moto"))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(io("configuring the moto socket"))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(io("writing to moto"))?;
        let mut head = String::new();
        s.read_to_string(&mut head).map_err(io("reading from moto"))?;
        head.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| Error::Setup(format!("moto sent no HTTP status: {head:.80}")))
    }

    /// An aws-sdk-ecr client for this server, with static test credentials (moto routes requests
    /// by their SigV4 signature, so they must be signed) and the given region.
    pub fn ecr_client(&self, region: &str) -> aws_sdk_ecr::Client {
        use aws_sdk_ecr::config::{BehaviorVersion, Credentials, Region};
        let conf = aws_sdk_ecr::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "ecr-operator-testenv",
            ))
            .build();
        aws_sdk_ecr::Client::from_conf(conf)
    }
}

/// The error and its sources joined with ": ".
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A POST to etcd's v3 JSON gateway; the parsed answer.
fn etcd_post(base: &str, path: &str, body: &str) -> Result<Value> {
    let host = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).map_err(io("connecting to etcd"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io("configuring the etcd connection"))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(io("writing to etcd"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(io("reading from etcd"))?;
    let (head, payload) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.1 200") {
        return Err(Error::Setup(format!("etcd {path}: {head}\n{payload}")));
    }
    // The gateway may answer chunked; the JSON object is between the first '{' and the last '}'.
    let json = payload
        .find('{')
        .and_then(|a| payload.rfind('}').map(|b| &payload[a..=b]))
        .unwrap_or(payload);
    serde_json::from_str(json).map_err(|e| Error::Setup(format!("etcd {path}: {e}: {payload}")))
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
