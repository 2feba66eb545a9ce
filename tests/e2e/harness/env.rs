//! [`OperatorEnv`]: moto behind the counting fault proxy, a Registry pointing at the proxy, and
//! the operator as a process against the shared control plane.
//!
//! Tests run side by side: each `OperatorEnv` is its own shard. Its operator runs with
//! `--watch-label-selector sharding.ecr-operator.dev/key=<the env's Registry name>`, and every
//! object of the operator's kinds the test creates goes through [`OperatorEnv::apply`] (or
//! `apply_registry` / `apply_repository`), which adds that label. So an operator sees only its
//! own test's objects, and tests need not wait for each other. What cannot be sharded is
//! serialized by [`SERIAL`]: a sharded test holds it shared; a test whose effects or assertions
//! reach across the whole cluster holds it exclusively (see [`one_operator`] and
//! [`OperatorEnv::start_exclusive`]).

use std::collections::BTreeMap;
use std::time::Duration;

use ecr_operator::api::v1alpha1::{Registry, Repository};
use ecr_operator::shard::SHARD_LABEL;
use ecr_operator_testenv::{AwsIdentity, ControlPlane, FaultProxy, Moto, Operator};
use kube::api::{Api, DeleteParams, DynamicObject};
use serde_json::{Value, json};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::wait::{wait_condition, wait_for};
use crate::support::{apply, cluster, eventually};

pub const CLUSTER_ID: &str = "e2e";

/// Sharded tests hold it shared (any number at once); a cluster-wide test holds it exclusively
/// (alone). tokio's lock is fair: a waiting exclusive test holds back later shared ones, so it
/// is never starved.
static SERIAL: RwLock<()> = RwLock::const_new(());

/// Runs alone: for tests whose operator (in-process controllers or a process) has no
/// `--watch-label-selector` and would reconcile every test's objects, and for tests whose effects
/// or assertions are cluster-wide (leader election, the fault suite, which restarts the API
/// server, events or objects counted over the whole cluster).
pub async fn one_operator() -> RwLockWriteGuard<'static, ()> {
    SERIAL.write().await
}

/// The lock an [`OperatorEnv`] holds.
enum Serial {
    Shared { _guard: RwLockReadGuard<'static, ()> },
    Exclusive { _guard: RwLockWriteGuard<'static, ()> },
}

pub struct OperatorEnv {
    pub client: kube::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub registry: String,
    pub proxy: FaultProxy,
    pub operator: Option<Operator>,
    extra_args: Vec<String>,
    /// Where the operator's default credential chain finds credentials (static test keys unless
    /// [`OperatorEnv::start_as`]), and the STS endpoint it uses.
    identity: AwsIdentity,
    sts_endpoint: Option<String>,
    // Dropped last, in this order: the operator stops before moto.
    pub moto: Moto,
    _serial: Serial,
}

impl OperatorEnv {
    /// moto + proxy + a Registry called `registry` pointing at the proxy + the operator.
    pub async fn start(registry: &str) -> Self {
        Self::start_with(registry, &[]).await
    }

    /// Like [`OperatorEnv::start`] with extra operator flags.
    pub async fn start_with(registry: &str, extra_args: &[&str]) -> Self {
        Self::start_serial(
            registry,
            extra_args,
            Serial::Shared {
                _guard: SERIAL.read().await,
            },
        )
        .await
    }

    /// Like [`OperatorEnv::start_with`], but alone (see [`one_operator`]): for a sharded test
    /// whose effects reach beyond its shard (a ClusterPullSecret writing into every namespace,
    /// the fault suite) or that counts what the whole cluster holds.
    pub async fn start_exclusive(registry: &str, extra_args: &[&str]) -> Self {
        Self::start_serial(
            registry,
            extra_args,
            Serial::Exclusive {
                _guard: one_operator().await,
            },
        )
        .await
    }

    /// Like [`OperatorEnv::start`], with the operator's default credential chain given
    /// `identity` (IRSA, Pod Identity) and STS at `sts_endpoint` (e.g. a counting proxy).
    pub async fn start_as(registry: &str, identity: AwsIdentity, sts_endpoint: &str) -> Self {
        let serial = Serial::Shared {
            _guard: SERIAL.read().await,
        };
        let mut env = Self::prepare(registry, &[], serial).await;
        env.identity = identity;
        env.sts_endpoint = Some(sts_endpoint.to_owned());
        env.start_operator();
        env
    }

    /// Like [`OperatorEnv::start`], with STS and Secrets Manager (which moto serves on the same
    /// port) reached through this env's proxy too, so its log counts their calls (a restart
    /// that writes a secret shows in [`FaultProxy::forwarded_writes`]).
    pub async fn start_with_secrets_through_proxy(registry: &str) -> Self {
        let serial = Serial::Shared {
            _guard: SERIAL.read().await,
        };
        let mut env = Self::prepare(registry, &[], serial).await;
        env.sts_endpoint = Some(env.proxy.endpoint.clone());
        env.start_operator();
        env
    }

    async fn start_serial(registry: &str, extra_args: &[&str], serial: Serial) -> Self {
        let mut env = Self::prepare(registry, extra_args, serial).await;
        env.start_operator();
        env
    }

    /// moto, the proxy and the Registry, without the operator.
    async fn prepare(registry: &str, extra_args: &[&str], serial: Serial) -> Self {
        let cp = cluster();
        let client = cp.client().await.unwrap();
        let moto = Moto::start().unwrap();
        let proxy = FaultProxy::start(&moto.endpoint).unwrap();
        let ecr = moto.ecr_client("us-east-1");
        let env = Self {
            client,
            ecr,
            registry: registry.to_owned(),
            proxy,
            operator: None,
            moto,
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            identity: AwsIdentity::StaticKeys,
            sts_endpoint: None,
            _serial: serial,
        };
        env.apply_registry(json!({})).await;
        env
    }

    pub fn start_operator(&mut self) {
        let cp: &ControlPlane = cluster();
        let selector = format!("{SHARD_LABEL}={}", self.shard());
        let mut args = vec![
            "--cluster-id",
            CLUSTER_ID,
            "--repository-cache-ttl",
            "2s",
            "--log-filter",
            "info,ecr_operator=debug",
        ];
        args.extend(["--watch-label-selector", &selector]);
        // ECR Public through the same counting fault proxy (moto serves it on the same port).
        args.extend(["--ecr-public-endpoint", &self.proxy.endpoint]);
        args.extend(self.extra_args.iter().map(String::as_str));
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_ecr-operator"));
        let sts = self.sts_endpoint.as_deref().unwrap_or(&self.moto.endpoint);
        let op = Operator::start_as(bin, cp, sts, &args, &self.identity).unwrap();
        self.operator = Some(op);
    }

    /// Restarts the operator with a cleared proxy log, waits until it has made at least
    /// `at_least` `operation` calls (it has looked at everything), then lets it settle for 3 s,
    /// so the proxy log shows what a restart does.
    pub async fn restart_and_settle(&mut self, operation: &str, at_least: usize) {
        self.stop_operator();
        self.proxy.clear();
        self.start_operator();
        let what = format!("the restarted operator to make {at_least} {operation} calls");
        eventually(Duration::from_secs(60), &what, || async {
            (self.proxy.forwarded(operation) >= at_least).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }

    /// This env's shard: the value of the shard label on every object the test creates (its
    /// Registry's name, unique per test).
    pub fn shard(&self) -> &str {
        &self.registry
    }

    /// `doc` with this env's shard label, when it is an object of the operator's kinds.
    pub fn labelled(&self, doc: &Value) -> Value {
        let mut doc = doc.clone();
        let ours = doc["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("ecr-operator.dev/"));
        if ours {
            doc["metadata"]["labels"][SHARD_LABEL] = json!(self.shard());
        }
        doc
    }

    /// Server-side applies one document as the test field manager, in this env's shard (see
    /// [`OperatorEnv::labelled`]); namespaced objects go to `namespace`. Every object of the
    /// operator's kinds a test creates goes through here, or the test's operator never sees it.
    pub async fn apply(&self, namespace: &str, doc: &Value) -> Result<DynamicObject, kube::Error> {
        apply(&self.client, namespace, &self.labelled(doc)).await
    }

    pub fn stop_operator(&mut self) {
        if let Some(mut op) = self.operator.take() {
            op.stop();
        }
    }

    pub fn logs(&self) -> String {
        self.operator.as_ref().map(Operator::logs).unwrap_or_default()
    }

    /// Waits (at most 60 s) until this env's Registry has a status for its current generation
    /// and `check` holds.
    pub async fn wait_registry(&self, check: impl Fn(&Registry) -> bool) -> Registry {
        let api: Api<Registry> = Api::all(self.client.clone());
        let limit = Duration::from_secs(60);
        wait_for(
            &api,
            &self.registry,
            limit,
            "the Registry status",
            || self.logs(),
            check,
        )
        .await
    }

    /// Waits until this env's Registry is Ready.
    pub async fn wait_registry_ready(&self) {
        let api: Api<Registry> = Api::all(self.client.clone());
        let limit = Duration::from_secs(60);
        wait_condition(&api, &self.registry, "Ready", "True", None, limit, || self.logs()).await;
    }

    /// Applies the Registry with extra spec fields.
    pub async fn apply_registry(&self, extra: Value) {
        let mut spec = json!({"region": "us-east-1", "endpoint": self.proxy.endpoint});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let doc = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry", "metadata": {"name": self.registry}, "spec": spec});
        self.apply("", &doc).await.unwrap();
    }

    /// Applies a Repository on this env's Registry.
    pub async fn apply_repository(&self, ns: &str, name: &str, mut spec: Value) {
        spec["registryRef"] = json!({"name": self.registry});
        let doc = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository", "metadata": {"name": name}, "spec": spec});
        self.apply(ns, &doc).await.unwrap();
    }

    /// Waits (at most 90 s) until the Repository's condition `type_` has `status` (and `reason`,
    /// when given).
    pub async fn wait_condition(
        &self,
        ns: &str,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Repository {
        let api: Api<Repository> = Api::namespaced(self.client.clone(), ns);
        let limit = Duration::from_secs(90);
        wait_condition(&api, name, type_, status, reason, limit, || self.logs()).await
    }

    pub async fn ecr_tags(&self, name: &str) -> BTreeMap<String, String> {
        let d = self
            .ecr
            .describe_repositories()
            .repository_names(name)
            .send()
            .await
            .unwrap();
        let arn = d.repositories()[0].repository_arn().unwrap().to_owned();
        let t = self
            .ecr
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap();
        t.tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect()
    }

    pub async fn ecr_exists(&self, name: &str) -> bool {
        self.ecr
            .describe_repositories()
            .repository_names(name)
            .send()
            .await
            .is_ok()
    }

    pub async fn push_image(&self, name: &str, tag: &str) {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                       "digest": format!("sha256:{:0>64}", tag.len())},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                        "digest": format!("sha256:{:0>64x}", tag.bytes().map(u64::from).sum::<u64>())}]
        });
        self.ecr
            .put_image()
            .repository_name(name)
            .image_manifest(manifest.to_string())
            .image_tag(tag)
            .send()
            .await
            .unwrap();
    }

    pub async fn delete_registry(&self) {
        let api: Api<Registry> = Api::all(self.client.clone());
        let _ = api.delete(&self.registry, &DeleteParams::default()).await;
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
