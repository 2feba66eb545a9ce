//! The operator binary as a real process against the test control plane.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::{ControlPlane, Error, Result};

/// Where the operator process's default AWS credential chain finds its credentials (what a
/// Registry without `spec.auth` uses).
#[derive(Clone, Debug, Default)]
pub enum AwsIdentity {
    /// Static test keys in `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    #[default]
    StaticKeys,
    /// IRSA: what the EKS Pod Identity webhook injects, `AWS_ROLE_ARN` and
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` (a projected ServiceAccount token with audience
    /// `sts.amazonaws.com`); the SDK exchanges it with STS `AssumeRoleWithWebIdentity`.
    WebIdentity { role_arn: String, token_file: PathBuf },
    /// EKS Pod Identity: `AWS_CONTAINER_CREDENTIALS_FULL_URI` (the agent's endpoint) and
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (a projected ServiceAccount token the SDK sends as
    /// the `Authorization` header).
    ContainerCredentials { full_uri: String, token_file: PathBuf },
}

/// A running `ecr-operator run`. It is stopped (SIGTERM, then SIGKILL after 20 s) when dropped,
/// and also when this test process dies: a small shell wrapper kills it once its stdin closes.
pub struct Operator {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The operator's log file.
    pub log: PathBuf,
    /// The loopback port of /metrics, /healthz and /readyz.
    pub http_port: u16,
    pid_file: PathBuf,
}

impl Operator {
    /// Starts `bin run <args>` with the admin kubeconfig, static test AWS credentials, and
    /// `sts_endpoint` for GetCallerIdentity.
    pub fn start(bin: &Path, cp: &ControlPlane, sts_endpoint: &str, args: &[&str]) -> Result<Self> {
        Self::start_with_kubeconfig(bin, &cp.kubeconfig, &cp.dir, sts_endpoint, args)
    }

    /// Like [`Operator::start`], with `identity` instead of static keys in the environment.
    pub fn start_as(
        bin: &Path,
        cp: &ControlPlane,
        sts_endpoint: &str,
        args: &[&str],
        identity: &AwsIdentity,
    ) -> Result<Self> {
        let n = next_log();
        let log = cp.dir.join(format!("operator-{n}.log"));
        Self::spawn(bin, &cp.kubeconfig, &log, sts_endpoint, args, identity)
    }

    /// Like [`Operator::start`] with another kubeconfig (e.g. a ServiceAccount's); the log is
    /// `operator-<n>.log` in `dir`.
    pub fn start_with_kubeconfig(
        bin: &Path,
        kubeconfig: &Path,
        dir: &Path,
        sts_endpoint: &str,
        args: &[&str],
    ) -> Result<Self> {
        let n = next_log();
        Self::start_logging_to(
            bin,
            kubeconfig,
            &dir.join(format!("operator-{n}.log")),
            sts_endpoint,
            args,
        )
    }

    /// Like [`Operator::start_with_kubeconfig`] with the log written to `log` (truncated first),
    /// e.g. a file that outlives the control plane's directory; the pid file sits beside it.
    pub fn start_logging_to(
        bin: &Path,
        kubeconfig: &Path,
        log: &Path,
        sts_endpoint: &str,
        args: &[&str],
    ) -> Result<Self> {
        Self::spawn(bin, kubeconfig, log, sts_endpoint, args, &AwsIdentity::StaticKeys)
    }

    fn spawn(
        bin: &Path,
        kubeconfig: &Path,
        log: &Path,
        sts_endpoint: &str,
        args: &[&str],
        identity: &AwsIdentity,
    ) -> Result<Self> {
        let log = log.to_path_buf();
        let pid_file = log.with_extension("pid");
        let out = std::fs::File::create(&log).map_err(|source| Error::Io {
            action: "creating the operator log".into(),
            source,
        })?;
        let err = out.try_clone().map_err(|source| Error::Io {
            action: "creating the operator log".into(),
            source,
        })?;
        // The wrapper starts the operator, records its pid, and terminates it when stdin closes.
        // (A background command's stdin is /dev/null in a non-interactive shell: keep ours on fd 3.)
        let script = r#"exec 3<&0; pidf="$1"; shift; "$@" </dev/null & pid=$!; echo $pid > "$pidf"; (cat <&3 >/dev/null; kill -TERM $pid 2>/dev/null) & exec 3<&-; wait $pid"#;
        let http_port = crate::free_port()?;
        let http_addr = format!("127.0.0.1:{http_port}");
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(script)
            .arg("operator-wrapper")
            .arg(&pid_file)
            .arg(bin)
            .arg("run")
            .args(["--http-addr", &http_addr])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ROLE_ARN")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
            .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL_STS", sts_endpoint)
            // Pull-through cache credentials: moto serves Secrets Manager on the same port.
            .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", sts_endpoint)
            // ECR Public (tests/moto/ecr_public.py), unless a test sets --ecr-public-endpoint
            // (the fault proxy, to count its calls).
            .env("AWS_ENDPOINT_URL_ECR_PUBLIC", sts_endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err);
        match identity {
            AwsIdentity::StaticKeys => {
                command
                    .env("AWS_ACCESS_KEY_ID", "test")
                    .env("AWS_SECRET_ACCESS_KEY", "test");
            }
            AwsIdentity::WebIdentity { role_arn, token_file } => {
                command
                    .env("AWS_ROLE_ARN", role_arn)
                    .env("AWS_WEB_IDENTITY_TOKEN_FILE", token_file)
                    .env("AWS_ROLE_SESSION_NAME", "ecr-operator");
            }
            AwsIdentity::ContainerCredentials { full_uri, token_file } => {
                command
                    .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri)
                    .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file);
            }
        }
        let mut child = command.spawn().map_err(|source| Error::Io {
            action: "starting the operator".into(),
            source,
        })?;
        let stdin = child.stdin.take();
        Ok(Self {
            child,
            stdin,
            log,
            http_port,
            pid_file,
        })
    }

    /// The operator's process id, once it has started.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Sends a signal to the operator process (e.g. "KILL" to simulate a crash).
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status();
        }
    }

    /// Stops the operator gracefully and waits for it (at most 20 s, then SIGKILL).
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        let pid = self.pid();
        crate::tether::wait_or_kill(&mut self.child, |_| {
            if let Some(pid) = pid {
                let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            }
        });
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The exit code once it has exited (`None` while it runs, or when a signal ended it).
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child.try_wait().ok().flatten().and_then(|s| s.code())
    }

    /// GET `path` on the operator's HTTP server: (status, body).
    pub fn http_get(&self, path: &str) -> Result<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.http_port);
        let resp = crate::http::request(
            hyper::Method::GET,
            &url,
            None,
            std::time::Duration::from_secs(30),
            "calling the operator",
        )?;
        Ok((resp.status, String::from_utf8_lossy(&resp.body).into_owned()))
    }

    /// The log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The number of the next operator log of this test process (`operator-<n>.log`).
fn next_log() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
