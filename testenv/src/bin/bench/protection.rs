//! Scenario: protection of images in use (LifecyclePolicy `spec.protection`). The inventory's
//! memory with 10,000 Pods over 1,000 Deployments (and their 1,000 ReplicaSets): the operator's
//! peak RSS (`VmHWM`, a fresh process each time) before and after they exist; and the ECR calls
//! protection costs: the first reconcile of a policy over a repository of 20 images, 10 of them
//! in use (each tagged once: BatchGetImage + PutImage), then the calls per reconcile once settled.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};

use super::{BTreeMap, Duration, Instant, Serialize, StreamExt, TryStreamExt, apply_document, json};
use super::{
    Bench, EcrCalls, MANAGER, Res, apply_all, create_namespace, ecr_calls, err, peak_rss_mib, wait_until,
};

const NS: &str = "bench-protection";
const DEPLOYMENTS: usize = 1000;
const PODS_PER_DEPLOYMENT: usize = 10;
const IMAGES: usize = 20;
const IN_USE: usize = 10;
/// The policy's interval while the steady cost is measured.
const POLICY_INTERVAL: &str = "10s";
const STEADY_WINDOW: Duration = Duration::from_secs(60);
/// The operations a LifecyclePolicy's reconcile makes (the rest are other controllers').
const POLICY_OPS: [&str; 6] = [
    "GetLifecyclePolicy",
    "PutLifecyclePolicy",
    "DescribeImages",
    "BatchGetImage",
    "PutImage",
    "BatchDeleteImage",
];

#[derive(Serialize)]
pub struct ProtectionScenario {
    deployments: usize,
    replica_sets: usize,
    pods: usize,
    /// Peak RSS of a fresh operator, settled, before the workloads exist.
    peak_rss_mib_without: f64,
    /// Peak RSS of a fresh operator once its inventory has listed them (and 10 s more).
    peak_rss_mib_with: f64,
    /// From the operator's start until its inventory held every object.
    inventory_listed_seconds: f64,
    inventory_objects: u64,
    inventory_references: u64,
    images: usize,
    images_in_use: usize,
    /// From the policy's apply until the images in use were tagged and ECR was quiet for 10 s.
    first_calls: EcrCalls,
    /// The policy's calls in a settled window of [`STEADY_WINDOW`] at `interval: 10s`.
    steady_calls: EcrCalls,
    steady_reconciles: u64,
    steady_calls_per_reconcile: f64,
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

fn policy_calls(all: &EcrCalls) -> EcrCalls {
    all.iter()
        .filter(|(op, _)| POLICY_OPS.contains(&op.as_str()))
        .map(|(op, n)| (op.clone(), *n))
        .collect()
}

impl Bench {
    fn inventory_size(&self) -> Res<(u64, u64)> {
        let (_, text) = self
            .op()?
            .http_get("/metrics")
            .map_err(|e| super::error_chain(&e))?;
        Ok((
            metric(&text, "ecr_operator_protection_inventory_objects"),
            metric(&text, "ecr_operator_protection_inventory_references"),
        ))
    }

    pub async fn protection(&mut self) -> Res<ProtectionScenario> {
        create_namespace(&self.client, NS, BTreeMap::new()).await?;
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
        apply_document(&self.client, NS, &sa, MANAGER)
            .await
            .map_err(err)?;
        let (_, repo) = super::repository(NS, "app");
        apply_document(&self.client, NS, &repo, MANAGER)
            .await
            .map_err(err)?;
        let seen = self.seen.clone();
        wait_until("the Repository Ready", Duration::from_secs(120), || {
            seen.lock()
                .map(|s| s.ready_at.contains_key(&format!("{NS}/app")))
                .unwrap_or(false)
        })
        .await?;
        let ecr = self.moto.ecr_client("us-east-1");
        let mut digests = Vec::new();
        for i in 0..IMAGES {
            let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": format!("sha256:{i:064x}")},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654, "digest": format!("sha256:{:064x}", i + 1_000_000)}]});
            let out = ecr
                .put_image()
                .repository_name(format!("{NS}/app"))
                .image_manifest(manifest.to_string())
                .image_tag(format!("v{i}"))
                .send()
                .await
                .map_err(|e| format!("PutImage: {e:?}"))?;
            let digest = out
                .image()
                .and_then(|i| i.image_id())
                .and_then(|i| i.image_digest())
                .unwrap_or_default()
                .to_owned();
            digests.push(digest);
        }
        let host = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

        // Without: a fresh operator, settled.
        self.restart_with(&[]).await?;
        tokio::time::sleep(Duration::from_secs(20)).await;
        let peak_rss_mib_without = peak_rss_mib(self.op()?)?;

        // The workloads: Deployments, their ReplicaSets, their Pods (with what a kubelet reports).
        let started = Instant::now();
        // Owners carry the real UIDs (the control plane's garbage collector deletes dependents
        // of an owner that does not exist): Deployments, then ReplicaSets, then Pods.
        let template = |d: usize| {
            json!({"metadata": {"labels": {"app": format!("d{d}")}},
                "spec": {"containers": [{"name": "c0", "image": format!("{host}/{NS}/app:v{}", d % IN_USE)}]}})
        };
        let deployments = (0..DEPLOYMENTS)
            .map(|d| {
                (NS.to_owned(), json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": format!("d{d}")},
                    "spec": {"replicas": PODS_PER_DEPLOYMENT, "selector": {"matchLabels": {"app": format!("d{d}")}}, "template": template(d)}}))
            })
            .collect();
        apply_all(&self.client, deployments).await?;
        let uids = |kind: &'static str| {
            let client = self.client.clone();
            async move {
                let gvk = match kind {
                    "Deployment" => kube::core::GroupVersionKind::gvk("apps", "v1", "Deployment"),
                    _ => kube::core::GroupVersionKind::gvk("apps", "v1", "ReplicaSet"),
                };
                let api: Api<super::DynamicObject> =
                    Api::namespaced_with(client, NS, &kube::core::ApiResource::from_gvk(&gvk));
                let list = api.list(&Default::default()).await.map_err(err)?;
                Ok::<BTreeMap<String, String>, String>(
                    list.items
                        .into_iter()
                        .map(|o| {
                            (
                                o.metadata.name.unwrap_or_default(),
                                o.metadata.uid.unwrap_or_default(),
                            )
                        })
                        .collect(),
                )
            }
        };
        let deployment_uids = uids("Deployment").await?;
        let replica_sets = (0..DEPLOYMENTS)
            .map(|d| {
                let owner = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("d{d}"),
                    "uid": deployment_uids.get(&format!("d{d}")).cloned().unwrap_or_default(), "controller": true}]);
                (NS.to_owned(), json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": format!("d{d}-1"), "annotations": {"deployment.kubernetes.io/revision": "1"}, "ownerReferences": owner},
                    "spec": {"replicas": PODS_PER_DEPLOYMENT, "selector": {"matchLabels": {"app": format!("d{d}")}}, "template": template(d)}}))
            })
            .collect();
        apply_all(&self.client, replica_sets).await?;
        let replica_set_uids = uids("ReplicaSet").await?;
        let mut docs = Vec::new();
        for d in 0..DEPLOYMENTS {
            let image = format!("{host}/{NS}/app:v{}", d % IN_USE);
            let owner = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("d{d}-1"),
                "uid": replica_set_uids.get(&format!("d{d}-1")).cloned().unwrap_or_default(), "controller": true}]);
            for p in 0..PODS_PER_DEPLOYMENT {
                docs.push((NS.to_owned(), json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("d{d}-1-{p}"), "labels": {"app": format!("d{d}")}, "ownerReferences": owner},
                    "spec": {"automountServiceAccountToken": false, "containers": [{"name": "c0", "image": image}]}})));
            }
        }
        apply_all(&self.client, docs).await?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        let digests_ref = &digests;
        futures::stream::iter(0..DEPLOYMENTS * PODS_PER_DEPLOYMENT)
            .map(|i| {
                let pods = pods.clone();
                async move {
                    let (d, p) = (i / PODS_PER_DEPLOYMENT, i % PODS_PER_DEPLOYMENT);
                    let digest = &digests_ref[d % IN_USE];
                    let status = json!({"status": {"containerStatuses": [{"name": "c0", "image": format!("{host}/{NS}/app:v{}", d % IN_USE),
                        "imageID": format!("{host}/{NS}/app@{digest}"), "ready": true, "restartCount": 0}]}});
                    pods.patch_status(&format!("d{d}-1-{p}"), &PatchParams::default(), &Patch::Merge(&status))
                        .await
                        .map_err(err)
                        .map(drop)
                }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<_>>()
            .await?;
        eprintln!(
            "bench: created {DEPLOYMENTS} Deployments, {DEPLOYMENTS} ReplicaSets and {} Pods in {:?}",
            DEPLOYMENTS * PODS_PER_DEPLOYMENT,
            started.elapsed()
        );

        // With: a fresh operator, once its inventory holds them all.
        let expected = (DEPLOYMENTS * (2 + PODS_PER_DEPLOYMENT)) as u64;
        let start = Instant::now();
        self.restart_with(&[]).await?;
        loop {
            if self.inventory_size()?.0 >= expected {
                break;
            }
            if start.elapsed() > Duration::from_secs(600) {
                return Err(format!("the inventory did not reach {expected} objects in 600 s"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let inventory_listed_seconds = start.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(10)).await;
        let peak_rss_mib_with = peak_rss_mib(self.op()?)?;
        let (inventory_objects, inventory_references) = self.inventory_size()?;

        // The ECR cost: a policy over the repository, first reconcile, then settled.
        self.proxy.clear();
        let policy = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "LifecyclePolicy",
            "metadata": {"name": "keep-five"},
            "spec": {"repositories": ["app"], "interval": POLICY_INTERVAL,
                "rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}}]}});
        apply_document(&self.client, NS, &policy, MANAGER)
            .await
            .map_err(err)?;
        let proxy = &self.proxy;
        wait_until("the images in use tagged", Duration::from_secs(300), || {
            proxy.forwarded("PutImage") >= IN_USE
        })
        .await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let first_calls = policy_calls(&ecr_calls(&self.proxy));
        self.proxy.clear();
        let before = self.reconciles("lifecycle-policy")?;
        tokio::time::sleep(STEADY_WINDOW).await;
        let steady_reconciles = self.reconciles("lifecycle-policy")? - before;
        let steady_calls = policy_calls(&ecr_calls(&self.proxy));
        let total: u64 = steady_calls.values().sum();
        Ok(ProtectionScenario {
            deployments: DEPLOYMENTS,
            replica_sets: DEPLOYMENTS,
            pods: DEPLOYMENTS * PODS_PER_DEPLOYMENT,
            peak_rss_mib_without,
            peak_rss_mib_with,
            inventory_listed_seconds,
            inventory_objects,
            inventory_references,
            images: IMAGES,
            images_in_use: IN_USE,
            first_calls,
            steady_calls,
            steady_reconciles,
            steady_calls_per_reconcile: total as f64 / steady_reconciles.max(1) as f64,
        })
    }
}

/// The scenario's rows of the result table.
pub fn rows(
    p: &ProtectionScenario,
    row: &mut dyn FnMut(&str, &str, String) -> std::fmt::Result,
    calls_text: fn(&EcrCalls) -> String,
) -> std::fmt::Result {
    row(
        &format!(
            "protection ({} Pods over {} Deployments and {} ReplicaSets)",
            p.pods, p.deployments, p.replica_sets
        ),
        "peak RSS without / with them",
        format!("{:.1} / {:.1} MiB", p.peak_rss_mib_without, p.peak_rss_mib_with),
    )?;
    row(
        "",
        "inventory objects / references, listed after",
        format!(
            "{} / {} / {:.1} s",
            p.inventory_objects, p.inventory_references, p.inventory_listed_seconds
        ),
    )?;
    row(
        "",
        &format!(
            "first reconcile ({} images, {} in use)",
            p.images, p.images_in_use
        ),
        calls_text(&p.first_calls),
    )?;
    row(
        "",
        "settled: policy reconciles / calls / calls per reconcile",
        format!(
            "{} / {} / {:.1}",
            p.steady_reconciles,
            calls_text(&p.steady_calls),
            p.steady_calls_per_reconcile
        ),
    )
}
