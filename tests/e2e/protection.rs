//! Protection of images in use (LifecyclePolicy `spec.protection`) against the real control plane
//! and moto, the operator as a process. Pods never run here: the test sets
//! `status.containerStatuses[].imageID` through the status subresource, as a kubelet would, and
//! creates the ReplicaSets of a Deployment itself (there is no deployment controller). moto never
//! evaluates lifecycle policies, so what ECR would expire is the operator's own evaluator run over
//! moto's images with the policy as it stands in moto.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use ecr_operator::api::v1alpha1::{LifecyclePolicy, LifecycleRule, Registry};
use ecr_operator::decide::protection::{MARK_PREFIX, cluster_token, mark};
use ecr_operator::lifecycle::evaluate::{Image, evaluate};
use ecr_operator::shard::SHARD_LABEL;
use ecr_operator_testenv::{AwsIdentity, Operator};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::harness::env::{CLUSTER_ID, OperatorEnv, tail};
use crate::support::{apply, cluster, eventually, temp_namespace};

const SECOND_CLUSTER: &str = "e2e-second";
const LIMIT: Duration = Duration::from_secs(120);

/// Expire every image older than the newest two.
fn rules() -> Value {
    json!([{"rulePriority": 1, "description": "keep the newest two", "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2}, "action": {"type": "expire"}}])
}

/// Pushes a manifest of its own (`seed`), under `tag` or untagged; returns its digest.
async fn push(env: &OperatorEnv, repo: &str, seed: u32, tag: Option<&str>) -> String {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                   "digest": format!("sha256:{seed:064x}")},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                    "digest": format!("sha256:{:064x}", u64::from(seed) + 1_000_000)}]
    });
    let out = env
        .ecr
        .put_image()
        .repository_name(repo)
        .image_manifest(manifest.to_string())
        .set_image_tag(tag.map(str::to_owned))
        .send()
        .await
        .unwrap();
    // Pushed at different times: the count rule orders by push time.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    out.image()
        .unwrap()
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap()
        .to_owned()
}

/// moto's images of `repo`, by digest, as the evaluator sees them.
async fn images(env: &OperatorEnv, repo: &str) -> Vec<Image> {
    let out = env
        .ecr
        .describe_images()
        .repository_name(repo)
        .send()
        .await
        .unwrap();
    out.image_details()
        .iter()
        .map(|d| Image {
            digest: d.image_digest().unwrap_or_default().to_owned(),
            tags: d.image_tags().to_vec(),
            pushed_at: d
                .image_pushed_at()
                .and_then(|t| SystemTime::try_from(*t).ok())
                .unwrap_or(SystemTime::UNIX_EPOCH),
            last_pulled_at: None,
            archived: false,
            archived_at: None,
            last_activated_at: None,
            size_bytes: 0,
        })
        .collect()
}

fn tags_of<'a>(imgs: &'a [Image], digest: &str) -> Option<&'a [String]> {
    imgs.iter()
        .find(|i| i.digest == digest)
        .map(|i| i.tags.as_slice())
}

/// The policy in moto, as rules.
async fn ecr_rules(env: &OperatorEnv, repo: &str) -> Vec<LifecycleRule> {
    let text = env
        .ecr
        .get_lifecycle_policy()
        .repository_name(repo)
        .send()
        .await
        .unwrap()
        .lifecycle_policy_text()
        .unwrap()
        .to_owned();
    let doc: Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(doc["rules"].clone()).unwrap()
}

/// The digests the policy in moto expires now, by the operator's evaluator.
async fn expired_now(env: &OperatorEnv, repo: &str) -> BTreeSet<String> {
    let (rules, imgs) = (ecr_rules(env, repo).await, images(env, repo).await);
    evaluate(&rules, &imgs, SystemTime::now())
        .into_iter()
        .flat_map(|o| o.expired)
        .map(|i| imgs[i].digest.clone())
        .collect()
}

/// Applies a Kubernetes object (not one of the operator's kinds), retrying while the namespace's
/// default ServiceAccount is not there yet.
async fn create(env: &OperatorEnv, ns: &str, doc: Value) {
    let what = format!("{} {ns}/{} to be created", doc["kind"], doc["metadata"]["name"]);
    eventually(Duration::from_secs(30), &what, || async {
        apply(&env.client, ns, &doc).await.ok().map(drop)
    })
    .await;
}

fn pod(name: &str, images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
        .collect();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": containers, "automountServiceAccountToken": false}})
}

/// What a kubelet reports for a running container.
async fn report(env: &OperatorEnv, ns: &str, name: &str, image: &str, image_id: &str) {
    let status = json!({"status": {"containerStatuses": [
        {"name": "c0", "image": image, "imageID": image_id, "ready": true, "restartCount": 0,
         "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}});
    Api::<Pod>::namespaced(env.client.clone(), ns)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c0", "image": image}]}})
}

fn policy(spec_extra: Value) -> Value {
    let mut spec = json!({"repositories": ["app"], "interval": "10s", "rules": rules(),
        "protection": {"gracePeriod": "10s"}});
    spec.as_object_mut()
        .unwrap()
        .extend(spec_extra.as_object().unwrap().clone());
    json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": "keep-two"}, "spec": spec})
}

#[tokio::test]
async fn images_in_use_are_never_expired_and_released_after_the_grace_period() {
    let admin = cluster().client().await.unwrap();
    let ns = temp_namespace(&admin, "prot").await;
    let outside = temp_namespace(&admin, "prot-out").await;
    let second_ns = temp_namespace(&admin, "prot-second").await;
    let env = OperatorEnv::start_with("e2e-prot", &["--watch-namespaces", &ns]).await;
    let repo = format!("{ns}/app");
    env.apply_repository(&ns, "app", json!({"name": repo})).await;
    env.wait_condition(&ns, "app", "Ready", "True", None).await;
    let host = env
        .wait_registry(|r: &Registry| r.status.as_ref().is_some_and(|s| s.registry_host.is_some()))
        .await
        .status
        .unwrap()
        .registry_host
        .unwrap();
    let at = |r: &str| format!("{host}/{repo}{r}");

    // Images pushed at different times: two untagged, one under a scratch tag, six releases and
    // one under a tag that will move.
    let u1 = push(&env, &repo, 1, None).await;
    let u2 = push(&env, &repo, 2, None).await;
    let u3 = push(&env, &repo, 3, Some("tmp")).await;
    let a = push(&env, &repo, 10, Some("v1")).await;
    let b = push(&env, &repo, 11, Some("v2")).await;
    let c = push(&env, &repo, 12, Some("v3")).await;
    let d = push(&env, &repo, 13, Some("v4")).await;
    let g = push(&env, &repo, 14, Some("v5")).await;
    let h = push(&env, &repo, 15, Some("v6")).await;
    let e = push(&env, &repo, 16, Some("moving")).await;

    // Workloads. A Deployment with its ReplicaSet history (v1 the previous revision, v5 the
    // current one), a Pod by digest, a CronJob by tag, a StatefulSet by digest, a Pod running
    // `moving`, a Pod using an untagged image by digest, references to images the operator does
    // not manage, and a Pod in a namespace it does not serve.
    create(&env, &ns, json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "revisionHistoryLimit": 5, "selector": {"matchLabels": {"app": "x"}}, "template": template(&at(":v5"))}})).await;
    let web = Api::<Deployment>::namespaced(env.client.clone(), &ns)
        .get("web")
        .await
        .unwrap();
    let owner = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": web.metadata.uid, "controller": true}]);
    for (name, revision, replicas, image) in [("web-1", "1", 0, at(":v1")), ("web-2", "2", 2, at(":v5"))] {
        create(&env, &ns, json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "annotations": {"deployment.kubernetes.io/revision": revision}, "ownerReferences": owner},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "x"}}, "template": template(&image)}})).await;
    }
    create(&env, &ns, pod("by-digest", &[&at(&format!("@{b}"))])).await;
    report(
        &env,
        &ns,
        "by-digest",
        &at(&format!("@{b}")),
        &format!("docker-pullable://{}", at(&format!("@{b}"))),
    )
    .await;
    create(&env, &ns, json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
        "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c0", "image": at(":v3")}]}}}}}})).await;
    create(&env, &ns, json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "x"}}, "template": template(&at(&format!("@{d}")))}})).await;
    create(&env, &ns, pod("mover", &[&at(":moving")])).await;
    report(&env, &ns, "mover", &at(":moving"), &at(&format!("@{e}"))).await;
    create(&env, &ns, pod("untagged-user", &[&at(&format!("@{u2}"))])).await;
    create(
        &env,
        &ns,
        pod(
            "elsewhere",
            &["nginx:1.27", &format!("{host}/{ns}/not-managed:v1")],
        ),
    )
    .await;
    create(&env, &outside, pod("outside", &[&at(":v6")])).await;
    let before = images(&env, &repo).await;
    assert_eq!(before.len(), 10, "{before:?}");
    assert_eq!(tags_of(&before, &u1), Some(&[][..]));

    env.apply(&ns, &policy(json!({}))).await.unwrap();
    let ours = cluster_token(CLUSTER_ID);
    let marked = |in_use: Vec<String>| {
        let (env, repo, ours) = (&env, &repo, &ours);
        async move {
            let imgs = images(env, repo).await;
            in_use
                .iter()
                .all(|dg| tags_of(&imgs, dg).is_some_and(|t| t.contains(&mark(ours, dg))))
                .then_some(())
        }
    };
    let first = vec![
        a.clone(),
        b.clone(),
        c.clone(),
        d.clone(),
        g.clone(),
        e.clone(),
        u2.clone(),
    ];
    eventually(LIMIT, "protection tags on the seven images in use", || {
        marked(first.clone())
    })
    .await;
    // The tag `moving` moves to a new image. The Pod still runs the old one (its imageID), which
    // keeps its protection tag and so survives (moto, unlike ECR, deletes an image whose last tag
    // moves away); the new one is what the tag resolves to now, and is protected too.
    let f = push(&env, &repo, 17, Some("moving")).await;
    let all = vec![
        a.clone(),
        b.clone(),
        c.clone(),
        d.clone(),
        g.clone(),
        e.clone(),
        f.clone(),
        u2.clone(),
    ];
    eventually(LIMIT, "protection tags on the eight images in use", || {
        marked(all.clone())
    })
    .await;
    assert_eq!(
        tags_of(&images(&env, &repo).await, &e),
        Some(&[mark(&ours, &e)][..])
    );
    let imgs = images(&env, &repo).await;
    for dg in [&u1, &u3, &h] {
        let t = tags_of(&imgs, dg).unwrap();
        assert!(
            !t.iter().any(|t| t.starts_with(MARK_PREFIX)),
            "{dg} is not in use (here): {t:?}"
        );
    }
    // The protection rule is the policy's first, and the user's rule follows it.
    let in_ecr = ecr_rules(&env, &repo).await;
    assert_eq!(in_ecr.len(), 2, "{in_ecr:?}");
    assert_eq!(in_ecr[0].rule_priority, 1);
    assert_eq!(
        in_ecr[0].selection.tag_prefix_list.as_deref(),
        Some(&[MARK_PREFIX.to_owned()][..])
    );
    assert_eq!(in_ecr[1].rule_priority, 2);
    assert_eq!(in_ecr[1].description.as_deref(), Some("keep the newest two"));
    // What ECR would expire: exactly the images nobody here uses.
    let expected: BTreeSet<String> = [&u1, &u3, &h].into_iter().cloned().collect();
    assert_eq!(expired_now(&env, &repo).await, expected);

    // The preview counts the kept images and names their workloads.
    let api: Api<LifecyclePolicy> = Api::namespaced(env.client.clone(), &ns);
    let lp = eventually(LIMIT, "the preview to count the images kept", || async {
        let lp = api.get("keep-two").await.ok()?;
        let p = lp.status.as_ref()?.preview.as_ref()?;
        let r = p.rules.first()?;
        (r.matched == 11 && r.kept_in_use == 6).then_some(lp)
    })
    .await;
    let status = lp.status.unwrap();
    let rule = &status.preview.as_ref().unwrap().rules[0];
    assert_eq!(
        (rule.matched, rule.expiring, rule.kept_in_use),
        (11, 3, 6),
        "{rule:?}"
    );
    assert_eq!(
        rule.in_use_by,
        [
            format!("CronJob {ns}/nightly"),
            format!("Deployment {ns}/web"),
            format!("Pod {ns}/by-digest"),
        ]
    );
    assert_eq!(status.repositories[0].protected_images, Some(8));
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(env.client.clone(), &ns)
        .list(&Default::default())
        .await
        .unwrap();
    let protected_event = events
        .items
        .iter()
        .find(|ev| ev.reason.as_deref() == Some("Protected"))
        .and_then(|ev| ev.note.clone())
        .unwrap_or_default();
    assert!(
        protected_event.contains(&format!("Deployment {ns}/web")),
        "{protected_event}"
    );

    // A second cluster (another --cluster-id) on the same registry protects what it uses.
    let second_registry = "e2e-prot-second";
    let label = json!({SHARD_LABEL: second_registry});
    apply(
        &env.client,
        "",
        &json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": second_registry, "labels": label},
        "spec": {"region": "us-east-1", "endpoint": env.proxy.endpoint}}),
    )
    .await
    .unwrap();
    apply(
        &env.client,
        &second_ns,
        &json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": "app", "labels": label},
        "spec": {"registryRef": {"name": second_registry}, "name": repo, "managementPolicy": "ObserveOnly"}}),
    )
    .await
    .unwrap();
    let mut second_policy = policy(json!({}));
    second_policy["metadata"]["labels"] = label.clone();
    apply(&env.client, &second_ns, &second_policy).await.unwrap();
    create(&env, &second_ns, pod("second", &[&at(":v6")])).await;
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_ecr-operator"));
    let selector = format!("{SHARD_LABEL}={second_registry}");
    let args = [
        "--cluster-id",
        SECOND_CLUSTER,
        "--watch-label-selector",
        &selector,
        "--watch-namespaces",
        &second_ns,
        "--repository-cache-ttl",
        "2s",
    ];
    let mut second = Operator::start_as(
        bin,
        cluster(),
        &env.moto.endpoint,
        &args,
        &AwsIdentity::StaticKeys,
    )
    .unwrap();
    let theirs = cluster_token(SECOND_CLUSTER);
    let waited = tokio::time::timeout(
        LIMIT,
        eventually(LIMIT, "the second cluster's tag on v6", || async {
            let imgs = images(&env, &repo).await;
            tags_of(&imgs, &h)
                .is_some_and(|t| t.contains(&mark(&theirs, &h)))
                .then_some(())
        }),
    )
    .await;
    assert!(waited.is_ok(), "{}", tail(&second.logs(), 40));

    // This cluster stops using the Deployment (scaled to zero, still protected: a scale-up pulls
    // its template), then deletes it, the `mover` Pod and the Pod of the untagged image.
    Api::<Deployment>::namespaced(env.client.clone(), &ns)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(25)).await;
    let imgs = images(&env, &repo).await;
    for dg in [&a, &g] {
        assert!(
            tags_of(&imgs, dg).unwrap().contains(&mark(&ours, dg)),
            "scaled to zero, still protected"
        );
    }
    let dp = DeleteParams::default().grace_period(0);
    Api::<Deployment>::namespaced(env.client.clone(), &ns)
        .delete("web", &dp)
        .await
        .unwrap();
    for rs in ["web-1", "web-2"] {
        let _ = Api::<ReplicaSet>::namespaced(env.client.clone(), &ns)
            .delete(rs, &dp)
            .await;
    }
    for p in ["mover", "untagged-user"] {
        Api::<Pod>::namespaced(env.client.clone(), &ns)
            .delete(p, &dp)
            .await
            .unwrap();
    }
    let released = "the tags of the images no longer in use released after the grace period";
    eventually(LIMIT, released, || async {
        let imgs = images(&env, &repo).await;
        let gone = |dg: &String| tags_of(&imgs, dg).is_none_or(|t| !t.contains(&mark(&ours, dg)));
        (gone(&a) && gone(&g) && gone(&f) && gone(&u2)).then_some(())
    })
    .await;
    let imgs = images(&env, &repo).await;
    assert_eq!(
        tags_of(&imgs, &a),
        Some(&["v1".to_owned()][..]),
        "released, its own tag kept"
    );
    assert_eq!(tags_of(&imgs, &g), Some(&["v5".to_owned()][..]));
    assert_eq!(tags_of(&imgs, &f), Some(&["moving".to_owned()][..]));
    // The image whose only tag was the protection tag, which the rules keep (one of the newest
    // two): not deleted by the release, its tag stays.
    assert_eq!(tags_of(&imgs, &e), Some(&[mark(&ours, &e)][..]), "{imgs:?}");
    // The untagged image the rules expire anyway: released, which deleted it, as ECR would.
    assert!(tags_of(&imgs, &u2).is_none(), "{imgs:?}");
    // Still in use: still protected; the second cluster's tag is never removed by this one.
    for dg in [&b, &c, &d] {
        assert!(tags_of(&imgs, dg).unwrap().contains(&mark(&ours, dg)));
    }
    assert!(tags_of(&imgs, &h).unwrap().contains(&mark(&theirs, &h)));
    // Released images are eligible again: ECR would now expire v1 and v5 as well.
    let expected: BTreeSet<String> = [&u1, &u3, &a, &g].into_iter().cloned().collect();
    assert_eq!(expired_now(&env, &repo).await, expected);
    let counts: BTreeMap<&str, usize> = [(
        "ours",
        imgs.iter()
            .filter(|i| {
                i.tags
                    .iter()
                    .any(|t| t.starts_with(&format!("{MARK_PREFIX}{ours}-")))
            })
            .count(),
    )]
    .into();
    assert_eq!(counts["ours"], 4, "b, c, d and the held e: {imgs:?}");

    second.stop();
    let _ = Api::<Registry>::all(env.client.clone())
        .delete(second_registry, &DeleteParams::default())
        .await;
    env.delete_registry().await;
}
