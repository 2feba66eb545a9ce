//! The chart installed for real: `helm install` of `charts/ecr-operator` into a control plane
//! with one Node (`testcluster-node up --with-node`: kube-scheduler, containerd, the kubelet),
//! the operator's image from `cargo xtask image` imported into containerd without a registry.
//! The Pod is scheduled, runs as 65532 on a read-only root filesystem, becomes Ready through its
//! own readiness probe, talks to the API server through the in-cluster configuration (its
//! ServiceAccount token and `KUBERNETES_SERVICE_HOST/PORT`) and brings a Repository to Ready
//! against moto, which it reaches through the node's Pod gateway. Then two replicas with leader
//! election, a failover when the leader Pod is deleted, a rolling `helm upgrade` without a
//! duplicate ECR create, the Lease released on the kubelet's SIGTERM, eviction held by the
//! PodDisruptionBudget, IRSA and EKS Pod Identity inside the Pod (the latter through the
//! project's stand-in for the agent, reached at 169.254.170.23 as on EKS), and `helm uninstall`
//! leaving the CRDs and the ECR repositories.
//!
//! Needs root (containerd, runc, the bridge). Ignored in the ordinary run; `cargo xtask test`
//! runs it as its own step, and `cargo xtask node` alone (`--include-ignored`). One node cluster
//! per machine at a time (tests/testcluster/README.md, "The node").

// Test code: helpers may unwrap (the standard forbids unwrap outside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ecr_operator::api::v1alpha1::Registry;
use ecr_operator_testenv::chart::{RELEASE, RELEASE_NAMESPACE, helm, run_output};
use ecr_operator_testenv::{
    ControlPlane, FaultProxy, Moto, PodIdentityAgent, TokenCheck, repo_root, token_fingerprint,
};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    EnvVar, Node, Pod, ProjectedVolumeSource, ServiceAccountTokenProjection, Volume, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, PostParams};
use kube::runtime::watcher;

/// The chart's default image repository: `ctr images import --base-name` names the image
/// `<this>:<version>`, the chart's default reference.
const IMAGE_REPOSITORY: &str = "ghcr.io/ecr-operator/ecr-operator";
const LEASE: &str = "ecr-operator-leader";
const SELECTOR: &str = "app.kubernetes.io/name=ecr-operator";

/// A Lease write seen by the watch: when, and who held it (none: released).
type Holder = (Duration, Option<String>);

/// `$ECR_OPERATOR_IMAGE`, or a fresh `cargo xtask image`.
fn image_archive() -> PathBuf {
    if let Some(p) = std::env::var_os("ECR_OPERATOR_IMAGE") {
        return PathBuf::from(p);
    }
    eprintln!("ECR_OPERATOR_IMAGE is not set: building the image with `cargo xtask image`");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["xtask", "image"])
        .current_dir(repo_root())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo xtask image failed");
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .trim(),
    )
}

fn kubectl(cp: &ControlPlane, args: &[&str]) -> String {
    run_output(cp.kubectl().args(args), &format!("kubectl {}", args.join(" "))).unwrap()
}

/// Polls `check` every 250 ms until it returns `Some`, failing after `timeout` with `what` and
/// the node's logs.
async fn eventually<T, F, Fut>(cp: &ControlPlane, timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            let pods = cp
                .kubectl()
                .args(["get", "pods,events", "-A", "-o", "wide"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{pods}\n{}",
                cp.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The operator Pods that are Ready, by name.
async fn ready_pods(pods: &Api<Pod>) -> Vec<String> {
    let list = pods.list(&ListParams::default().labels(SELECTOR)).await.unwrap();
    list.items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|p| p.metadata.name)
        .collect()
}

/// Waits (at most 180 s) until exactly two operator Pods exist, both Ready and none of
/// `before`: a rollout has replaced them all.
async fn wait_replaced(cp: &ControlPlane, pods: &Api<Pod>, before: &[String], what: &str) {
    eventually(cp, Duration::from_secs(180), what, || async {
        let r = ready_pods(pods).await;
        let all = pods
            .list(&ListParams::default().labels(SELECTOR))
            .await
            .unwrap()
            .items
            .len();
        (r.len() == 2 && all == 2 && r.iter().all(|p| !before.contains(p))).then_some(())
    })
    .await;
}

async fn lease_holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

/// The host pid of a Pod's first container, from containerd (`ctr task ls`).
fn container_pid(cp: &ControlPlane, pod: &Pod) -> u32 {
    let id = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .and_then(|c| c.container_id.clone())
        .unwrap();
    let id = id.strip_prefix("containerd://").unwrap().to_owned();
    let out = run_output(cp.ctr().unwrap().args(["task", "ls"]), "ctr task ls").unwrap();
    out.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(id.as_str())).then(|| f.next().unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("container {id} not in ctr task ls:\n{out}"))
}

/// The ECR repositories moto holds, by name.
async fn ecr_repositories(moto: &Moto) -> Vec<String> {
    let out = moto
        .ecr_client("us-east-1")
        .describe_repositories()
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = out
        .repositories()
        .iter()
        .filter_map(|r| r.repository_name().map(str::to_owned))
        .collect();
    names.sort();
    names
}

fn repository(namespace: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n---\n\
         apiVersion: ecr-operator.dev/v1alpha1\nkind: Repository\nmetadata:\n  name: {name}\n  namespace: {namespace}\n\
         spec:\n  name: {namespace}/{name}\n"
    )
}

fn apply(cp: &ControlPlane, yaml: &str) {
    let path = cp.dir.join(format!("apply-{}.yaml", yaml.len()));
    std::fs::write(&path, yaml).unwrap();
    kubectl(cp, &["apply", "-f", &path.to_string_lossy()]);
}

#[tokio::test]
#[ignore = "node mode: needs root and a Node; cargo xtask test runs it as its own step (--include-ignored)"]
async fn the_chart_runs_the_operator_image_on_a_real_node() {
    let archive = image_archive();
    let start = Instant::now();
    let cp = ControlPlane::start_with_node().unwrap();
    let node = cp.node.clone().unwrap();
    eprintln!("[node] control plane and Node Ready in {:?}", start.elapsed());
    let admin = cp.client().await.unwrap();
    let ready = Api::<Node>::all(admin.clone()).get(&node.name).await.unwrap();
    let conditions = ready.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        "{conditions:?}"
    );

    let t = Instant::now();
    let imported = cp.import_image(&archive, IMAGE_REPOSITORY).unwrap();
    eprintln!("[node] image imported in {:?}: {}", t.elapsed(), imported.trim());
    let version = env!("CARGO_PKG_VERSION");
    let images = run_output(cp.ctr().unwrap().args(["images", "ls", "-q"]), "ctr images ls").unwrap();
    assert!(
        images
            .lines()
            .any(|l| l == format!("{IMAGE_REPOSITORY}:{version}")),
        "{images}"
    );

    // The operator reaches moto through a counting proxy, both on the host's 127.0.0.1, at the
    // Pod gateway's address.
    let moto = Moto::start().unwrap();
    let proxy = FaultProxy::start(&moto.endpoint).unwrap();
    let port = proxy.endpoint.rsplit(':').next().unwrap();
    let endpoint = format!("http://{}:{port}", node.pod_gateway);
    let values: Vec<(String, String)> = [
        ("image.pullPolicy", "Never"),
        ("env[0].name", "AWS_ACCESS_KEY_ID"),
        ("env[0].value", "test"),
        ("env[1].name", "AWS_SECRET_ACCESS_KEY"),
        ("env[1].value", "test"),
        ("env[2].name", "AWS_REGION"),
        ("env[2].value", "us-east-1"),
        ("env[3].name", "AWS_ENDPOINT_URL_STS"),
        ("env[3].value", endpoint.as_str()),
        ("env[4].name", "AWS_EC2_METADATA_DISABLED"),
        ("env[4].value", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let chart = repo_root().join("charts/ecr-operator");
    let mut install = helm(&cp).unwrap();
    install.args(["install", RELEASE]).arg(&chart).args([
        "--namespace",
        RELEASE_NAMESPACE,
        "--create-namespace",
    ]);
    for (k, v) in &values {
        install.args(["--set-string", &format!("{k}={v}")]);
    }
    let t = Instant::now();
    let notes = run_output(&mut install, "helm install").unwrap();
    assert!(notes.contains("STATUS: deployed"), "{notes}");

    // Scheduled on the node and Ready through its own readiness probe (/readyz).
    let pods: Api<Pod> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let first = eventually(
        &cp,
        Duration::from_secs(120),
        "the operator Pod to be Ready",
        || async { ready_pods(&pods).await.into_iter().next() },
    )
    .await;
    let install_to_ready = t.elapsed();
    eprintln!("[node] helm install -> Pod Ready: {install_to_ready:?}");
    let pod = pods.get(&first).await.unwrap();
    let spec = pod.spec.clone().unwrap();
    assert_eq!(spec.node_name.as_deref(), Some(node.name.as_str()));
    let container = &spec.containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some(format!("{IMAGE_REPOSITORY}:{version}").as_str())
    );
    assert_eq!(container.image_pull_policy.as_deref(), Some("Never"));
    assert!(
        container
            .readiness_probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .is_some_and(|h| h.path.as_deref() == Some("/readyz")),
        "{container:?}"
    );
    let pod_ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap();
    assert!(pod_ip.starts_with("10.213.0."), "a Pod network address: {pod_ip}");

    // As the kernel sees the container's process (containerd's pid): uid and gid 65532, root
    // file system mounted read-only, the in-cluster environment and no kubeconfig.
    let pid = container_pid(&cp, &pod);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    for key in ["Uid:", "Gid:"] {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        let ids: Vec<&str> = line.split_whitespace().skip(1).collect();
        assert_eq!(ids, ["65532"; 4], "{line}");
    }
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mountinfo
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap();
    let options = root.split_whitespace().nth(5).unwrap();
    assert!(options.split(',').any(|o| o == "ro"), "root mount: {root}");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect();
    assert!(
        environ.iter().any(|e| e == "KUBERNETES_SERVICE_HOST=10.0.0.1"),
        "{environ:?}"
    );
    assert!(
        environ.iter().any(|e| e == "KUBERNETES_SERVICE_PORT=443"),
        "{environ:?}"
    );
    assert!(
        !environ.iter().any(|e| e.starts_with("KUBECONFIG=")),
        "{environ:?}"
    );
    // From inside, through kubectl exec: the binary cannot write into / (read-only), and the
    // ServiceAccount token is mounted where the in-cluster configuration reads it.
    // The token volume exists and is read-only too.
    for dir in ["/", "/var/run/secrets/kubernetes.io/serviceaccount"] {
        let exec = cp
            .kubectl()
            .args([
                "exec",
                "-n",
                RELEASE_NAMESPACE,
                &first,
                "--",
                "/ecr-operator",
                "crd",
                "--out-dir",
                dir,
            ])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&exec.stderr);
        assert!(
            !exec.status.success() && said.contains("Read-only file system"),
            "writing into {dir}: {said}"
        );
    }
    let volumes = spec.volumes.clone().unwrap_or_default();
    assert!(
        volumes.iter().any(|v| v.name.starts_with("kube-api-access-")),
        "the ServiceAccount token is projected: {volumes:?}"
    );

    // A Repository to Ready against moto. The Registry is the test's own, not the chart's
    // defaultRegistry, so that helm uninstall leaves it (and its finalizer) alone.
    let t = Instant::now();
    apply(
        &cp,
        &format!(
            "apiVersion: ecr-operator.dev/v1alpha1\nkind: Registry\nmetadata:\n  name: default\n\
             spec:\n  region: us-east-1\n  endpoint: {endpoint}\n"
        ),
    );
    apply(&cp, &repository("node-shop", "web"));
    kubectl(
        &cp,
        &[
            "wait",
            "-n",
            "node-shop",
            "--for=condition=Ready",
            "repository/web",
            "--timeout=90s",
        ],
    );
    let repository_ready = t.elapsed();
    eprintln!("[node] Repository applied -> Ready: {repository_ready:?}");
    assert_eq!(ecr_repositories(&moto).await, ["node-shop/web"]);
    assert_eq!(proxy.forwarded("CreateRepository"), 1);

    // Two replicas: one leads, the other stands by through the Lease.
    let leases: Api<Lease> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let mut upgrade = helm(&cp).unwrap();
    upgrade.args(["upgrade", RELEASE]).arg(&chart).args([
        "--namespace",
        RELEASE_NAMESPACE,
        "--reuse-values",
        "--set",
        "replicaCount=2",
    ]);
    run_output(&mut upgrade, "helm upgrade --set replicaCount=2").unwrap();
    let two = eventually(
        &cp,
        Duration::from_secs(120),
        "two Ready operator Pods",
        || async {
            let r = ready_pods(&pods).await;
            (r.len() == 2).then_some(r)
        },
    )
    .await;
    let leader = eventually(
        &cp,
        Duration::from_secs(60),
        "a Lease holder among the Pods",
        || async { lease_holder(&leases).await.filter(|h| two.contains(h)) },
    )
    .await;
    let standby = two.iter().find(|p| **p != leader).unwrap().clone();
    eprintln!("[node] leader {leader}, standby {standby}");

    // Deleting the leader Pod: the kubelet sends SIGTERM, the operator releases the Lease, and
    // the standby takes over (a new Pod replaces the deleted one). A watch on the Lease sees
    // every write, the release (no holder) included, however quickly it is taken again.
    let seen: Arc<Mutex<Vec<Holder>>> = Arc::default();
    let t0 = Instant::now();
    let watch = {
        let seen = seen.clone();
        let config = watcher::Config::default().fields(&format!("metadata.name={LEASE}"));
        let stream = watcher::watcher(leases.clone(), config);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease)) = event {
                    let holder = lease
                        .spec
                        .and_then(|s| s.holder_identity)
                        .filter(|h| !h.is_empty());
                    seen.lock().unwrap().push((t0.elapsed(), holder));
                }
            }
        })
    };
    eventually(
        &cp,
        Duration::from_secs(10),
        "the Lease watch to start",
        || async { (!seen.lock().unwrap().is_empty()).then_some(()) },
    )
    .await;
    let deleted = t0.elapsed();
    pods.delete(&leader, &DeleteParams::default()).await.unwrap();
    let new_leader = eventually(
        &cp,
        Duration::from_secs(60),
        "another Ready Pod to take the Lease",
        // The standby, or the Pod that replaced the deleted one, whichever acquires it first.
        || async {
            let ready = ready_pods(&pods).await;
            lease_holder(&leases)
                .await
                .filter(|h| *h != leader && ready.contains(h))
        },
    )
    .await;
    let ready_leader = t0.elapsed() - deleted;
    watch.abort();
    let seen = seen.lock().unwrap().clone();
    let released_at = seen
        .iter()
        .position(|(_, h)| h.is_none())
        .unwrap_or_else(|| panic!("the Lease was never released (holders seen: {seen:?})"));
    assert_eq!(
        seen[..released_at].last().and_then(|(_, h)| h.clone()).as_deref(),
        Some(leader.as_str()),
        "the deleted leader released it: {seen:?}"
    );
    let released = seen[released_at].0 - deleted;
    let failover = seen[released_at..]
        .iter()
        .find(|(_, h)| h.as_deref() == Some(new_leader.as_str()))
        .map(|(at, _)| *at - deleted)
        .unwrap_or_else(|| panic!("{new_leader} never seen holding the Lease: {seen:?}"));
    let who = if new_leader == standby {
        "the standby"
    } else {
        "the replacement Pod"
    };
    eprintln!(
        "[node] leader Pod deleted -> Lease released {released:?}, taken by {who} {new_leader} {failover:?}, \
         which is Ready and leading at {ready_leader:?}; Lease writes seen: {seen:?}"
    );
    assert!(
        failover < Duration::from_secs(15),
        "taken over before the Lease would have expired (15 s): {failover:?}"
    );
    let t = Instant::now();
    apply(&cp, &repository("node-shop", "worker"));
    kubectl(
        &cp,
        &[
            "wait",
            "-n",
            "node-shop",
            "--for=condition=Ready",
            "repository/worker",
            "--timeout=90s",
        ],
    );
    eprintln!("[node] Repository after failover -> Ready: {:?}", t.elapsed());
    assert_eq!(proxy.forwarded("CreateRepository"), 2);

    // A rolling upgrade (a changed Pod template) creates nothing twice in ECR.
    eventually(
        &cp,
        Duration::from_secs(120),
        "two Ready operator Pods again",
        || async { (ready_pods(&pods).await.len() == 2).then_some(()) },
    )
    .await;
    let before: Vec<String> = ready_pods(&pods).await;
    let mut upgrade = helm(&cp).unwrap();
    upgrade.args(["upgrade", RELEASE]).arg(&chart).args([
        "--namespace",
        RELEASE_NAMESPACE,
        "--reuse-values",
        "--set",
        "podAnnotations.rollout=second",
    ]);
    let t = Instant::now();
    run_output(&mut upgrade, "helm upgrade (rolling)").unwrap();
    wait_replaced(&cp, &pods, &before, "the rollout to replace both Pods").await;
    let holder = eventually(
        &cp,
        Duration::from_secs(60),
        "a leader among the new Pods",
        || async {
            let r = ready_pods(&pods).await;
            lease_holder(&leases).await.filter(|h| r.contains(h))
        },
    )
    .await;
    eprintln!(
        "[node] rolling upgrade done in {:?}, leader {holder}",
        t.elapsed()
    );
    for name in ["web", "worker"] {
        kubectl(
            &cp,
            &[
                "wait",
                "-n",
                "node-shop",
                "--for=condition=Ready",
                &format!("repository/{name}"),
                "--timeout=60s",
            ],
        );
    }
    assert_eq!(
        proxy.forwarded("CreateRepository"),
        2,
        "no duplicate create across the rollout"
    );
    assert_eq!(
        ecr_repositories(&moto).await,
        ["node-shop/web", "node-shop/worker"]
    );

    // Eviction, as `kubectl drain` does it, respects the chart's PodDisruptionBudget (minAvailable
    // 1 with two replicas): one Pod may go, a second eviction is refused while the first one's
    // replacement is not Ready, and the refused Pod keeps running.
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    eventually(
        &cp,
        Duration::from_secs(60),
        "the PodDisruptionBudget to allow one disruption of two healthy Pods",
        || async {
            let list = pdbs.list(&ListParams::default()).await.ok()?;
            list.items.into_iter().find(|p| {
                p.status
                    .as_ref()
                    .is_some_and(|s| s.current_healthy == 2 && s.disruptions_allowed == 1)
            })
        },
    )
    .await;
    // A client that does not retry a 429 (kube's default client does, as `kubectl drain` does)
    // sees the refusal itself.
    let mut once = cp.config().await.unwrap();
    once.default_retry = false;
    let evict_once: Api<Pod> = Api::namespaced(kube::Client::try_from(once).unwrap(), RELEASE_NAMESPACE);
    let two = ready_pods(&pods).await;
    let t = Instant::now();
    evict_once.evict(&two[0], &EvictParams::default()).await.unwrap();
    match evict_once.evict(&two[1], &EvictParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 429, "{status:?}");
            assert!(status.message.contains("disruption budget"), "{status:?}");
        }
        other => panic!("the second eviction must be refused by the budget: {other:?}"),
    }
    let refused_at = t.elapsed();
    assert!(
        ready_pods(&pods).await.contains(&two[1]),
        "the refused Pod still runs"
    );
    // Retried as drain does, the eviction goes through once the first one's replacement is
    // Ready (two healthy Pods again), never before.
    pods.evict(&two[1], &EvictParams::default()).await.unwrap();
    let allowed_at = t.elapsed();
    let replacement_ready = ready_pods(&pods)
        .await
        .into_iter()
        .filter(|p| !two.contains(p))
        .count();
    assert!(replacement_ready >= 1, "evicted before a replacement was Ready");
    wait_replaced(&cp, &pods, &two, "both evicted Pods replaced").await;
    eprintln!(
        "[node] eviction: {} evicted, {} refused by the budget (429) at {refused_at:?}, evicted by a retrying client at {allowed_at:?} once a replacement was Ready; two new Ready Pods at {:?}",
        two[0],
        two[1],
        t.elapsed()
    );
    assert_eq!(proxy.forwarded("CreateRepository"), 2);

    // IRSA in the Pod. On EKS, the Pod Identity webhook injects into a Pod whose ServiceAccount
    // names a role: AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE and a projected ServiceAccount token
    // with audience sts.amazonaws.com, which the kubelet writes and rotates. No webhook runs
    // here, so the test puts exactly that into the Deployment's Pod template (and takes the static
    // test keys out); the kubelet projects the token and the SDK's default chain exchanges it with
    // STS AssumeRoleWithWebIdentity (moto's STS, behind the counting proxy; moto does not verify
    // the token's signature or audience). The Registry's status.identity then names the role.
    let irsa_role = "arn:aws:iam::123456789012:role/ecr-operator-irsa";
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let mut deployment = deployments
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .unwrap()
        .items
        .remove(0);
    let pod_spec = deployment.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    let token_dir = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
    let container = &mut pod_spec.containers[0];
    let env = container.env.get_or_insert_with(Vec::new);
    env.retain(|e| !e.name.starts_with("AWS_ACCESS_KEY_ID") && e.name != "AWS_SECRET_ACCESS_KEY");
    for (name, value) in [
        ("AWS_ROLE_ARN", irsa_role.to_owned()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", format!("{token_dir}/token")),
        ("AWS_STS_REGIONAL_ENDPOINTS", "regional".to_owned()),
    ] {
        env.push(EnvVar {
            name: name.into(),
            value: Some(value),
            ..Default::default()
        });
    }
    container
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .push(VolumeMount {
            name: "aws-iam-token".into(),
            mount_path: token_dir.into(),
            read_only: Some(true),
            ..Default::default()
        });
    pod_spec.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: "aws-iam-token".into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some("sts.amazonaws.com".into()),
                    expiration_seconds: Some(86_400),
                    path: "token".into(),
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    });
    let before: Vec<String> = ready_pods(&pods).await;
    let name = deployment.metadata.name.clone().unwrap();
    let t = Instant::now();
    deployments
        .replace(&name, &PostParams::default(), &deployment)
        .await
        .unwrap();
    wait_replaced(
        &cp,
        &pods,
        &before,
        "the Pods with the IRSA injection to replace the others",
    )
    .await;
    // Nudge the Registry so the new leader reconciles it at once (it would at its interval).
    kubectl(
        &cp,
        &[
            "annotate",
            "--overwrite",
            "registry/default",
            "ecr-operator.dev/reconcile-requested-at=irsa",
        ],
    );
    let registries: Api<Registry> = Api::all(admin.clone());
    let identity = eventually(
        &cp,
        Duration::from_secs(120),
        "the Registry's identity to be the IRSA role",
        || async {
            registries
                .get("default")
                .await
                .ok()
                .and_then(|r| r.status)
                .and_then(|s| s.identity)
                .filter(|i| i.starts_with("arn:aws:sts::123456789012:assumed-role/ecr-operator-irsa/"))
        },
    )
    .await;
    assert!(
        proxy.forwarded("AssumeRoleWithWebIdentity") >= 1,
        "{:?}",
        proxy.calls()
    );
    eprintln!(
        "[node] IRSA: {identity} after {:?} (template change to identity)",
        t.elapsed()
    );
    assert_eq!(proxy.forwarded("CreateRepository"), 2);

    // EKS Pod Identity in the Pod. On EKS, for a ServiceAccount with a Pod Identity association,
    // the webhook injects AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials,
    // AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE and a projected token with audience
    // pods.eks.amazonaws.com; the agent on the node's host network exchanges that token (EKS Auth
    // API) for the role's credentials. Here the project's stand-in serves the agent's protocol on
    // the host's 127.0.0.1, which the node routes 169.254.170.23 to, checks each token with the
    // API server's TokenReview (valid, that audience, the chart's ServiceAccount) as the EKS Auth
    // API would, and gets the credentials from moto's STS behind the counting proxy.
    let pod_identity_role = "arn:aws:iam::123456789012:role/ecr-operator-pod-identity";
    let service_account = spec.service_account_name.clone().unwrap();
    let agent = PodIdentityAgent::start_checking(
        &proxy.endpoint,
        pod_identity_role,
        TokenCheck::Review {
            client: admin.clone(),
            audience: "pods.eks.amazonaws.com".into(),
            username: format!("system:serviceaccount:{RELEASE_NAMESPACE}:{service_account}"),
        },
    )
    .unwrap();
    // Credentials for a minute only: the SDK fetches again soon after they expire, presenting
    // the token file as it is then (see the rotation below).
    agent.expire_credentials_after(60);
    let mut deployment = deployments.get(&name).await.unwrap();
    let pod_spec = deployment.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    let token_dir = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount";
    let container = &mut pod_spec.containers[0];
    let env = container.env.get_or_insert_with(Vec::new);
    env.retain(|e| {
        !e.name.starts_with("AWS_ROLE_ARN")
            && !e.name.starts_with("AWS_WEB_IDENTITY")
            && e.name != "AWS_STS_REGIONAL_ENDPOINTS"
    });
    for (name, value) in [
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("http://169.254.170.23:{}/v1/credentials", agent.port()),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            format!("{token_dir}/eks-pod-identity-token"),
        ),
    ] {
        env.push(EnvVar {
            name: name.into(),
            value: Some(value),
            ..Default::default()
        });
    }
    let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
    mounts.retain(|m| m.name != "aws-iam-token");
    mounts.push(VolumeMount {
        name: "eks-pod-identity-token".into(),
        mount_path: token_dir.into(),
        read_only: Some(true),
        ..Default::default()
    });
    let volumes = pod_spec.volumes.get_or_insert_with(Vec::new);
    volumes.retain(|v| v.name != "aws-iam-token");
    volumes.push(Volume {
        name: "eks-pod-identity-token".into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some("pods.eks.amazonaws.com".into()),
                    // The shortest lifetime the API server grants, so that the kubelet rotates
                    // it within the test (EKS's webhook asks for 86,400 s).
                    expiration_seconds: Some(600),
                    path: "eks-pod-identity-token".into(),
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    });
    let before: Vec<String> = ready_pods(&pods).await;
    let t = Instant::now();
    deployments
        .replace(&name, &PostParams::default(), &deployment)
        .await
        .unwrap();
    wait_replaced(
        &cp,
        &pods,
        &before,
        "the Pods with the Pod Identity injection to replace the others",
    )
    .await;
    kubectl(
        &cp,
        &[
            "annotate",
            "--overwrite",
            "registry/default",
            "ecr-operator.dev/reconcile-requested-at=pod-identity",
        ],
    );
    let identity = eventually(
        &cp,
        Duration::from_secs(120),
        "the Registry's identity to be the Pod Identity role",
        || async {
            registries
                .get("default")
                .await
                .ok()
                .and_then(|r| r.status)
                .and_then(|s| s.identity)
                .filter(|i| {
                    i.starts_with("arn:aws:sts::123456789012:assumed-role/ecr-operator-pod-identity/")
                })
        },
    )
    .await;
    assert!(agent.served() >= 1, "the stand-in served the Pod");
    assert_eq!(
        agent.refused(),
        0,
        "every token the kubelet projected passed the TokenReview"
    );
    assert!(proxy.forwarded("AssumeRole") >= 1, "{:?}", proxy.calls());
    eprintln!(
        "[node] Pod Identity: {identity} after {:?} (template change to identity); the stand-in served {} and refused {}",
        t.elapsed(),
        agent.served(),
        agent.refused()
    );
    // Token rotation by the kubelet. It refreshes a projected token at 80% of its lifetime (less
    // up to 10 s of jitter: about 8 minutes for 600 s) and rewrites the file at its next sync of
    // the Pod. The test reads the leader's token file through its container's root, waits for
    // the new token, nudges the Registry until the operator fetches credentials again (a
    // reconcile makes an STS call; the credentials last handed out last 60 s), and requires the
    // stand-in to have accepted exactly that new token from that Pod: the SDK reads the file
    // again, no restart needed.
    let leader = eventually(
        &cp,
        Duration::from_secs(60),
        "a leader among the Pod Identity Pods",
        || async {
            let r = ready_pods(&pods).await;
            lease_holder(&leases).await.filter(|h| r.contains(h))
        },
    )
    .await;
    let pid = container_pid(&cp, &pods.get(&leader).await.unwrap());
    let token_path = format!("/proc/{pid}/root{token_dir}/eks-pod-identity-token");
    let read_token = || std::fs::read_to_string(&token_path).map(|t| token_fingerprint(&t));
    let before_rotation = read_token().unwrap();
    assert!(
        agent.accepted().contains(&(leader.clone(), before_rotation)),
        "the stand-in accepted the leader's projected token: {:?}",
        agent.accepted().iter().map(|(pod, _)| pod).collect::<Vec<_>>()
    );
    let t = Instant::now();
    let rotated = eventually(
        &cp,
        Duration::from_secs(720),
        "the kubelet to rotate the leader's Pod Identity token",
        || async { read_token().ok().filter(|t| *t != before_rotation) },
    )
    .await;
    let rotated_after = t.elapsed();
    // The credentials fetched last may still be valid for up to 60 s: nudge the Registry every
    // 10 s (each nudge is a reconcile, an STS call) until a fetch presents the new token.
    let mut presented = false;
    for nudge in 0..18 {
        kubectl(
            &cp,
            &[
                "annotate",
                "--overwrite",
                "registry/default",
                &format!("ecr-operator.dev/reconcile-requested-at=rotated-{nudge}"),
            ],
        );
        for _ in 0..40 {
            if agent.accepted().contains(&(leader.clone(), rotated)) {
                presented = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if presented {
            break;
        }
    }
    assert!(
        presented,
        "the operator never presented the rotated token in 180 s; accepted: {:?}",
        agent.accepted().iter().map(|(pod, _)| pod).collect::<Vec<_>>()
    );
    assert_eq!(agent.refused(), 0, "every token presented passed the TokenReview");
    eprintln!(
        "[node] Pod Identity token rotated by the kubelet {rotated_after:?} after the test began to wait, and presented by {leader} {:?} later; the stand-in served {} in all",
        t.elapsed() - rotated_after,
        agent.served()
    );

    // No credential it handed out reaches the operator's log or the Registry's status.
    let logs = kubectl(
        &cp,
        &["logs", "-n", RELEASE_NAMESPACE, "-l", SELECTOR, "--tail=-1"],
    );
    let status = serde_json::to_string(&registries.get("default").await.unwrap().status).unwrap();
    for secret in agent.issued_secrets() {
        assert!(
            !logs.contains(&secret) && !status.contains(&secret),
            "an issued key leaked"
        );
    }
    assert_eq!(proxy.forwarded("CreateRepository"), 2);

    // helm uninstall: the CRDs stay (helm.sh/resource-policy: keep), and so do the ECR
    // repositories (the Repositories are not deleted with the release).
    run_output(
        helm(&cp)
            .unwrap()
            .args(["uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait"]),
        "helm uninstall",
    )
    .unwrap();
    eventually(
        &cp,
        Duration::from_secs(60),
        "the operator Pods to be gone",
        || async {
            pods.list(&ListParams::default().labels(SELECTOR))
                .await
                .unwrap()
                .items
                .is_empty()
                .then_some(())
        },
    )
    .await;
    let crds = Api::<CustomResourceDefinition>::all(admin.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/part-of=ecr-operator"))
        .await
        .unwrap();
    assert_eq!(
        crds.items.len(),
        ecr_operator::api::crds().len(),
        "the CRDs are kept"
    );
    assert_eq!(
        ecr_repositories(&moto).await,
        ["node-shop/web", "node-shop/worker"]
    );
    assert_eq!(proxy.forwarded("DeleteRepository"), 0);
    eprintln!(
        "[node] times: install -> Pod Ready {install_to_ready:?}, Repository Ready {repository_ready:?}, failover {failover:?}"
    );
}
