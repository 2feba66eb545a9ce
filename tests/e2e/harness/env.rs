//! [`OperatorEnv`]: moto behind the counting fault proxy, a Registry pointing at the proxy, and
//! the operator as a process against the shared control plane.

use std::collections::BTreeMap;
use std::time::Duration;

use ecr_operator::api::v1alpha1::{Registry, Repository};
use ecr_operator_testenv::{ControlPlane, FaultProxy, Moto, Operator};
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

use super::wait::{wait_condition, wait_for};
use crate::support::{apply, cluster, eventually};

pub const CLUSTER_ID: &str = "e2e";

/// Only one operator process runs at a time: two would reconcile the same objects.
static ONE_OPERATOR: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Holds the one-operator lock (for tests that run the controllers in-process).
pub async fn one_operator() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_OPERATOR.lock().await
}

pub struct OperatorEnv {
    pub client: kube::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub registry: String,
    pub proxy: FaultProxy,
    pub operator: Option<Operator>,
    extra_args: Vec<String>,
    // Dropped last, in this order: the operator stops before moto.
    pub moto: Moto,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl OperatorEnv {
    /// moto + proxy + a Registry called `registry` pointing at the proxy + the operator.
    pub async fn start(registry: &str) -> Self {
        Self::start_with(registry, &[]).await
    }

    /// Like [`OperatorEnv::start`] with extra operator flags.
    pub async fn start_with(registry: &str, extra_args: &[&str]) -> Self {
        let serial = ONE_OPERATOR.lock().await;
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
            _serial: serial,
        };
        env.apply_registry(json!({})).await;
        let mut env = env;
        env.start_operator();
        env
    }

    pub fn start_operator(&mut self) {
        let cp: &ControlPlane = cluster();
        let mut args = vec![
            "--cluster-id",
            CLUSTER_ID,
            "--repository-cache-ttl",
            "2s",
            "--log-filter",
            "info,ecr_operator=debug",
        ];
        args.extend(self.extra_args.iter().map(String::as_str));
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_ecr-operator"));
        let op = Operator::start(bin, cp, &self.moto.endpoint, &args).unwrap();
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
        apply(&self.client, "", &doc).await.unwrap();
    }

    /// Applies a Repository on this env's Registry.
    pub async fn apply_repository(&self, ns: &str, name: &str, mut spec: Value) {
        spec["registryRef"] = json!({"name": self.registry});
        let doc = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository", "metadata": {"name": name}, "spec": spec});
        apply(&self.client, ns, &doc).await.unwrap();
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
