//! moto's server: the local ECR endpoint.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;

use crate::error::{Error, Result, io};
use crate::http;
use crate::tether::Tethered;
use crate::tools::{free_port, moto_python, repo_root};

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
        let stdout = child.stdout.take();
        let mut proc = Tethered::new("moto", child);
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
            match moto.http(Method::GET, "/moto-api/") {
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
        match self.http(Method::POST, "/moto-api/reset")? {
            200 => Ok(()),
            code => Err(Error::Setup(format!("moto reset answered HTTP {code}"))),
        }
    }

    /// Whether the server is still running.
    pub fn is_running(&mut self) -> bool {
        self.proc.exited().is_none()
    }

    /// A request without a body to moto's own API; returns the status code.
    fn http(&self, method: Method, path: &str) -> Result<u16> {
        let url = format!("{}{path}", self.endpoint);
        Ok(http::request(method, &url, None, Duration::from_secs(10), "calling moto")?.status)
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

    /// An aws-sdk-secretsmanager client for this server (moto serves Secrets Manager on the same
    /// port), with the same static test credentials and the given region.
    pub fn secrets_client(&self, region: &str) -> aws_sdk_secretsmanager::Client {
        use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
        let conf = aws_sdk_secretsmanager::Config::builder()
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
        aws_sdk_secretsmanager::Client::from_conf(conf)
    }

    /// An aws-sdk-ecrpublic client for this server (tests/moto/ecr_public.py serves ECR Public on
    /// the same port, in us-east-1 only, as AWS does), with the same static test credentials.
    pub fn ecr_public_client(&self) -> aws_sdk_ecrpublic::Client {
        use aws_sdk_ecrpublic::config::{BehaviorVersion, Credentials, Region};
        let conf = aws_sdk_ecrpublic::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "ecr-operator-testenv",
            ))
            .build();
        aws_sdk_ecrpublic::Client::from_conf(conf)
    }
}
