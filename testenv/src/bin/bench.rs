//! `cargo xtask bench`: scale and resource measurements of the release operator against the real
//! control plane and moto (behind the counting proxy). It reports; it asserts nothing about time.
//! Writes `bench/results/<timestamp>.json` and `.md`.
//!
//! Scenarios: cold converge of 1,000 Repositories; one full steady-state resync of them; a
//! ClusterPullSecret over 1,000 namespaces (and its resync); peak RSS without and with 20,000
//! unrelated Secrets; apply-to-Ready latency of 100 Repositories; one LifecyclePolicy over 500
//! Repositories (ECR calls per policy reconcile, and whether status writes cause more work);
//! apply-to-Ready latency of new Repositories while N others resync (`BENCH_RESYNC_REPOSITORIES`,
//! default 10,000); paced apply-to-Ready latency, one Repository at a time; and a cost table at
//! 1,000 / 5,000 / 10,000 Repositories (`BENCH_SCALE`): ECR calls, Kubernetes writes, CPU
//! seconds and peak RSS. `BENCH_SCENARIOS` (comma-separated names, default all) picks scenarios.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ecr_operator_testenv::{
    ControlPlane, FaultProxy, Moto, Operator, apply_document, error_chain, repo_root,
};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;
use serde_json::{Value, json};

const MANAGER: &str = "ecr-operator-bench";
const REPOSITORIES: usize = 1000;
const NAMESPACES: usize = 1000;
const UNRELATED_SECRETS: usize = 20_000;
const LATENCY_REPOSITORIES: usize = 100;
/// `--default-interval` during the lifecycle-policy scenario.
const LIFECYCLE_INTERVAL: &str = "24h";
/// `--default-interval` while the bench waits for a full drift-check cycle.
const RESYNC_INTERVAL: &str = "60s";
const POLICY_REPOSITORIES: usize = 500;
/// Repositories resyncing in the resync-latency scenario, unless `BENCH_RESYNC_REPOSITORIES` says.
const RESYNC_REPOSITORIES: usize = 10_000;
/// New Repositories applied one by one while they resync, one every `RESYNC_APPLY_EVERY`.
const RESYNC_APPLIED: usize = 60;
const RESYNC_APPLY_EVERY: Duration = Duration::from_secs(2);
/// Repositories applied one at a time (each after the previous is Ready) in paced-latency.
const PACED_REPOSITORIES: usize = 50;
/// The sizes of the cost table, unless `BENCH_SCALE` says (comma-separated).
const SCALE_SIZES: [usize; 3] = [1000, 5000, 10_000];
/// The shard label that keeps each size's objects to its own operator.
const SHARD_LABEL: &str = "sharding.ecr-operator.dev/key";
/// Every scenario, in the order they run.
const SCENARIOS: [&str; 10] = [
    "cold-converge",
    "steady-state",
    "fan-out",
    "memory",
    "latency",
    "paced-latency",
    "lifecycle-policy",
    "protection",
    "resync-latency",
    "scale",
];

#[path = "bench/protection.rs"]
mod protection;

type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// What the Repository watch saw: writes to existing objects, and when each became Ready.
#[derive(Default)]
struct Seen {
    versions: HashMap<String, String>,
    writes: u64,
    ready_at: HashMap<String, Instant>,
}

fn key(obj: &DynamicObject) -> String {
    format!(
        "{}/{}",
        obj.metadata.namespace.clone().unwrap_or_default(),
        obj.metadata.name.clone().unwrap_or_default()
    )
}

fn is_ready(obj: &DynamicObject) -> bool {
    let status = &obj.data["status"];
    status["observedGeneration"].as_i64() == obj.metadata.generation
        && status["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Counts every change to objects already seen (the operator's writes: status, finalizers).
fn watch_writes(api: Api<DynamicObject>, seen: Arc<Mutex<Seen>>) {
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            let obj = match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
                _ => continue,
            };
            let k = key(&obj);
            let rv = obj.metadata.resource_version.clone().unwrap_or_default();
            if let Ok(mut s) = seen.lock() {
                match s.versions.insert(k.clone(), rv.clone()) {
                    Some(old) if old != rv => s.writes += 1,
                    _ => {}
                }
                if is_ready(&obj) && !s.ready_at.contains_key(&k) {
                    s.ready_at.insert(k, Instant::now());
                }
            }
        }
    });
}

fn ecr_calls(proxy: &FaultProxy) -> BTreeMap<String, u64> {
    let mut by_op = BTreeMap::new();
    for c in proxy.calls().into_iter().filter(|c| c.injected.is_none()) {
        *by_op.entry(c.operation).or_insert(0) += 1;
    }
    by_op
}

fn writes_of(calls: &BTreeMap<String, u64>) -> u64 {
    calls
        .iter()
        .filter(|(op, _)| ecr_operator_testenv::is_write(op))
        .map(|(_, n)| n)
        .sum()
}

fn peak_rss_mib(op: &Operator) -> Res<f64> {
    let pid = op.pid().ok_or("no operator pid")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(err)?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmHWM")?;
    Ok(kib / 1024.0)
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Res<Duration> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return Err(format!("{what}: not done after {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(start.elapsed())
}

async fn apply_all(client: &kube::Client, docs: Vec<(String, Value)>) -> Res<()> {
    futures::stream::iter(docs)
        .map(|(ns, doc)| async move { apply_document(client, &ns, &doc, MANAGER).await.map_err(err) })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .map(drop)
}

fn repository(ns: &str, name: &str) -> (String, Value) {
    (
        ns.to_owned(),
        json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
               "metadata": {"name": name}, "spec": {"name": format!("{ns}/{name}")}}),
    )
}

/// What one bench run measured: `bench/results/<date>.json` (keys as in earlier results, so old
/// and new results stay comparable) and, through [`Display`](std::fmt::Display), its `.md`.
#[derive(Serialize)]
struct BenchReport {
    date: String,
    machine: Machine,
    operator: OperatorBuild,
    /// The scenarios that ran (`BENCH_SCENARIOS`); the others are absent.
    scenarios: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cold_converge: Option<ColdConverge>,
    #[serde(skip_serializing_if = "Option::is_none")]
    steady_state: Option<SteadyState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fan_out: Option<FanOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<Memory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lifecycle_policy: Option<LifecyclePolicyScenario>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protection: Option<protection::ProtectionScenario>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resync_latency: Option<ResyncLatency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paced_latency: Option<Latency>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scale: Vec<ScaleRow>,
    total_seconds: f64,
}

#[derive(Serialize)]
struct Machine {
    cores: usize,
    memory_gib: f64,
    cpu: String,
}

#[derive(Serialize)]
struct OperatorBuild {
    build: &'static str,
    version: &'static str,
    flags: &'static str,
    env: String,
    /// `BENCH_OPERATOR_BIN` when the bench ran a given binary (e.g. an earlier commit's).
    #[serde(skip_serializing_if = "String::is_empty")]
    binary: String,
}

/// ECR calls that reached moto, by operation.
type EcrCalls = BTreeMap<String, u64>;

#[derive(Serialize)]
struct ColdConverge {
    repositories: usize,
    apply_seconds: f64,
    all_ready_seconds: f64,
    ecr_calls: EcrCalls,
    ecr_writes: u64,
    kubernetes_writes: u64,
}

#[derive(Serialize)]
struct SteadyState {
    repositories: usize,
    resync_seconds: f64,
    ecr_calls: EcrCalls,
    ecr_writes: u64,
    describe_repositories_per_repository: f64,
    kubernetes_writes: u64,
}

#[derive(Serialize)]
struct FanOut {
    namespaces: usize,
    token_calls: u64,
    secret_writes: u64,
    seconds_until_every_secret_exists: f64,
    resync_secret_writes: u64,
    resync_token_calls: u64,
    resync_seconds: f64,
}

#[derive(Serialize)]
struct Memory {
    repositories: usize,
    namespaces: usize,
    unrelated_secrets: usize,
    peak_rss_mib_without_unrelated_secrets: f64,
    peak_rss_mib_with_unrelated_secrets: f64,
}

#[derive(Serialize)]
struct Latency {
    repositories: usize,
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
}

#[derive(Serialize)]
struct LifecyclePolicyScenario {
    repositories: usize,
    /// From apply to the policy Ready.
    ready_seconds: f64,
    /// From apply until ECR saw no call for 20 s (at most 10 minutes).
    settled_seconds: f64,
    /// Policy reconciles in that time (the operator's own metric).
    policy_reconciles: u64,
    /// Every ECR call in that time, by operation.
    ecr_calls: EcrCalls,
    /// GetLifecyclePolicy + PutLifecyclePolicy + DescribeImages per policy reconcile.
    policy_calls_per_reconcile: f64,
    /// ListTagsForResource in that time: Repository reconciles the policy's work caused.
    repository_reads: u64,
}

/// New Repositories applied one by one while many others resync at the default ECR budget: are
/// users served before background drift checks?
#[derive(Serialize)]
struct ResyncLatency {
    /// Repositories created for this scenario (`BENCH_RESYNC_REPOSITORIES`).
    resyncing_repositories: usize,
    /// Every Repository in the cluster when the window opened (earlier scenarios' too).
    repositories_total: usize,
    /// Creating them, with the operator at a high rate limit (not measured further).
    setup_seconds: f64,
    /// `--default-interval` of the measured operator: `resyncing_repositories` × 60 ms, so the
    /// drift checks cost what 10,000 Repositories at the default 10 minutes cost (16.7/s).
    default_interval_seconds: u64,
    /// New Repositories applied, one every `apply_every_ms`, from the (re)start of the operator.
    applied: usize,
    apply_every_ms: u64,
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
    /// From the operator's start until the last new Repository was Ready.
    window_seconds: f64,
    /// ECR calls in that window, by operation (ListTagsForResource: drift checks).
    ecr_calls: EcrCalls,
    /// The operator's background wait per lane in the window, where it reports one
    /// (`ecr_operator_backend_lane_wait_seconds_sum`); empty for operators without lanes.
    lane_wait_seconds: BTreeMap<String, f64>,
}

/// One size of the cost table: a fresh operator (all its defaults but `--ecr-rate-limit 1000`
/// and `--ecr-burst 1000`, so moto and the operator are measured, not the budget) converging
/// `repositories` new Repositories, one per namespace, with as many namespaces in the cluster.
#[derive(Serialize)]
struct ScaleRow {
    repositories: usize,
    /// Namespaces in the cluster (the operator caches their metadata).
    namespaces: usize,
    /// From the first apply until every one is Ready.
    all_ready_seconds: f64,
    ecr_calls: EcrCalls,
    ecr_calls_per_repository: f64,
    /// Changes the operator made to the Repositories (finalizer, status).
    kubernetes_writes: u64,
    kubernetes_writes_per_repository: f64,
    /// The operator's user + system CPU time from its start until 10 s after the last was Ready.
    cpu_seconds: f64,
    /// `VmHWM` of the operator then.
    peak_rss_mib: f64,
}

/// A scenario's (or the report's) JSON on one line, keys sorted as in the result files.
fn json_text(v: &impl Serialize) -> String {
    serde_json::to_value(v).map(|v| v.to_string()).unwrap_or_default()
}

/// The running bench: control plane, moto behind the proxy, the release operator, and the watch
/// of every Repository.
struct Bench {
    cp: ControlPlane,
    client: kube::Client,
    proxy: FaultProxy,
    moto: Moto,
    bin: PathBuf,
    operator: Option<Operator>,
    seen: Arc<Mutex<Seen>>,
}

impl Bench {
    /// Starts everything, applies the Registry `default`, and watches the Repositories.
    async fn start(bin: PathBuf) -> Res<Self> {
        let cp = ControlPlane::start().map_err(|e| error_chain(&e))?;
        cp.install_crds().await.map_err(|e| error_chain(&e))?;
        let moto = Moto::start().map_err(|e| error_chain(&e))?;
        let proxy = FaultProxy::start(&moto.endpoint).map_err(|e| error_chain(&e))?;
        let client = cp.client().await.map_err(|e| error_chain(&e))?;
        let registry = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
            "metadata": {"name": "default"}, "spec": {"region": "us-east-1", "endpoint": proxy.endpoint}});
        apply_document(&client, "", &registry, MANAGER)
            .await
            .map_err(err)?;
        let mut bench = Self {
            cp,
            client,
            proxy,
            moto,
            bin,
            operator: None,
            seen: Arc::new(Mutex::new(Seen::default())),
        };
        bench.start_operator()?;
        eprintln!("bench: control plane, moto, proxy and the release operator are up");

        let (repo_resource, _) = kube::discovery::pinned_kind(
            &bench.client,
            &kube::core::GroupVersionKind::gvk("ecr-operator.dev", "v1alpha1", "Repository"),
        )
        .await
        .map_err(err)?;
        watch_writes(
            Api::all_with(bench.client.clone(), &repo_resource),
            bench.seen.clone(),
        );
        Ok(bench)
    }

    fn start_operator(&mut self) -> Res<()> {
        self.start_operator_with(&[])
    }

    /// Starts the operator with its defaults and `extra` flags.
    fn start_operator_with(&mut self, extra: &[&str]) -> Res<()> {
        let mut args = vec!["--cluster-id", "bench"];
        args.extend_from_slice(extra);
        let op =
            Operator::start(&self.bin, &self.cp, &self.moto.endpoint, &args).map_err(|e| error_chain(&e))?;
        self.operator = Some(op);
        Ok(())
    }

    /// Restarts the operator with `extra` flags and waits until it is ready.
    async fn restart_with(&mut self, extra: &[&str]) -> Res<()> {
        self.stop_operator();
        self.start_operator_with(extra)?;
        let start = Instant::now();
        loop {
            if let Ok((200, _)) = self.op()?.http_get("/readyz") {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(120) {
                return Err("the operator was not ready after 120 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stop_operator(&mut self) {
        if let Some(mut op) = self.operator.take() {
            op.stop();
        }
    }

    /// Restarts the operator with a cleared proxy log and waits for one full drift-check cycle
    /// (every Repository's tags read), then 5 s more. A restart resumes each in-sync
    /// Repository's slot of its interval instead of re-reading everything at once, so the
    /// operator runs with `--default-interval` [`RESYNC_INTERVAL`] (stretched by the background
    /// share of the budget to 100 s for 1,000 Repositories) for the cycle to fit the bench;
    /// [`Bench::settle`] restarts it with its defaults.
    async fn restart_and_resync(&mut self) -> Res<Duration> {
        self.stop_operator();
        self.proxy.clear();
        let start = Instant::now();
        self.start_operator_with(&["--default-interval", RESYNC_INTERVAL])?;
        let proxy = &self.proxy;
        wait_until("a full resync", Duration::from_secs(600), || {
            proxy.forwarded("ListTagsForResource") >= REPOSITORIES
        })
        .await?;
        let took = start.elapsed();
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(took)
    }

    /// Restarts the operator with its defaults after [`Bench::restart_and_resync`].
    async fn settle(&mut self) -> Res<()> {
        self.restart_with(&[]).await
    }

    fn op(&self) -> Res<&Operator> {
        self.operator.as_ref().ok_or_else(|| "no operator".to_owned())
    }

    /// Changes the operator made to Repositories so far.
    fn kubernetes_writes(&self) -> u64 {
        self.seen.lock().map(|s| s.writes).unwrap_or_default()
    }

    /// Repositories seen Ready so far.
    fn ready(&self) -> usize {
        self.seen.lock().map(|s| s.ready_at.len()).unwrap_or_default()
    }

    /// Scenario 1, cold converge: 1,000 Repositories over 10 namespaces, applied at once.
    async fn cold_converge(&mut self) -> Res<ColdConverge> {
        let mut docs = Vec::new();
        for n in 0..10 {
            let ns = format!("bench-{n}");
            create_namespace(&self.client, &ns, BTreeMap::new()).await?;
            for i in 0..REPOSITORIES / 10 {
                docs.push(repository(&ns, &format!("repo-{i:03}")));
            }
        }
        self.proxy.clear();
        let start = Instant::now();
        apply_all(&self.client, docs).await?;
        let applied = start.elapsed();
        let converge = wait_until("1,000 Repositories Ready", Duration::from_secs(1800), || {
            self.ready() >= REPOSITORIES
        })
        .await?;
        let ecr_calls = ecr_calls(&self.proxy);
        Ok(ColdConverge {
            repositories: REPOSITORIES,
            apply_seconds: applied.as_secs_f64(),
            all_ready_seconds: (start.elapsed())
                .as_secs_f64()
                .min(converge.as_secs_f64() + applied.as_secs_f64()),
            ecr_writes: writes_of(&ecr_calls),
            ecr_calls,
            kubernetes_writes: self.kubernetes_writes(),
        })
    }

    /// Scenario 2, steady state: one full drift-check cycle of the in-sync Repositories after a
    /// restart.
    async fn steady_state(&mut self) -> Res<SteadyState> {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = self.kubernetes_writes();
        let took = self.restart_and_resync().await?;
        let ecr_calls = ecr_calls(&self.proxy);
        let steady = SteadyState {
            repositories: REPOSITORIES,
            resync_seconds: took.as_secs_f64(),
            ecr_writes: writes_of(&ecr_calls),
            describe_repositories_per_repository: ecr_calls.get("DescribeRepositories").copied().unwrap_or(0)
                as f64
                / REPOSITORIES as f64,
            ecr_calls,
            kubernetes_writes: self.kubernetes_writes() - before,
        };
        self.settle().await?;
        Ok(steady)
    }

    /// Scenario 3, fan-out: a ClusterPullSecret over 1,000 namespaces, and the resync after it.
    async fn fan_out(&mut self) -> Res<FanOut> {
        let start = Instant::now();
        futures::stream::iter(0..NAMESPACES)
            .map(|i| {
                let client = self.client.clone();
                async move {
                    create_namespace(
                        &client,
                        &format!("team-{i:04}"),
                        BTreeMap::from([("bench".to_owned(), "fanout".to_owned())]),
                    )
                    .await
                }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<_>>()
            .await?;
        eprintln!("bench: created {NAMESPACES} namespaces in {:?}", start.elapsed());
        let secret_writes = watch_secret_writes(Api::all(self.client.clone()));
        self.proxy.clear();
        let cps = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ClusterPullSecret",
            "metadata": {"name": "bench"}, "spec": {"namespaceSelector": {"matchLabels": {"bench": "fanout"}},
            "registries": ["default"], "secretName": "ecr-pull"}});
        apply_document(&self.client, "", &cps, MANAGER)
            .await
            .map_err(err)?;
        let count =
            |w: &Arc<Mutex<SecretWrites>>| w.lock().map(|w| (w.versions.len(), w.writes)).unwrap_or_default();
        let all_exist = wait_until("1,000 pull Secrets", Duration::from_secs(900), || {
            count(&secret_writes).0 >= NAMESPACES
        })
        .await?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let fan_calls = ecr_calls(&self.proxy);
        let (_, first_writes) = count(&secret_writes);
        // The next resync writes nothing.
        let took = self.restart_and_resync().await?;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (_, after_resync) = count(&secret_writes);
        Ok(FanOut {
            namespaces: NAMESPACES,
            token_calls: fan_calls.get("GetAuthorizationToken").copied().unwrap_or(0),
            secret_writes: first_writes,
            seconds_until_every_secret_exists: all_exist.as_secs_f64(),
            resync_secret_writes: after_resync - first_writes,
            resync_token_calls: ecr_calls(&self.proxy)
                .get("GetAuthorizationToken")
                .copied()
                .unwrap_or(0),
            resync_seconds: took.as_secs_f64(),
        })
    }

    /// Scenario 4, memory: peak RSS after a full resync, before and after 20,000 unrelated Secrets.
    async fn memory(&mut self) -> Res<Memory> {
        let rss_without = peak_rss_mib(self.op()?)?;
        let start = Instant::now();
        futures::stream::iter(0..UNRELATED_SECRETS)
            .map(|i| {
                let client = self.client.clone();
                async move {
                    let ns = format!("team-{:04}", i % NAMESPACES);
                    let secret: Secret =
                        serde_json::from_value(json!({"metadata": {"name": format!("unrelated-{i:05}")},
                        "stringData": {"password": "x".repeat(512)}}))
                        .map_err(err)?;
                    Api::<Secret>::namespaced(client, &ns)
                        .create(&PostParams::default(), &secret)
                        .await
                        .map_err(err)
                        .map(drop)
                }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<_>>()
            .await?;
        eprintln!(
            "bench: created {UNRELATED_SECRETS} unrelated Secrets in {:?}",
            start.elapsed()
        );
        self.restart_and_resync().await?;
        let rss_with = peak_rss_mib(self.op()?)?;
        self.settle().await?;
        Ok(Memory {
            repositories: REPOSITORIES,
            namespaces: NAMESPACES + 10,
            unrelated_secrets: UNRELATED_SECRETS,
            peak_rss_mib_without_unrelated_secrets: rss_without,
            peak_rss_mib_with_unrelated_secrets: rss_with,
        })
    }

    /// Scenario 5, latency: apply -> Ready for 100 Repositories, applied one after another.
    /// The operator's reconcile count of one controller, from its /metrics.
    fn reconciles(&self, controller: &str) -> Res<u64> {
        let (_, text) = self.op()?.http_get("/metrics").map_err(|e| error_chain(&e))?;
        let needle = format!("controller=\"{controller}\"");
        Ok(text
            .lines()
            .filter(|l| l.starts_with("ecr_operator_reconcile_total") && l.contains(&needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64)
    }

    /// Scenario 6: one LifecyclePolicy selecting 500 Ready Repositories of its namespace.
    async fn lifecycle_policy(&mut self) -> Res<LifecyclePolicyScenario> {
        let ns = "bench-lp";
        create_namespace(&self.client, ns, BTreeMap::new()).await?;
        // The drift checks of the Repositories already there are spread over their interval
        // (after a restart too), so ECR would never be quiet for 20 s at the default 10 minutes:
        // with a day, about one a minute remains.
        self.restart_with(&["--default-interval", LIFECYCLE_INTERVAL])
            .await?;
        let docs: Vec<_> = (0..POLICY_REPOSITORIES)
            .map(|i| {
                let (ns, mut doc) = repository(ns, &format!("p-{i:03}"));
                doc["metadata"]["labels"] = json!({"lifecycle": "std"});
                (ns, doc)
            })
            .collect();
        apply_all(&self.client, docs).await?;
        let seen = &self.seen;
        wait_until("500 Repositories Ready", Duration::from_secs(900), || {
            seen.lock()
                .map(|s| {
                    s.ready_at.keys().filter(|k| k.starts_with("bench-lp/")).count() >= POLICY_REPOSITORIES
                })
                .unwrap_or(false)
        })
        .await?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        self.proxy.clear();
        let reconciles_before = self.reconciles("lifecycle-policy")?;
        let policy = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "LifecyclePolicy",
            "metadata": {"name": "std"},
            "spec": {"repositorySelector": {"matchLabels": {"lifecycle": "std"}},
                "rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                    "countUnit": "days", "countNumber": 14}, "action": {"type": "expire"}}]}});
        let start = Instant::now();
        apply_document(&self.client, ns, &policy, MANAGER)
            .await
            .map_err(err)?;
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            ns,
            &kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
                "ecr-operator.dev",
                "v1alpha1",
                "LifecyclePolicy",
            )),
        );
        let mut ready_seconds = None;
        let mut last_count = 0;
        let mut quiet_since = Instant::now();
        while start.elapsed() < Duration::from_secs(600) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if ready_seconds.is_none()
                && let Ok(p) = api.get("std").await
                && is_ready(&p)
            {
                ready_seconds = Some(start.elapsed().as_secs_f64());
            }
            let count = self.proxy.calls().len();
            if count != last_count {
                last_count = count;
                quiet_since = Instant::now();
            } else if ready_seconds.is_some() && quiet_since.elapsed() >= Duration::from_secs(20) {
                break;
            }
        }
        let settled_seconds = (quiet_since - start).as_secs_f64();
        let ecr_calls = ecr_calls(&self.proxy);
        let policy_reconciles = self.reconciles("lifecycle-policy")? - reconciles_before;
        let policy_calls: u64 = ["GetLifecyclePolicy", "PutLifecyclePolicy", "DescribeImages"]
            .iter()
            .map(|op| ecr_calls.get(*op).copied().unwrap_or(0))
            .sum();
        self.settle().await?;
        Ok(LifecyclePolicyScenario {
            repositories: POLICY_REPOSITORIES,
            ready_seconds: ready_seconds.unwrap_or(f64::NAN),
            settled_seconds,
            policy_reconciles,
            policy_calls_per_reconcile: policy_calls as f64 / policy_reconciles.max(1) as f64,
            repository_reads: ecr_calls.get("ListTagsForResource").copied().unwrap_or(0),
            ecr_calls,
        })
    }

    /// Scenario 7: `n` Repositories resync at the default ECR budget (the operator just
    /// (re)started, as after a rollout or a leader change, with an interval that makes their
    /// drift checks cost what 10,000 cost at 10 minutes) while new Repositories are applied one
    /// by one: apply -> Ready of the new ones.
    async fn resync_latency(&mut self, n: usize) -> Res<ResyncLatency> {
        let start = Instant::now();
        let mut docs = Vec::new();
        for ns_index in 0..n.div_ceil(1000) {
            let ns = format!("bench-resync-{ns_index}");
            create_namespace(&self.client, &ns, BTreeMap::new()).await?;
            for i in ns_index * 1000..((ns_index + 1) * 1000).min(n) {
                docs.push(repository(&ns, &format!("r-{i:05}")));
            }
        }
        create_namespace(&self.client, "bench-resync-new", BTreeMap::new()).await?;
        // Setting up is not measured: a high rate limit and more workers make it quick.
        self.restart_with(&[
            "--ecr-rate-limit",
            "1000",
            "--ecr-burst",
            "1000",
            "--concurrency",
            "16",
        ])
        .await?;
        apply_all(&self.client, docs).await?;
        let seen = self.seen.clone();
        let setup_done = |s: &Seen| {
            s.ready_at
                .keys()
                .filter(|k| k.starts_with("bench-resync-") && !k.starts_with("bench-resync-new/"))
                .count()
                >= n
        };
        wait_until(
            "the resyncing Repositories Ready",
            Duration::from_secs(3600),
            || seen.lock().map(|s| setup_done(&s)).unwrap_or(false),
        )
        .await?;
        let setup_seconds = start.elapsed().as_secs_f64();
        eprintln!("bench: {n} Repositories Ready in {setup_seconds:.0} s");
        tokio::time::sleep(Duration::from_secs(5)).await;
        let repositories_total = self.seen.lock().map(|s| s.versions.len()).unwrap_or(0);

        let interval = Duration::from_millis(60 * n as u64).max(Duration::from_secs(10));
        let interval_flag = format!("{}s", interval.as_secs());
        self.proxy.clear();
        let window = Instant::now();
        self.restart_with(&["--default-interval", &interval_flag]).await?;
        let mut applied_at = HashMap::new();
        for i in 0..RESYNC_APPLIED {
            let tick = Instant::now();
            let (ns, doc) = repository("bench-resync-new", &format!("n-{i:03}"));
            applied_at.insert(format!("{ns}/n-{i:03}"), Instant::now());
            apply_document(&self.client, &ns, &doc, MANAGER)
                .await
                .map_err(err)?;
            tokio::time::sleep(RESYNC_APPLY_EVERY.saturating_sub(tick.elapsed())).await;
        }
        wait_until("the new Repositories Ready", Duration::from_secs(3600), || {
            seen.lock()
                .map(|s| applied_at.keys().all(|k| s.ready_at.contains_key(k)))
                .unwrap_or(false)
        })
        .await?;
        let window_seconds = window.elapsed().as_secs_f64();
        let ecr_calls = ecr_calls(&self.proxy);
        let lane_wait_seconds = self.lane_waits()?;
        let millis = {
            let s = seen.lock().map_err(err)?;
            applied_at
                .iter()
                .map(|(k, t)| s.ready_at[k].duration_since(*t).as_secs_f64() * 1000.0)
                .collect()
        };
        let (p50_ms, p95_ms, max_ms) = percentiles(millis);
        Ok(ResyncLatency {
            resyncing_repositories: n,
            repositories_total,
            setup_seconds,
            default_interval_seconds: interval.as_secs(),
            applied: RESYNC_APPLIED,
            apply_every_ms: RESYNC_APPLY_EVERY.as_millis() as u64,
            p50_ms,
            p95_ms,
            max_ms,
            window_seconds,
            ecr_calls,
            lane_wait_seconds,
        })
    }

    /// `ecr_operator_backend_lane_wait_seconds_sum` by lane, from the operator's /metrics.
    fn lane_waits(&self) -> Res<BTreeMap<String, f64>> {
        let (_, text) = self.op()?.http_get("/metrics").map_err(|e| error_chain(&e))?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with("ecr_operator_backend_lane_wait_seconds_sum"))
            .filter_map(|l| {
                let lane = l.split("lane=\"").nth(1)?.split('"').next()?.to_owned();
                Some((lane, l.rsplit(' ').next()?.parse::<f64>().ok()?))
            })
            .fold(BTreeMap::new(), |mut m, (lane, v)| {
                *m.entry(lane).or_insert(0.0) += v;
                m
            }))
    }

    async fn latency(&mut self) -> Res<Latency> {
        create_namespace(&self.client, "bench-latency", BTreeMap::new()).await?;
        let mut applied_at = HashMap::new();
        for i in 0..LATENCY_REPOSITORIES {
            let (ns, doc) = repository("bench-latency", &format!("l-{i:03}"));
            applied_at.insert(format!("{ns}/l-{i:03}"), Instant::now());
            apply_document(&self.client, &ns, &doc, MANAGER)
                .await
                .map_err(err)?;
        }
        let seen = &self.seen;
        wait_until("100 Repositories Ready", Duration::from_secs(600), || {
            seen.lock()
                .map(|s| applied_at.keys().all(|k| s.ready_at.contains_key(k)))
                .unwrap_or(false)
        })
        .await?;
        let millis = {
            let s = seen.lock().map_err(err)?;
            applied_at
                .iter()
                .map(|(k, t)| s.ready_at[k].duration_since(*t).as_secs_f64() * 1000.0)
                .collect()
        };
        let (p50_ms, p95_ms, max_ms) = percentiles(millis);
        Ok(Latency {
            repositories: LATENCY_REPOSITORIES,
            p50_ms,
            p95_ms,
            max_ms,
        })
    }
}

impl Bench {
    /// Paced latency: on a settled operator, `PACED_REPOSITORIES` Repositories applied one at a
    /// time, each after the previous one is Ready: what one `kubectl apply` waits.
    async fn paced_latency(&mut self) -> Res<Latency> {
        let ns = "bench-paced";
        create_namespace(&self.client, ns, BTreeMap::new()).await?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut millis = Vec::with_capacity(PACED_REPOSITORIES);
        for i in 0..PACED_REPOSITORIES {
            let name = format!("p-{i:03}");
            let (ns, doc) = repository(ns, &name);
            let key = format!("{ns}/{name}");
            let applied = Instant::now();
            apply_document(&self.client, &ns, &doc, MANAGER)
                .await
                .map_err(err)?;
            let seen = &self.seen;
            wait_until(&format!("{key} Ready"), Duration::from_secs(120), || {
                seen.lock().is_ok_and(|s| s.ready_at.contains_key(&key))
            })
            .await?;
            let ready = self.seen.lock().map_err(err)?.ready_at[&key];
            millis.push(ready.duration_since(applied).as_secs_f64() * 1000.0);
        }
        let (p50_ms, p95_ms, max_ms) = percentiles(millis);
        Ok(Latency {
            repositories: PACED_REPOSITORIES,
            p50_ms,
            p95_ms,
            max_ms,
        })
    }

    /// The cost table: for each size, a fresh operator that serves only that size's shard (its
    /// Registry and Repositories carry the shard label; earlier sizes' objects stay, unserved)
    /// converges that many new Repositories, one per namespace, with as many namespaces in the
    /// cluster. The bench's own operator is stopped first and stays stopped.
    async fn scale(&mut self, sizes: &[usize]) -> Res<Vec<ScaleRow>> {
        self.stop_operator();
        let ticks = clock_ticks()?;
        let mut namespaces = 0;
        let mut rows = Vec::new();
        for &n in sizes {
            let start = Instant::now();
            futures::stream::iter(namespaces..n)
                .map(|i| {
                    let client = self.client.clone();
                    async move { create_namespace(&client, &format!("scale-{i:05}"), BTreeMap::new()).await }
                })
                .buffer_unordered(32)
                .try_collect::<Vec<_>>()
                .await?;
            namespaces = namespaces.max(n);
            eprintln!(
                "bench: {namespaces} scale namespaces ready in {:?}",
                start.elapsed()
            );
            let shard = format!("scale-{n}");
            let selector = format!("{SHARD_LABEL}={shard}");
            let registry = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
                "metadata": {"name": shard, "labels": {SHARD_LABEL: shard}},
                "spec": {"region": "us-east-1", "endpoint": self.proxy.endpoint}});
            apply_document(&self.client, "", &registry, MANAGER)
                .await
                .map_err(err)?;
            let docs: Vec<_> = (0..n)
                .map(|i| {
                    let ns = format!("scale-{i:05}");
                    let name = format!("s{n}");
                    let doc = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
                        "metadata": {"name": name, "labels": {SHARD_LABEL: shard}},
                        "spec": {"name": format!("{ns}/{name}"), "registryRef": {"name": shard}}});
                    (ns, doc)
                })
                .collect();
            let keys: Vec<String> = docs.iter().map(|(ns, _)| format!("{ns}/s{n}")).collect();
            self.start_operator_with(&[
                "--watch-label-selector",
                &selector,
                "--ecr-rate-limit",
                "1000",
                "--ecr-burst",
                "1000",
            ])?;
            self.proxy.clear();
            let writes_before = self.kubernetes_writes();
            let start = Instant::now();
            apply_all(&self.client, docs).await?;
            let seen = &self.seen;
            let converged = wait_until(
                &format!("{n} Repositories Ready"),
                Duration::from_secs(3600),
                || {
                    seen.lock()
                        .is_ok_and(|s| keys.iter().all(|k| s.ready_at.contains_key(k)))
                },
            )
            .await;
            let all_ready = start.elapsed();
            converged?;
            tokio::time::sleep(Duration::from_secs(10)).await;
            let op = self.op()?;
            let cpu_seconds = cpu_seconds(op, ticks)?;
            let peak_rss_mib = peak_rss_mib(op)?;
            let ecr_calls = ecr_calls(&self.proxy);
            let kubernetes_writes = self.kubernetes_writes() - writes_before;
            let total: u64 = ecr_calls.values().sum();
            let row = ScaleRow {
                repositories: n,
                namespaces,
                all_ready_seconds: all_ready.as_secs_f64(),
                ecr_calls_per_repository: total as f64 / n as f64,
                ecr_calls,
                kubernetes_writes,
                kubernetes_writes_per_repository: kubernetes_writes as f64 / n as f64,
                cpu_seconds,
                peak_rss_mib,
            };
            eprintln!("bench: scale {}", json_text(&row));
            rows.push(row);
            self.stop_operator();
        }
        Ok(rows)
    }
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`), the unit of `/proc/<pid>/stat`'s
/// CPU times.
fn clock_ticks() -> Res<f64> {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .map_err(err)?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("getconf CLK_TCK: {e}"))
}

/// The operator's user + system CPU seconds so far (`/proc/<pid>/stat`, fields 14 and 15).
fn cpu_seconds(op: &Operator, ticks: f64) -> Res<f64> {
    let pid = op.pid().ok_or("no operator pid")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(err)?;
    // The command name (field 2) may hold spaces; the fields after its `)` are fixed.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> Res<f64> {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {n}"))
    };
    Ok((field(14)? + field(15)?) / ticks)
}

fn scale_sizes() -> Res<Vec<usize>> {
    match std::env::var("BENCH_SCALE") {
        Ok(v) => v
            .split(',')
            .map(|n| n.trim().parse().ok().filter(|n| *n > 0))
            .collect::<Option<Vec<usize>>>()
            .filter(|sizes| sizes.is_sorted())
            .ok_or_else(|| format!("BENCH_SCALE: {v:?} is not increasing positive numbers, comma-separated")),
        Err(_) => Ok(SCALE_SIZES.to_vec()),
    }
}

/// p50, p95 and max of `millis` (nearest rank); NaN when empty.
fn percentiles(mut millis: Vec<f64>) -> (f64, f64, f64) {
    if millis.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    millis.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        millis[((millis.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(millis.len() - 1)]
    };
    (pct(0.5), pct(0.95), pct(1.0))
}

/// The scenarios `BENCH_SCENARIOS` names (all by default), checked against what each needs.
fn selected_scenarios() -> Res<Vec<&'static str>> {
    let Ok(list) = std::env::var("BENCH_SCENARIOS") else {
        return Ok(SCENARIOS.to_vec());
    };
    let mut chosen = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let known = SCENARIOS.iter().find(|s| **s == name).ok_or_else(|| {
            format!(
                "BENCH_SCENARIOS: unknown scenario {name:?} (known: {})",
                SCENARIOS.join(", ")
            )
        })?;
        chosen.push(*known);
    }
    // The resyncs of steady-state and memory wait for the 1,000 Repositories of cold-converge;
    // memory counts the namespaces of fan-out.
    for (needs, needed) in [
        ("steady-state", "cold-converge"),
        ("fan-out", "cold-converge"),
        ("memory", "cold-converge"),
        ("memory", "fan-out"),
    ] {
        if chosen.contains(&needs) && !chosen.contains(&needed) {
            return Err(format!("BENCH_SCENARIOS: {needs} needs {needed}"));
        }
    }
    Ok(SCENARIOS.iter().copied().filter(|s| chosen.contains(s)).collect())
}

fn resync_repositories() -> Res<usize> {
    match std::env::var("BENCH_RESYNC_REPOSITORIES") {
        Ok(v) => v
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("BENCH_RESYNC_REPOSITORIES: {v:?} is not a positive number")),
        Err(_) => Ok(RESYNC_REPOSITORIES),
    }
}

/// The pull Secrets' resource versions, and how many changes the watch saw.
#[derive(Default)]
struct SecretWrites {
    versions: HashMap<String, String>,
    writes: u64,
}

/// Counts every change to the operator's Secrets (by its managed-by label).
fn watch_secret_writes(secrets: Api<Secret>) -> Arc<Mutex<SecretWrites>> {
    let secret_writes = Arc::new(Mutex::new(SecretWrites::default()));
    let w = secret_writes.clone();
    let config = watcher::Config::default().labels("app.kubernetes.io/managed-by=ecr-operator");
    tokio::spawn(async move {
        let stream = watcher(secrets, config).default_backoff();
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) = event
                && let Ok(mut w) = w.lock()
            {
                let rv = s.metadata.resource_version.clone().unwrap_or_default();
                let k = format!(
                    "{}/{}",
                    s.metadata.namespace.clone().unwrap_or_default(),
                    s.metadata.name.clone().unwrap_or_default()
                );
                if w.versions.insert(k, rv.clone()).as_ref() != Some(&rv) {
                    w.writes += 1;
                }
            }
        }
    });
    secret_writes
}

async fn run() -> Res<()> {
    let bin = std::env::var_os("ECR_OPERATOR_BIN")
        .ok_or("ECR_OPERATOR_BIN is not set (run `cargo xtask bench`)")?;
    let scenarios = selected_scenarios()?;
    let resync_n = resync_repositories()?;
    let sizes = scale_sizes()?;
    let runs = |name: &str| scenarios.contains(&name);
    let started = Instant::now();
    let mut bench = Bench::start(bin.into()).await?;

    // Each selected scenario, in order: its result, also printed as it completes.
    macro_rules! scenario {
        ($name:literal, $run:expr) => {
            if runs($name) {
                let result = $run.await?;
                eprintln!("bench: {} {}", $name, json_text(&result));
                Some(result)
            } else {
                None
            }
        };
    }
    let cold_converge = scenario!("cold-converge", bench.cold_converge());
    let steady_state = scenario!("steady-state", bench.steady_state());
    let fan_out = scenario!("fan-out", bench.fan_out());
    // Memory measures the operator that resynced after the fan-out; otherwise restart it now.
    if fan_out.is_some() && !runs("memory") {
        bench.settle().await?;
    }
    let memory = scenario!("memory", bench.memory());
    let latency = scenario!("latency", bench.latency());
    let paced_latency = scenario!("paced-latency", bench.paced_latency());
    let lifecycle_policy = scenario!("lifecycle-policy", bench.lifecycle_policy());
    let protection = scenario!("protection", bench.protection());
    let resync_latency = scenario!("resync-latency", bench.resync_latency(resync_n));
    let scale = if runs("scale") {
        bench.scale(&sizes).await?
    } else {
        Vec::new()
    };

    let report = BenchReport {
        date: timestamp(),
        machine: machine(),
        operator: OperatorBuild {
            build: "release",
            version: env!("CARGO_PKG_VERSION"),
            flags: "defaults (--ecr-rate-limit 20, --ecr-burst 40, --concurrency 4, --repository-cache-ttl 60s)",
            env: std::env::var("MALLOC_ARENA_MAX")
                .map(|v| format!("MALLOC_ARENA_MAX={v}"))
                .unwrap_or_default(),
            binary: std::env::var("BENCH_OPERATOR_LABEL").unwrap_or_default(),
        },
        scenarios,
        cold_converge,
        steady_state,
        fan_out,
        memory,
        latency,
        lifecycle_policy,
        protection,
        resync_latency,
        paced_latency,
        scale,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    write_results(&report)?;
    bench.stop_operator();
    Ok(())
}

async fn create_namespace(client: &kube::Client, name: &str, labels: BTreeMap<String, String>) -> Res<()> {
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).map_err(err)?;
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(err(e)),
    }
}

fn timestamp() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H-%M"])
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

fn machine() -> Machine {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0.0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    Machine {
        cores,
        memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        cpu,
    }
}

fn write_results(report: &BenchReport) -> Res<()> {
    let dir = repo_root().join("bench/results");
    std::fs::create_dir_all(&dir).map_err(err)?;
    let json_path = dir.join(format!("{}.json", report.date));
    // Through a Value: its keys are sorted, as in the earlier result files.
    let json = serde_json::to_value(report).map_err(err)?;
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&json).map_err(err)? + "\n",
    )
    .map_err(err)?;
    let md = report.to_string();
    std::fs::write(dir.join(format!("{}.md", report.date)), &md).map_err(err)?;
    println!("{md}");
    eprintln!("bench: wrote {} and .md", display(&json_path));
    Ok(())
}

fn display(p: &Path) -> String {
    p.strip_prefix(repo_root()).unwrap_or(p).display().to_string()
}

fn calls_text(calls: &EcrCalls) -> String {
    calls
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The markdown report.
impl std::fmt::Display for BenchReport {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.machine;
        // `{:?}` prints memory_gib as the JSON has it (`24.0`, not `24`).
        write!(
            out,
            "# ecr-operator bench {}\n\nMachine: {} cores, {:?} GiB ({}). Release build, default flags, {} (as the image and chart set); ECR is moto behind a counting proxy (calls counted there, not by the operator), Kubernetes is the test control plane (kube-apiserver + etcd on the same machine).\n\n",
            self.date, m.cores, m.memory_gib, m.cpu, self.operator.env
        )?;
        if !self.operator.binary.is_empty() {
            writeln!(out, "Operator: {}.\n", self.operator.binary)?;
        }
        writeln!(out, "| scenario | measurement | value |\n| --- | --- | --- |")?;
        let mut row = |a: &str, b: &str, v: String| writeln!(out, "| {a} | {b} | {v} |");
        if let Some(c) = &self.cold_converge {
            row(
                "cold converge (1,000 Repositories applied at once)",
                "all Ready after",
                format!(
                    "{:.1} s (apply took {:.1} s)",
                    c.all_ready_seconds, c.apply_seconds
                ),
            )?;
            row("", "ECR calls", calls_text(&c.ecr_calls))?;
            row(
                "",
                "Kubernetes writes (changes to the Repositories)",
                c.kubernetes_writes.to_string(),
            )?;
        }
        if let Some(s) = &self.steady_state {
            row(
                "steady state (one full drift-check cycle of the 1,000 after a restart, --default-interval 60s)",
                "ECR calls",
                calls_text(&s.ecr_calls),
            )?;
            row(
                "",
                "ECR writes / Kubernetes writes",
                format!("{} / {}", s.ecr_writes, s.kubernetes_writes),
            )?;
            row(
                "",
                "DescribeRepositories per Repository",
                format!("{:.3}", s.describe_repositories_per_repository),
            )?;
            row("", "resync took", format!("{:.1} s", s.resync_seconds))?;
        }
        if let Some(f) = &self.fan_out {
            row(
                "fan-out (ClusterPullSecret, 1,000 namespaces)",
                "token calls",
                f.token_calls.to_string(),
            )?;
            row("", "Secret writes", f.secret_writes.to_string())?;
            row(
                "",
                "every Secret exists after",
                format!("{:.1} s", f.seconds_until_every_secret_exists),
            )?;
            row(
                "",
                "next resync: Secret writes / token calls",
                format!("{} / {}", f.resync_secret_writes, f.resync_token_calls),
            )?;
        }
        if let Some(mem) = &self.memory {
            row(
                "memory (1,000 Repositories, 1,010 namespaces)",
                "peak RSS without unrelated Secrets",
                format!("{:.1} MiB", mem.peak_rss_mib_without_unrelated_secrets),
            )?;
            row(
                "",
                "peak RSS with 20,000 unrelated Secrets",
                format!("{:.1} MiB", mem.peak_rss_mib_with_unrelated_secrets),
            )?;
        }
        if let Some(l) = &self.latency {
            row(
                "latency (100 Repositories applied one after another)",
                "apply -> Ready p50 / p95 / max",
                format!("{:.0} / {:.0} / {:.0} ms", l.p50_ms, l.p95_ms, l.max_ms),
            )?;
        }
        if let Some(lp) = &self.lifecycle_policy {
            row(
                "lifecycle policy (one LifecyclePolicy over 500 Ready Repositories)",
                "Ready after / ECR quiet after",
                format!("{:.1} s / {:.1} s", lp.ready_seconds, lp.settled_seconds),
            )?;
            row("", "ECR calls until quiet", calls_text(&lp.ecr_calls))?;
            row(
                "",
                "policy reconciles / policy calls per reconcile",
                format!("{} / {:.0}", lp.policy_reconciles, lp.policy_calls_per_reconcile),
            )?;
            row(
                "",
                "Repository reads it caused (ListTagsForResource)",
                lp.repository_reads.to_string(),
            )?;
        }
        if let Some(p) = &self.protection {
            protection::rows(p, &mut row, calls_text)?;
        }
        if let Some(r) = &self.resync_latency {
            row(
                &format!(
                    "resync latency ({} new Repositories applied one every {} ms while {} resync, --default-interval {} s)",
                    r.applied, r.apply_every_ms, r.repositories_total, r.default_interval_seconds
                ),
                "apply -> Ready p50 / p95 / max",
                format!("{:.0} / {:.0} / {:.0} ms", r.p50_ms, r.p95_ms, r.max_ms),
            )?;
            row(
                "",
                "window (operator start to the last new one Ready)",
                format!("{:.1} s", r.window_seconds),
            )?;
            row("", "ECR calls in the window", calls_text(&r.ecr_calls))?;
            row(
                "",
                "time waited on the ECR budget, by lane",
                if r.lane_wait_seconds.is_empty() {
                    "(no lanes)".to_owned()
                } else {
                    r.lane_wait_seconds
                        .iter()
                        .map(|(k, v)| format!("{k} {v:.1} s"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            )?;
            row(
                "",
                "set-up (not measured further)",
                format!("{:.0} s", r.setup_seconds),
            )?;
        }
        if let Some(l) = &self.paced_latency {
            row(
                &format!(
                    "paced latency ({} Repositories, each applied once the previous is Ready)",
                    l.repositories
                ),
                "apply -> Ready p50 / p95 / max",
                format!("{:.0} / {:.0} / {:.0} ms", l.p50_ms, l.p95_ms, l.max_ms),
            )?;
        }
        if !self.scale.is_empty() {
            writeln!(
                out,
                "\nCost table: per size, a fresh operator with its defaults but `--ecr-rate-limit 1000 --ecr-burst 1000` (so moto and the operator are measured, not the ECR budget) converges that many new Repositories, one per namespace, with as many namespaces in the cluster; CPU time and peak RSS are the operator's from its start until 10 s after the last was Ready.\n"
            )?;
            writeln!(
                out,
                "| Repositories | namespaces | all Ready after | ECR calls (per Repository) | Kubernetes writes (per Repository) | CPU | peak RSS |\n| --- | --- | --- | --- | --- | --- | --- |"
            )?;
            for r in &self.scale {
                writeln!(
                    out,
                    "| {} | {} | {:.1} s | {} ({:.2}) | {} ({:.2}) | {:.1} s | {:.1} MiB |",
                    r.repositories,
                    r.namespaces,
                    r.all_ready_seconds,
                    calls_text(&r.ecr_calls),
                    r.ecr_calls_per_repository,
                    r.kubernetes_writes,
                    r.kubernetes_writes_per_repository,
                    r.cpu_seconds,
                    r.peak_rss_mib
                )?;
            }
        }
        write!(out, "\nTotal bench time: {:.0} s.\n", self.total_seconds)
    }
}
