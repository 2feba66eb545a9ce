//! The real controllers, in-process, against the real API server and the in-memory backend
//! (`backend::fake`), for ECR behaviour moto lacks: archive storage classes, pull times and image
//! ages. This is the only place a fake stands in for ECR, and only for what moto cannot do.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ecr_operator::api::v1alpha1::LifecyclePolicy;
use ecr_operator::backend::ImageInfo;
use ecr_operator::backend::fake::FakeBackend;
use ecr_operator::cli::ControllerName;
use ecr_operator::controllers::{RunOptions, context::Tunables};
use kube::api::{Api, DeleteParams};
use serde_json::json;

use crate::harness::env::one_operator;
use crate::support::{apply, cluster, eventually, temp_namespace};

const DAY: u64 = 86_400;

fn image(
    digest: &str,
    tag: &str,
    pushed_days: u64,
    pulled_days: Option<u64>,
    archived_days: Option<u64>,
) -> ImageInfo {
    let ago = |d: u64| SystemTime::now() - Duration::from_secs(d * DAY);
    ImageInfo {
        digest: digest.into(),
        tags: vec![tag.into()],
        pushed_at: Some(ago(pushed_days)),
        last_pulled_at: pulled_days.map(ago),
        archived: archived_days.is_some(),
        archived_at: archived_days.map(ago),
        last_activated_at: None,
        size_bytes: None,
        scan: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_and_pull_based_rules_are_put_and_previewed() {
    let _serial = one_operator().await;
    let client = cluster().client().await.unwrap();
    let fake = FakeBackend::default();
    fake.seed_repository(
        "us-east-1",
        "mem/archive",
        vec![
            image("sha256:cold", "cold", 200, Some(100), None),
            image("sha256:warm", "warm", 200, Some(5), None),
            image("sha256:old-archive", "old", 400, None, Some(200)),
            image("sha256:new-archive", "new", 400, None, Some(30)),
        ],
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = RunOptions {
        tunables: Tunables {
            cluster_id: "in-memory".into(),
            repository_cache_ttl: Duration::from_secs(1),
            ..Tunables::default()
        },
        instance: None,
        token_lifetime: None,
        readiness: ecr_operator::server::Readiness::default(),
        // Only what this test needs (the --controllers code path).
        controllers: [
            ControllerName::Registry,
            ControllerName::Repository,
            ControllerName::LifecyclePolicy,
        ]
        .into(),
    };
    let controllers = tokio::spawn(ecr_operator::controllers::run(
        client.clone(),
        Arc::new(fake.clone()),
        Arc::new(ecr_operator::metrics::Metrics::default()),
        options,
        async {
            let _ = stopped.await;
        },
    ));

    let registry = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry", "metadata": {"name": "e2e-mem"},
        "spec": {"region": "us-east-1", "endpoint": "http://in-memory.invalid"}});
    apply(&client, "", &registry).await.unwrap();
    let ns = temp_namespace(&client, "inmem").await;
    let repo = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository", "metadata": {"name": "archive"},
        "spec": {"registryRef": {"name": "e2e-mem"}, "name": "mem/archive"}});
    apply(&client, &ns, &repo).await.unwrap();
    // Archive and pull-based rules, as ECR accepts them (moto rejects them).
    let lp = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": "cold-storage"},
    "spec": {"repositories": ["archive"], "rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90},
         "action": {"type": "transition", "targetStorageClass": "archive"}},
        {"rulePriority": 2, "selection": {"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 180},
         "action": {"type": "expire"}}
    ]}});
    apply(&client, &ns, &lp).await.unwrap();

    let api: Api<LifecyclePolicy> = Api::namespaced(client.clone(), &ns);
    let status = eventually(
        Duration::from_secs(60),
        "the LifecyclePolicy to be Ready with a preview",
        || async {
            let s = api.get("cold-storage").await.ok()?.status?;
            let ready = s
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            (ready && s.preview.is_some()).then_some(s)
        },
    )
    .await;
    let preview = status.preview.unwrap();
    assert_eq!(preview.rules[0].transitioning, 1, "{preview:?}");
    assert_eq!(preview.rules[0].examples, ["mem/archive:cold"]);
    assert_eq!(preview.rules[1].expiring, 1, "{preview:?}");
    assert_eq!(preview.rules[1].examples, ["mem/archive:old"]);
    let text = fake
        .state
        .lock()
        .unwrap()
        .lifecycle_policies
        .get("mem/archive")
        .cloned()
        .unwrap();
    assert!(
        text.contains("sinceImagePulled") && text.contains("\"targetStorageClass\":\"archive\""),
        "{text}"
    );

    let _ = Api::<ecr_operator::api::v1alpha1::Registry>::all(client.clone())
        .delete("e2e-mem", &DeleteParams::default())
        .await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), controllers).await;
}
