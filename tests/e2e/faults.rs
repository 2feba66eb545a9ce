//! The fault suite: each scenario disturbs a mass create, then checks that every object
//! converged and nothing was lost or duplicated (exactly one ECR repository per Repository, with
//! its owner tag; none orphaned; none stuck). Each prints (and, under `cargo xtask test`, reports)
//! how long it took. Leader failover is
//! `leader::a_leader_killed_mid_create_hands_over_without_duplicate_repositories`.
//!
//! Every scenario runs alone (`OperatorEnv::start_exclusive`, `one_operator`): two of them
//! restart an API server, and the times they report are of the scenario, not of its neighbours.

use std::path::Path;
use std::time::{Duration, Instant};

use ecr_operator::api::OWNER_TAG;
use ecr_operator::api::v1alpha1::Repository;
use ecr_operator_testenv::{ControlPlane, FaultPlan, FaultProxy, Moto, Operator};
use kube::api::Api;
use serde_json::{Value, json};

use crate::harness::env::{CLUSTER_ID, OperatorEnv, one_operator, tail};
use crate::harness::wait;
use crate::support::{apply, eventually, temp_namespace};

/// Prints a scenario's timing and appends it to `$ECR_OPERATOR_FAULT_REPORT` (set by
/// `cargo xtask test`, which prints the file after the run).
pub fn report(scenario: &str, elapsed: Duration, detail: &str) {
    let line = format!(
        "fault {scenario}: converged in {:.1}s ({detail})",
        elapsed.as_secs_f64()
    );
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("ECR_OPERATOR_FAULT_REPORT") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Waits until `n` CreateRepository calls reached ECR: the mass create is under way.
pub async fn creates_under_way(proxy: &FaultProxy, n: usize) {
    eventually(Duration::from_secs(60), "the first creates", || async {
        (proxy.forwarded("CreateRepository") >= n).then_some(())
    })
    .await;
}

/// The `i`th Repository of a mass create in `ns` on `registry`.
fn repository(ns: &str, registry: &str, i: usize) -> Value {
    json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": format!("r{i:02}")},
        "spec": {"registryRef": {"name": registry}, "name": format!("{ns}/r{i:02}")}})
}

/// A mass create of `n` Repositories in `ns`, for an operator without a label selector.
pub async fn create_repositories(client: &kube::Client, ns: &str, registry: &str, n: usize) {
    for i in 0..n {
        apply(client, ns, &repository(ns, registry, i)).await.unwrap();
    }
}

/// A mass create of `n` Repositories in `ns` on the env's Registry, in the env's shard.
pub async fn create_env_repositories(env: &OperatorEnv, ns: &str, n: usize) {
    for i in 0..n {
        env.apply(ns, &repository(ns, &env.registry, i)).await.unwrap();
    }
}

/// Waits until all `n` Repositories of `ns` are observed, Ready and Current (kstatus); panics
/// with the stragglers.
pub async fn wait_all_current(
    client: &kube::Client,
    ns: &str,
    n: usize,
    limit: Duration,
    log: impl Fn() -> String,
) {
    let api: Api<Repository> = Api::namespaced(client.clone(), ns);
    wait::wait_all_current(&api, n, limit, log).await;
}

/// Exactly one ECR repository per Repository of `ns`, each with its owner tag; no other.
pub async fn assert_exactly_once(ecr: &aws_sdk_ecr::Client, ns: &str, n: usize) {
    let listed = ecr
        .describe_repositories()
        .max_results(1000)
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = listed
        .repositories()
        .iter()
        .filter_map(|r| r.repository_name())
        .filter(|name| name.starts_with(&format!("{ns}/")))
        .map(str::to_owned)
        .collect();
    names.sort();
    let expected: Vec<String> = (0..n).map(|i| format!("{ns}/r{i:02}")).collect();
    assert_eq!(
        names, expected,
        "one ECR repository per Repository, none orphaned"
    );
    for (i, repo) in listed
        .repositories()
        .iter()
        .filter(|r| {
            r.repository_name()
                .is_some_and(|x| x.starts_with(&format!("{ns}/")))
        })
        .enumerate()
    {
        let arn = repo.repository_arn().unwrap();
        let tags = ecr
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap();
        let owner = tags
            .tags()
            .iter()
            .find(|t| t.key() == OWNER_TAG)
            .map(|t| t.value().to_owned());
        let name = repo.repository_name().unwrap();
        let object = name.rsplit('/').next().unwrap();
        assert!(
            owner.is_some_and(|o| o.ends_with(&format!("/{ns}/{object}"))),
            "repository {i} ({name}) lacks its owner tag"
        );
    }
}

#[tokio::test]
async fn ecr_unreachable_for_thirty_seconds_mid_create() {
    const N: usize = 20;
    let env = OperatorEnv::start_exclusive("e2e-unreachable", &[]).await;
    let ns = temp_namespace(&env.client, "unreachable").await;
    env.wait_registry_ready().await;
    create_env_repositories(&env, &ns, N).await;
    creates_under_way(&env.proxy, 3).await;
    // Every connection to ECR is dropped for 30 s.
    env.proxy.set_plan(FaultPlan {
        drop_percent: 100,
        ..FaultPlan::default()
    });
    let outage = Instant::now();
    let api: Api<Repository> = Api::namespaced(env.client.clone(), &ns);
    let mut retrying = 0;
    while outage.elapsed() < Duration::from_secs(30) {
        let list = api.list(&Default::default()).await.unwrap().items;
        for r in &list {
            let s = r.status.clone().unwrap_or_default();
            assert!(
                !s.conditions
                    .iter()
                    .any(|c| c.type_ == "Stalled" && c.status == "True"),
                "an unreachable ECR is transient, never Stalled: {:?}",
                s.conditions
            );
        }
        retrying = retrying.max(
            list.iter()
                .filter(|r| {
                    r.status
                        .as_ref()
                        .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "ProgressingWithRetry"))
                })
                .count(),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    env.proxy.set_plan(FaultPlan::default());
    let restored = Instant::now();
    wait_all_current(&env.client, &ns, N, Duration::from_secs(180), || env.logs()).await;
    assert!(retrying > 0, "the outage showed as ProgressingWithRetry");
    assert_exactly_once(&env.ecr, &ns, N).await;
    report(
        "ecr-unreachable-30s",
        restored.elapsed(),
        &format!(
            "{N} repositories; {retrying} showed ProgressingWithRetry during the outage; time after ECR came back"
        ),
    );
}

#[tokio::test]
async fn operator_killed_mid_create_and_restarted() {
    const N: usize = 30;
    let mut env = OperatorEnv::start_exclusive("e2e-sigkill", &[]).await;
    let ns = temp_namespace(&env.client, "sigkill").await;
    env.wait_registry_ready().await;
    create_env_repositories(&env, &ns, N).await;
    creates_under_way(&env.proxy, 5).await;
    env.operator.as_ref().unwrap().signal("KILL");
    let killed = Instant::now();
    let created_before = env.proxy.forwarded("CreateRepository");
    env.stop_operator();
    env.start_operator();
    wait_all_current(&env.client, &ns, N, Duration::from_secs(120), || env.logs()).await;
    assert_exactly_once(&env.ecr, &ns, N).await;
    report(
        "operator-sigkill",
        killed.elapsed(),
        &format!("{N} repositories, {created_before} created before SIGKILL; time from the kill"),
    );
}

/// A control plane of its own (a restart must not disturb the other tests), with the CRDs,
/// moto behind a proxy, a Registry, and the operator.
struct Isolated {
    cp: ControlPlane,
    client: kube::Client,
    moto: Moto,
    proxy: FaultProxy,
    operator: Operator,
}

impl Isolated {
    async fn start() -> Self {
        let cp = ControlPlane::start().unwrap();
        cp.install_crds().await.unwrap();
        let client = cp.client().await.unwrap();
        let moto = Moto::start().unwrap();
        let proxy = FaultProxy::start(&moto.endpoint).unwrap();
        let registry = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
            "metadata": {"name": "default"}, "spec": {"region": "us-east-1", "endpoint": proxy.endpoint}});
        apply(&client, "", &registry).await.unwrap();
        let bin = Path::new(env!("CARGO_BIN_EXE_ecr-operator"));
        let args = [
            "--cluster-id",
            CLUSTER_ID,
            "--log-filter",
            "info,ecr_operator=debug,kube_runtime=debug",
        ];
        let operator = Operator::start(bin, &cp, &moto.endpoint, &args).unwrap();
        Self {
            cp,
            client,
            moto,
            proxy,
            operator,
        }
    }

    async fn namespace(&self, prefix: &str) -> String {
        temp_namespace(&self.client, prefix).await
    }
}

#[tokio::test]
async fn api_server_restarted_mid_create() {
    const N: usize = 30;
    let _serial = one_operator().await;
    let mut env = Isolated::start().await;
    let ns = env.namespace("apiserver").await;
    create_repositories(&env.client, &ns, "default", N).await;
    creates_under_way(&env.proxy, 5).await;
    let start = Instant::now();
    let down = env.cp.restart_apiserver().unwrap();
    // A client bound to the old connection pool is fine; kube reconnects.
    wait_all_current(&env.client, &ns, N, Duration::from_secs(120), || {
        env.operator.logs()
    })
    .await;
    assert_exactly_once(&env.moto.ecr_client("us-east-1"), &ns, N).await;
    report(
        "apiserver-restart",
        start.elapsed(),
        &format!(
            "{N} repositories; kube-apiserver was gone for {:.1}s; time from the restart",
            down.as_secs_f64()
        ),
    );
}

#[tokio::test]
async fn etcd_compaction_forces_watches_to_relist() {
    const N: usize = 10;
    let _serial = one_operator().await;
    let mut env = Isolated::start().await;
    let first = env.namespace("compaction").await;
    create_repositories(&env.client, &first, "default", N).await;
    wait_all_current(&env.client, &first, N, Duration::from_secs(60), || {
        env.operator.logs()
    })
    .await;

    // History up to now is compacted; the restarted API server's watch cache starts at the
    // current revision, so every watch resuming from an older resourceVersion gets 410 Gone.
    let revision = env.cp.compact_etcd().unwrap();
    let start = Instant::now();
    env.cp.restart_apiserver().unwrap();
    // Changes made after the compaction are seen only through the re-list.
    let second = env.namespace("after-compaction").await;
    create_repositories(&env.client, &second, "default", N).await;
    wait_all_current(&env.client, &second, N, Duration::from_secs(120), || {
        env.operator.logs()
    })
    .await;
    assert_exactly_once(&env.moto.ecr_client("us-east-1"), &first, N).await;
    assert_exactly_once(&env.moto.ecr_client("us-east-1"), &second, N).await;
    let logs = env.operator.logs();
    let gone = logs
        .lines()
        .filter(|l| l.contains("too old resource version") || l.contains("code: 410"))
        .count();
    assert!(
        gone > 0,
        "the watches saw 410 Gone and re-listed:\n{}",
        tail(&logs, 40)
    );
    if let Some(example) = logs.lines().find(|l| l.contains("too old resource version")) {
        eprintln!("example: {}", example.chars().take(600).collect::<String>());
    }
    report(
        "etcd-compaction",
        start.elapsed(),
        &format!(
            "compacted at revision {revision}; {gone} log lines show 410 Gone and a re-list; {N} new repositories after it"
        ),
    );
}

#[tokio::test]
async fn ecr_throttling_storm_mid_create() {
    const N: usize = 30;
    let env = OperatorEnv::start_exclusive("e2e-storm", &[]).await;
    let ns = temp_namespace(&env.client, "storm").await;
    env.wait_registry_ready().await;
    // For 20 s, 60 % of ECR calls are answered with ThrottlingException.
    env.proxy.set_plan(FaultPlan {
        throttle_percent: 60,
        ..FaultPlan::default()
    });
    let start = Instant::now();
    create_env_repositories(&env, &ns, N).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    env.proxy.set_plan(FaultPlan::default());
    let throttled = env.proxy.calls().iter().filter(|c| c.injected.is_some()).count();
    wait_all_current(&env.client, &ns, N, Duration::from_secs(180), || env.logs()).await;
    assert!(throttled > 0, "the storm throttled calls");
    assert_exactly_once(&env.ecr, &ns, N).await;
    report(
        "throttling-storm",
        start.elapsed(),
        &format!(
            "{N} repositories; {throttled} calls throttled during 20 s at 60 %; time from the first apply"
        ),
    );
}
