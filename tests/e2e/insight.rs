//! What the registry holds (docs/insight.md), against the real control plane and moto (with
//! `tests/moto/ecr_images.py`: DescribeImages paged, sized by layers, with scan summaries):
//! sizes and the cost formula in a Repository's status, the newest image's findings, a listing
//! longer than a pass read over several passes with each pass's DescribeImages counted at the
//! proxy, and the LifecyclePolicy preview's reclaimed bytes and saving.

use std::io::{Read, Write};
use std::time::Duration;

use ecr_operator::api::RECONCILE_REQUESTED_AT;
use ecr_operator::api::v1alpha1::{LifecyclePolicy, Repository, RepositoryInsight};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::harness::env::{OperatorEnv, tail};
use crate::support::{eventually, temp_namespace};

const GIB: u64 = 1 << 30;

/// Pushes an image whose one layer is `size` bytes (what ECR reports as its size).
async fn push(env: &OperatorEnv, repo: &str, tag: &str, size: u64) -> String {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 100,
                   "digest": format!("sha256:{:0>64}", tag.len())},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": size,
                    "digest": format!("sha256:{:0>64x}", size + tag.bytes().map(u64::from).sum::<u64>())}]
    });
    let out = env
        .ecr
        .put_image()
        .repository_name(repo)
        .image_manifest(manifest.to_string())
        .image_tag(tag)
        .send()
        .await
        .unwrap();
    out.image()
        .unwrap()
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap()
        .to_owned()
}

/// Tells moto what a scan of `digest` finds (its `/moto-api/static/ecr/scan-finding-results`),
/// then scans it.
pub async fn scan(env: &OperatorEnv, repo: &str, digest: &str, counts: serde_json::Value) {
    let body = json!({"region": "us-east-1", "results": [{
        "registryId": "123456789012", "repositoryName": repo, "imageId": {"imageDigest": digest},
        "imageScanStatus": {"status": "COMPLETE", "description": "The scan was completed successfully."},
        "imageScanFindings": {"findingSeverityCounts": counts, "imageScanCompletedAt": "2026-11-30T12:00:00Z"}
    }]})
    .to_string();
    let addr = env.moto.endpoint.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /moto-api/static/ecr/scan-finding-results HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 201") || answer.starts_with("HTTP/1.0 201"),
        "{answer}"
    );
    env.ecr
        .start_image_scan()
        .repository_name(repo)
        .image_id(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(digest)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

async fn insight(api: &Api<Repository>, name: &str) -> Option<RepositoryInsight> {
    api.get(name).await.ok()?.status?.insight
}

/// Waits until the Repository's insight passes `check`.
async fn wait_insight(
    env: &OperatorEnv,
    api: &Api<Repository>,
    name: &str,
    what: &str,
    check: impl Fn(&RepositoryInsight) -> bool,
) -> RepositoryInsight {
    let found = tokio::time::timeout(
        Duration::from_secs(60),
        eventually(Duration::from_secs(60), what, || async {
            insight(api, name).await.filter(|i| check(i))
        }),
    )
    .await;
    match found {
        Ok(i) => i,
        Err(_) => panic!("timed out waiting for {what}\n{}", tail(&env.logs(), 40)),
    }
}

async fn request_reconcile(api: &Api<Repository>, name: &str, value: &str) {
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn sizes_cost_and_findings_in_status_read_in_bounded_passes() {
    // Pages of 2 images, one page per pass: 5 images take 3 passes.
    let env = OperatorEnv::start_with(
        "e2e-insight",
        &["--insight-page-size", "2", "--insight-pages-per-pass", "1"],
    )
    .await;
    env.apply_registry(json!({"pricing": {"standardPerGbMonth": "0.50"}}))
        .await;
    env.wait_registry_ready().await;
    let ns = temp_namespace(&env.client, "insight").await;
    let ecr_name = format!("{ns}/app");
    env.ecr
        .create_repository()
        .repository_name(&ecr_name)
        .send()
        .await
        .unwrap();
    // One second apart: moto records push times in whole seconds, and the newest image and the
    // preview's order go by push time.
    let mut newest = String::new();
    for (tag, gib) in [("v1", 1), ("v2", 2), ("v3", 3), ("v4", 4), ("v5", 5)] {
        newest = push(&env, &ecr_name, tag, gib * GIB).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    scan(
        &env,
        &ecr_name,
        &newest,
        json!({"CRITICAL": 2, "HIGH": 1, "LOW": 4}),
    )
    .await;
    env.proxy.clear();

    env.apply_repository(&ns, "app", json!({"name": ecr_name})).await;
    env.wait_condition(&ns, "app", "Ready", "True", None).await;
    let api: Api<Repository> = Api::namespaced(env.client.clone(), &ns);

    // Pass 1 (the first reconcile): one page, the rest recorded as progress, no numbers yet.
    let first = wait_insight(&env, &api, "app", "the first pass", |i| i.progress.is_some()).await;
    let progress = first.progress.clone().unwrap();
    assert_eq!((progress.pages, progress.image_count), (1, 2), "{first:?}");
    assert_eq!(first.image_count, 0, "no complete listing yet: {first:?}");
    assert_eq!(env.proxy.forwarded("DescribeImages"), 1, "pass 1 reads one page");

    // Pass 2, on a requested reconcile: the second page.
    request_reconcile(&api, "app", "pass-2").await;
    let second = wait_insight(&env, &api, "app", "the second pass", |i| {
        i.progress.as_ref().is_some_and(|p| p.pages == 2)
    })
    .await;
    assert_eq!(second.progress.unwrap().image_count, 4);
    assert_eq!(env.proxy.forwarded("DescribeImages"), 2, "pass 2 reads one page");

    // Pass 3: the last page; the numbers are complete.
    request_reconcile(&api, "app", "pass-3").await;
    let done = wait_insight(&env, &api, "app", "the complete listing", |i| {
        i.progress.is_none()
    })
    .await;
    assert_eq!(env.proxy.forwarded("DescribeImages"), 3, "pass 3 reads one page");
    assert_eq!((done.image_count, done.pages), (5, 3), "{done:?}");
    assert_eq!(done.size_bytes, (15 * GIB) as i64);
    assert_eq!((done.archived_count, done.archived_size_bytes), (0, 0));
    assert_eq!(done.size.as_deref(), Some("15.0 GiB"));
    // 15 GiB / 2^30 × $0.50 = $7.50 (docs/insight.md).
    assert_eq!(done.estimated_monthly_cost_usd.as_deref(), Some("7.5000"));
    let image = done.newest_image.clone().unwrap();
    assert_eq!(
        (image.digest.as_str(), image.tags.clone()),
        (newest.as_str(), vec!["v5".to_owned()])
    );
    assert_eq!(image.scan_status.as_deref(), Some("COMPLETE"));
    assert!(image.scan_completed_at.is_some());
    assert_eq!(
        image.finding_counts,
        [
            ("CRITICAL".to_owned(), 2),
            ("HIGH".to_owned(), 1),
            ("LOW".to_owned(), 4)
        ]
        .into()
    );
    assert_eq!(done.worst_severity.as_deref(), Some("CRITICAL"));

    // Nothing else reads the images again: a spec change is no reason to.
    let before = env.proxy.forwarded("DescribeImages");
    env.apply_repository(&ns, "app", json!({"name": ecr_name, "tags": {"team": "insight"}}))
        .await;
    eventually(Duration::from_secs(30), "the tag written", || async {
        (env.ecr_tags(&ecr_name).await.get("team").map(String::as_str) == Some("insight")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.proxy.forwarded("DescribeImages"),
        before,
        "a spec change reads no images"
    );

    // The gauges say the same.
    let (code, metrics) = env.operator.as_ref().unwrap().http_get("/metrics").unwrap();
    assert_eq!(code, 200);
    let bytes = format!(
        r#"ecr_operator_repository_stored_bytes{{namespace="{ns}",repository="app"}} {}"#,
        15 * GIB
    );
    assert!(metrics.contains(&bytes), "{bytes} missing from /metrics");
    let critical = format!(
        r#"ecr_operator_repository_newest_image_findings{{namespace="{ns}",repository="app",severity="CRITICAL"}} 2"#
    );
    assert!(metrics.contains(&critical), "{critical} missing from /metrics");

    // The preview: keeping 2 releases expires v1..v3, 6 GiB, at $0.50 a GB-month $3.00.
    let lp = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": "keep-two"},
    "spec": {"dryRun": true, "repositories": ["app"], "rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"], "countType": "imageCountMoreThan", "countNumber": 2}, "action": {"type": "expire"}}
    ]}});
    env.apply(&ns, &lp).await.unwrap();
    let lps: Api<LifecyclePolicy> = Api::namespaced(env.client.clone(), &ns);
    let rule = eventually(Duration::from_secs(60), "the preview", || async {
        lps.get("keep-two")
            .await
            .ok()?
            .status?
            .preview?
            .rules
            .into_iter()
            .next()
            .filter(|r| r.matched == 5)
    })
    .await;
    assert_eq!(
        (rule.expiring, rule.expiring_bytes),
        (3, (6 * GIB) as i64),
        "{rule:?}"
    );
    assert_eq!(rule.estimated_monthly_savings_usd.as_deref(), Some("3.0000"));
    env.delete_registry().await;
}

/// Asks the API server to create (dry run: admission runs, nothing is stored) a Pod running
/// `image` in `ns`; the refusal's message when refused.
async fn admit(env: &OperatorEnv, ns: &str, image: &str) -> Result<(), String> {
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": "gate-probe"},
        "spec": {"containers": [{"name": "app", "image": image}]}
    }))
    .unwrap();
    let params = kube::api::PostParams {
        dry_run: true,
        ..Default::default()
    };
    Api::<k8s_openapi::api::core::v1::Pod>::namespaced(env.client.clone(), ns)
        .create(&params, &pod)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

async fn label_namespace(env: &OperatorEnv, ns: &str, key: &str, value: &str) {
    let patch = json!({"metadata": {"labels": {key: value}}});
    Api::<k8s_openapi::api::core::v1::Namespace>::all(env.client.clone())
        .patch(ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_api_server_refuses_pods_with_critical_images_even_while_the_operator_is_down() {
    let mut env = OperatorEnv::start("e2e-insight-gate").await;
    let ns = temp_namespace(&env.client, "gate").await;
    let (bad, clean) = (format!("{ns}/bad"), format!("{ns}/clean"));
    for name in [&bad, &clean] {
        env.ecr
            .create_repository()
            .repository_name(name)
            .send()
            .await
            .unwrap();
    }
    let bad_digest = push(&env, &bad, "v1", 1000).await;
    scan(&env, &bad, &bad_digest, json!({"CRITICAL": 2, "HIGH": 5})).await;
    let clean_digest = push(&env, &clean, "v1", 2000).await;
    scan(&env, &clean, &clean_digest, json!({"LOW": 1})).await;
    env.apply_repository(&ns, "bad", json!({"name": bad})).await;
    env.apply_repository(&ns, "clean", json!({"name": clean})).await;
    let api: Api<Repository> = Api::namespaced(env.client.clone(), &ns);
    for name in ["bad", "clean"] {
        wait_insight(&env, &api, name, "the newest image's findings", |i| {
            i.newest_image.as_ref().is_some_and(|n| n.scan_status.is_some())
        })
        .await;
    }
    let mut uris = Vec::new();
    for name in ["bad", "clean"] {
        uris.push(
            api.get(name)
                .await
                .unwrap()
                .status
                .unwrap()
                .repository_uri
                .unwrap(),
        );
    }
    let (bad_uri, clean_uri) = (uris[0].clone(), uris[1].clone());

    // Gated: namespaces labelled with this test's value; another namespace is not.
    let gated = temp_namespace(&env.client, "gated").await;
    label_namespace(&env, &gated, "insight-gate", "e2e").await;
    let other = temp_namespace(&env.client, "ungated").await;
    // A Pod running the bad image from before the policy.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(env.client.clone(), &gated);
    let before: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": "before-policy"},
        "spec": {"containers": [{"name": "app", "image": format!("{bad_uri}:v1")}]}
    }))
    .unwrap();
    pods.create(&Default::default(), &before).await.unwrap();
    let policy = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ImagePolicy", "metadata": {"name": "e2e-insight-no-critical"},
        "spec": {"namespaceSelector": {"matchLabels": {"insight-gate": "e2e"}}, "denySeverity": "CRITICAL"}});
    env.apply("", &policy).await.unwrap();
    let policies: Api<ecr_operator::api::v1alpha1::ImagePolicy> = Api::all(env.client.clone());
    let status = eventually(Duration::from_secs(60), "the ImagePolicy enforced", || async {
        policies
            .get("e2e-insight-no-critical")
            .await
            .ok()?
            .status
            .filter(|s| s.denied_images == 2)
    })
    .await;
    // The bad image by digest and by its tag; the clean one by both.
    assert_eq!((status.known_images, status.denied_images), (4, 2), "{status:?}");

    // The API server refuses the bad image by tag and by digest, naming it and its count (the
    // policy takes a moment to reach the API server's admission chain).
    let by_tag = format!("{bad_uri}:v1");
    let refused = eventually(Duration::from_secs(60), "a refusal by tag", || async {
        admit(&env, &gated, &by_tag).await.err()
    })
    .await;
    assert!(refused.contains(&by_tag), "{refused}");
    assert!(refused.contains("2 finding(s) of severity CRITICAL"), "{refused}");
    let by_digest = format!("{bad_uri}@{bad_digest}");
    let refused = admit(&env, &gated, &by_digest).await.unwrap_err();
    assert!(
        refused.contains(&by_digest) && refused.contains("2 CRITICAL"),
        "{refused}"
    );
    // A clean image, an image on another registry, and any image outside the selector pass.
    admit(&env, &gated, &format!("{clean_uri}:v1")).await.unwrap();
    admit(&env, &gated, &format!("{clean_uri}@{clean_digest}"))
        .await
        .unwrap();
    admit(&env, &gated, "registry.k8s.io/pause:3.10").await.unwrap();
    admit(&env, &other, &by_tag).await.unwrap();

    // The Pod from before the policy can still be labelled (an update that changes no image is
    // not checked, so it can be managed and deleted); changing its image is checked.
    let label = json!({"metadata": {"labels": {"touched": "yes"}}});
    pods.patch("before-policy", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    let image = json!({"spec": {"containers": [{"name": "app", "image": by_digest}]}});
    let refused = pods
        .patch(
            "before-policy",
            &PatchParams::default(),
            &Patch::Strategic(&image),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("2 CRITICAL"), "{refused}");
    pods.delete(
        "before-policy",
        &kube::api::DeleteParams::default().grace_period(0),
    )
    .await
    .unwrap();

    // unknown: Deny, in another namespace: a tag the facts do not know is refused, naming it; a
    // known clean image and an image of another registry are admitted.
    let strict_ns = temp_namespace(&env.client, "strict").await;
    label_namespace(&env, &strict_ns, "insight-gate", "strict").await;
    let strict = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ImagePolicy", "metadata": {"name": "e2e-insight-strict"},
        "spec": {"namespaceSelector": {"matchLabels": {"insight-gate": "strict"}}, "denySeverity": "HIGH", "unknown": "Deny"}});
    env.apply("", &strict).await.unwrap();
    let unknown = format!("{clean_uri}:pushed-later");
    let refused = eventually(Duration::from_secs(60), "a refusal of an unknown tag", || async {
        admit(&env, &strict_ns, &unknown).await.err()
    })
    .await;
    assert!(
        refused.contains("images unknown to ecr-operator") && refused.contains(&unknown),
        "{refused}"
    );
    admit(&env, &strict_ns, &format!("{clean_uri}:v1")).await.unwrap();
    admit(&env, &strict_ns, "registry.k8s.io/pause:3.10")
        .await
        .unwrap();
    // HIGH or worse: the bad image's 2 CRITICAL and 5 HIGH are 7.
    let refused = admit(&env, &strict_ns, &by_tag).await.unwrap_err();
    assert!(
        refused.contains("7 finding(s) of severity HIGH or worse (2 CRITICAL, 5 HIGH)"),
        "{refused}"
    );
    policies
        .delete("e2e-insight-strict", &Default::default())
        .await
        .unwrap();

    // The operator stopped: the API server still enforces the last facts.
    env.stop_operator();
    let refused = admit(&env, &gated, &by_tag).await.unwrap_err();
    assert!(refused.contains("2 finding(s) of severity CRITICAL"), "{refused}");
    admit(&env, &gated, &format!("{clean_uri}:v1")).await.unwrap();
    env.start_operator();

    // Deleting the policy: garbage collection removes the admission policy, its binding and the
    // facts (all owned by it), and the image is admitted again.
    policies
        .delete("e2e-insight-no-critical", &Default::default())
        .await
        .unwrap();
    let vaps: Api<k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy> =
        Api::all(env.client.clone());
    eventually(
        Duration::from_secs(60),
        "the admission policy collected",
        || async {
            vaps.get_opt("ecr-image-policy.e2e-insight-no-critical")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    eventually(Duration::from_secs(60), "the image admitted again", || async {
        admit(&env, &gated, &by_tag).await.ok()
    })
    .await;
    env.delete_registry().await;
}
