//! The operator as a process against the real control plane and moto (through the fault proxy,
//! which also counts every ECR call independently of the operator's own metrics).

use std::time::Duration;

use aws_sdk_ecr::types::ImageTagMutability;
use ecr_operator::api::OWNER_TAG;
use ecr_operator::api::v1alpha1::Repository;
use ecr_operator_testenv::FaultPlan;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use crate::harness::env::{CLUSTER_ID, OperatorEnv, tail};
use crate::harness::wait::{condition, has_condition, verdict};
use crate::support::{cluster, eventually, quiet, temp_namespace};

#[tokio::test]
async fn repository_converges_and_drift_is_reverted() {
    let env = OperatorEnv::start("e2e-converge").await;
    let ns = temp_namespace(&env.client, "converge").await;
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Pull", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": ["ecr:BatchGetImage"]}]});
    env.apply_repository(&ns, "web", json!({
        "name": "converge/web", "imageTagMutability": "ImmutableWithExclusion", "exclusionFilters": ["latest"],
        "tags": {"team": "web", "tier": "front"}, "policy": policy, "interval": "10s"
    }))
    .await;

    // kubectl wait, as a user or a CI pipeline would.
    let out = cluster()
        .kubectl()
        .args([
            "wait",
            "--for=condition=Ready",
            "repository/web",
            "-n",
            &ns,
            "--timeout=90s",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl wait: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        tail(&env.logs(), 30)
    );
    let r = env
        .wait_condition(&ns, "web", "Ready", "True", Some("Succeeded"))
        .await;
    let status = r.status.clone().unwrap();
    assert_eq!(
        status.repository_uri.as_deref(),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/converge/web")
    );
    assert_eq!(
        status.repository_arn.as_deref(),
        Some("arn:aws:ecr:us-east-1:123456789012:repository/converge/web")
    );
    assert_eq!(verdict(&r), "Current");
    assert!(r.finalizers().iter().any(|f| f == "ecr-operator.dev/finalizer"));

    let d = env
        .ecr
        .describe_repositories()
        .repository_names("converge/web")
        .send()
        .await
        .unwrap();
    let repo = &d.repositories()[0];
    assert_eq!(
        repo.image_tag_mutability(),
        Some(&ImageTagMutability::ImmutableWithExclusion)
    );
    assert_eq!(
        repo.image_tag_mutability_exclusion_filters()[0].filter(),
        "latest"
    );
    let tags = env.ecr_tags("converge/web").await;
    assert_eq!(
        tags.get(OWNER_TAG).map(String::as_str),
        Some(format!("{CLUSTER_ID}/{ns}/web").as_str())
    );
    assert_eq!(tags.get("team").map(String::as_str), Some("web"));
    let p = env
        .ecr
        .get_repository_policy()
        .repository_name("converge/web")
        .send()
        .await
        .unwrap();
    assert!(p.policy_text().unwrap().contains("444455556666"));

    // Change the spec: mutability, tags (one removed, one changed), policy.
    let policy2 = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Pull", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": ["ecr:BatchGetImage"]}]});
    env.ecr
        .tag_resource()
        .resource_arn(repo.repository_arn().unwrap())
        .tags(
            aws_sdk_ecr::types::Tag::builder()
                .key("set-by-someone-else")
                .value("x")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    env.apply_repository(
        &ns,
        "web",
        json!({
            "name": "converge/web", "imageTagMutability": "Immutable", "tags": {"team": "platform"},
            "policy": policy2, "interval": "10s"
        }),
    )
    .await;
    env.wait_condition(&ns, "web", "Ready", "True", Some("Succeeded"))
        .await;
    eventually(
        Duration::from_secs(60),
        "ECR to follow the spec change",
        || async {
            let d = env
                .ecr
                .describe_repositories()
                .repository_names("converge/web")
                .send()
                .await
                .ok()?;
            let tags = env.ecr_tags("converge/web").await;
            let p = env
                .ecr
                .get_repository_policy()
                .repository_name("converge/web")
                .send()
                .await
                .ok()?;
            let ok = d.repositories()[0].image_tag_mutability() == Some(&ImageTagMutability::Immutable)
                && tags.get("team").map(String::as_str) == Some("platform")
                && !tags.contains_key("tier")
                && tags.contains_key("set-by-someone-else")
                && p.policy_text().unwrap_or_default().contains("111122223333");
            ok.then_some(())
        },
    )
    .await;

    // Events are published on transitions only: one Created, however many reconciles ran.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), &ns);
    let created = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Created"))
        .count();
    assert_eq!(created, 1);

    // Drift behind the operator's back is reverted within the interval.
    env.ecr
        .put_image_tag_mutability()
        .repository_name("converge/web")
        .image_tag_mutability(ImageTagMutability::Mutable)
        .send()
        .await
        .unwrap();
    env.ecr
        .delete_repository_policy()
        .repository_name("converge/web")
        .send()
        .await
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "the operator to revert drift made in ECR",
        || async {
            let d = env
                .ecr
                .describe_repositories()
                .repository_names("converge/web")
                .send()
                .await
                .ok()?;
            let p = env
                .ecr
                .get_repository_policy()
                .repository_name("converge/web")
                .send()
                .await
                .ok();
            (d.repositories()[0].image_tag_mutability() == Some(&ImageTagMutability::Immutable)
                && p.is_some())
            .then_some(())
        },
    )
    .await;
    env.delete_registry().await;
}

#[tokio::test]
async fn adoption_create_only_and_owned_elsewhere() {
    let env = OperatorEnv::start("e2e-adopt").await;
    let ns_a = temp_namespace(&env.client, "adopt-a").await;
    let ns_b = temp_namespace(&env.client, "adopt-b").await;
    env.ecr
        .create_repository()
        .repository_name("legacy/adopt-me")
        .send()
        .await
        .unwrap();
    env.ecr
        .create_repository()
        .repository_name("legacy/exists")
        .send()
        .await
        .unwrap();

    env.apply_repository(
        &ns_a,
        "adopted",
        json!({"name": "legacy/adopt-me", "tags": {"team": "a"}}),
    )
    .await;
    env.apply_repository(
        &ns_a,
        "create-only",
        json!({"name": "legacy/exists", "adoption": "CreateOnly"}),
    )
    .await;
    env.apply_repository(
        &ns_a,
        "first",
        json!({"name": "shared/name", "tags": {"team": "a"}}),
    )
    .await;

    env.wait_condition(&ns_a, "adopted", "Ready", "True", None).await;
    let tags = env.ecr_tags("legacy/adopt-me").await;
    assert_eq!(
        tags.get(OWNER_TAG).map(String::as_str),
        Some(format!("{CLUSTER_ID}/{ns_a}/adopted").as_str())
    );

    let r = env
        .wait_condition(&ns_a, "create-only", "Stalled", "True", Some("AlreadyExists"))
        .await;
    assert_eq!(verdict(&r), "Failed");
    assert!(
        !env.ecr_tags("legacy/exists").await.contains_key(OWNER_TAG),
        "CreateOnly never touches it"
    );

    env.wait_condition(&ns_a, "first", "Ready", "True", None).await;
    env.apply_repository(
        &ns_b,
        "second",
        json!({"name": "shared/name", "tags": {"team": "b"}, "imageTagMutability": "Immutable"}),
    )
    .await;
    let r = env
        .wait_condition(&ns_b, "second", "Stalled", "True", Some("OwnedElsewhere"))
        .await;
    let ready = condition(&r, "Ready").unwrap();
    assert!(
        ready.message.contains(&format!("{CLUSTER_ID}/{ns_a}/first")),
        "{}",
        ready.message
    );
    let tags = env.ecr_tags("shared/name").await;
    assert_eq!(
        tags.get("team").map(String::as_str),
        Some("a"),
        "nothing was overwritten"
    );
    let d = env
        .ecr
        .describe_repositories()
        .repository_names("shared/name")
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.repositories()[0].image_tag_mutability(),
        Some(&ImageTagMutability::Mutable)
    );
    env.delete_registry().await;
}

#[tokio::test]
async fn deletion_policy_and_force_delete() {
    let env = OperatorEnv::start("e2e-delete").await;
    let ns = temp_namespace(&env.client, "delete").await;
    let api: Api<Repository> = Api::namespaced(env.client.clone(), &ns);
    for (name, spec) in [
        ("empty", json!({"name": "del/empty", "deletionPolicy": "Delete"})),
        ("full", json!({"name": "del/full", "deletionPolicy": "Delete"})),
        ("kept", json!({"name": "del/kept"})),
    ] {
        env.apply_repository(&ns, name, spec).await;
    }
    for name in ["empty", "full", "kept"] {
        env.wait_condition(&ns, name, "Ready", "True", None).await;
    }
    env.push_image("del/full", "v1").await;
    env.push_image("del/full", "v2").await;

    for name in ["empty", "full", "kept"] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    let gone = |name: &'static str| {
        let api = api.clone();
        async move { api.get_opt(name).await.unwrap().is_none().then_some(()) }
    };
    eventually(Duration::from_secs(60), "Repository empty to be deleted", || {
        gone("empty")
    })
    .await;
    assert!(
        !env.ecr_exists("del/empty").await,
        "empty + Delete: gone from ECR"
    );
    eventually(Duration::from_secs(60), "Repository kept to be deleted", || {
        gone("kept")
    })
    .await;
    assert!(env.ecr_exists("del/kept").await, "Retain: ECR untouched");

    // Non-empty without forceDelete: the object stays, Stalled, images intact.
    let r = env
        .wait_condition(&ns, "full", "Stalled", "True", Some("RepositoryNotEmpty"))
        .await;
    assert!(
        condition(&r, "Stalled").unwrap().message.contains("2 image(s)"),
        "{:?}",
        condition(&r, "Stalled")
    );
    let images = env
        .ecr
        .list_images()
        .repository_name("del/full")
        .send()
        .await
        .unwrap();
    assert_eq!(images.image_ids().len(), 2);

    // Opting in deletes it.
    env.apply_repository(
        &ns,
        "full",
        json!({"name": "del/full", "deletionPolicy": "Delete", "forceDelete": true}),
    )
    .await;
    eventually(Duration::from_secs(60), "Repository full to be deleted", || {
        gone("full")
    })
    .await;
    assert!(!env.ecr_exists("del/full").await);
    env.delete_registry().await;
}

#[tokio::test]
async fn waits_for_its_registry_and_tenancy_rules_deny() {
    let env = OperatorEnv::start("e2e-tenancy").await;
    let ns = temp_namespace(&env.client, "tenancy").await;
    let mut spec = json!({"name": "late/app", "registryRef": {"name": "e2e-late"}});
    let doc = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository", "metadata": {"name": "late"}, "spec": spec.take()});
    env.apply(&ns, &doc).await.unwrap();
    let r = env
        .wait_condition(&ns, "late", "Reconciling", "True", Some("DependencyNotReady"))
        .await;
    assert_eq!(verdict(&r), "InProgress");
    assert!(condition(&r, "Stalled").is_none());
    let registry = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry", "metadata": {"name": "e2e-late"},
        "spec": {"region": "us-east-1", "endpoint": env.proxy.endpoint}});
    env.apply("", &registry).await.unwrap();
    env.wait_condition(&ns, "late", "Ready", "True", None).await;

    // Tenancy: only labelled namespaces, and names must start with the namespace.
    env.apply_registry(
        json!({"allowedNamespaces": {"matchLabels": {"ecr-tenant": "yes"}},
        "repositoryNamePolicy": {"requireNamespacePrefix": true}}),
    )
    .await;
    env.apply_repository(&ns, "unlabelled", json!({"name": format!("{ns}/app")}))
        .await;
    let r = env
        .wait_condition(&ns, "unlabelled", "Stalled", "True", Some("NotAllowed"))
        .await;
    assert!(
        condition(&r, "Stalled")
            .unwrap()
            .message
            .contains("allowedNamespaces")
    );
    let labelled = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"ecr-tenant": "yes"}}});
    env.apply("", &labelled).await.unwrap();
    env.apply_repository(&ns, "bad-prefix", json!({"name": "other/app"}))
        .await;
    let r = env
        .wait_condition(&ns, "bad-prefix", "Stalled", "True", Some("NotAllowed"))
        .await;
    assert!(condition(&r, "Stalled").unwrap().message.contains("start with"));
    assert!(!env.ecr_exists("other/app").await);
    env.apply_repository(&ns, "good", json!({"name": format!("{ns}/good")}))
        .await;
    env.wait_condition(&ns, "good", "Ready", "True", None).await;
    let _ = Api::<ecr_operator::api::v1alpha1::Registry>::all(env.client.clone())
        .delete("e2e-late", &DeleteParams::default())
        .await;
    env.delete_registry().await;
}

/// Intervals that used to panic the operator's decoder (overflow), be misread (negative) or loop
/// hot (zero) are refused at admission with the rule's message, for every namespaced kind, while
/// the operator keeps running and reconciling everything else.
#[tokio::test]
async fn hostile_intervals_are_refused_and_the_operator_keeps_reconciling() {
    use ecr_operator::api::interval::RULE_MESSAGE;
    let mut env = OperatorEnv::start("e2e-intervals").await;
    let ns = temp_namespace(&env.client, "intervals").await;
    env.apply_repository(
        &ns,
        "before",
        json!({"name": format!("{ns}/before"), "interval": "10s"}),
    )
    .await;
    env.wait_condition(&ns, "before", "Ready", "True", None).await;

    for (i, interval) in ["99999999999999999999h", "-5m", "0s"].into_iter().enumerate() {
        let docs = [
            json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository", "metadata": {"name": format!("bad-{i}")},
                "spec": {"registryRef": {"name": env.registry}, "interval": interval}}),
            json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": format!("bad-{i}")},
                "spec": {"repositories": ["before"], "interval": interval, "rules": [{"rulePriority": 1,
                "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
                "action": {"type": "expire"}}]}}),
            json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret", "metadata": {"name": format!("bad-{i}")},
                "spec": {"registries": [env.registry], "interval": interval}}),
        ];
        for doc in docs {
            let err = env.apply(&ns, &doc).await.expect_err(&format!(
                "{} with interval {interval:?} was admitted",
                doc["kind"]
            ));
            let msg = crate::support::api_message(&err);
            assert_eq!(crate::support::api_code(&err), Some(422), "{msg}");
            assert!(msg.contains(RULE_MESSAGE), "{interval:?}: {msg}");
        }
    }

    // The operator is still up and still reconciling: a new object converges, the old one stays.
    env.apply_repository(&ns, "after", json!({"name": format!("{ns}/after")}))
        .await;
    env.wait_condition(&ns, "after", "Ready", "True", None).await;
    assert!(env.ecr_exists(&format!("{ns}/after")).await);
    env.wait_condition(&ns, "before", "Ready", "True", None).await;
    assert!(env.operator.as_mut().unwrap().is_running(), "the operator exited");
    assert!(!env.logs().contains("panicked"), "{}", tail(&env.logs(), 40));
    env.delete_registry().await;
}

#[tokio::test]
async fn throttling_and_errors_converge_without_duplicates_and_a_restart_writes_nothing() {
    let mut env = OperatorEnv::start("e2e-faults").await;
    let ns = temp_namespace(&env.client, "faults").await;
    // The Registry is Ready first, so what follows isolates failing repository calls (a Registry
    // that keeps failing would rightly make Repositories wait with DependencyNotReady instead).
    env.wait_registry(|r| has_condition(r, "Ready", "True", None))
        .await;
    // Most calls fail for a while: the SDK's own retries are exhausted on some calls.
    env.proxy.set_plan(FaultPlan {
        throttle_percent: 50,
        error_percent: 30,
        ..FaultPlan::default()
    });
    let names: Vec<String> = (0..8).map(|i| format!("app-{i}")).collect();
    for name in &names {
        env.apply_repository(
            &ns,
            name,
            json!({"name": format!("faults/{name}"), "tags": {"n": name}}),
        )
        .await;
    }
    // Transient errors show as Reconciling/ProgressingWithRetry, never Stalled.
    let api: Api<Repository> = Api::namespaced(env.client.clone(), &ns);
    let retrying = eventually(
        Duration::from_secs(60),
        "a Repository reporting ProgressingWithRetry",
        || async {
            let list = api.list(&Default::default()).await.ok()?;
            list.items
                .into_iter()
                .find(|r| condition(r, "Reconciling").is_some_and(|c| c.reason == "ProgressingWithRetry"))
        },
    )
    .await;
    assert_eq!(verdict(&retrying), "InProgress");
    let list = api.list(&Default::default()).await.unwrap();
    assert!(
        list.items.iter().all(|r| condition(r, "Stalled").is_none()),
        "transient errors never stall"
    );

    env.proxy.set_plan(FaultPlan::default());
    for name in &names {
        env.wait_condition(&ns, name, "Ready", "True", None).await;
    }
    let calls = env.proxy.calls();
    assert!(calls.iter().any(|c| c.injected.is_some()), "faults were injected");
    let created: Vec<_> = env
        .ecr
        .describe_repositories()
        .send()
        .await
        .unwrap()
        .repositories()
        .iter()
        .filter_map(|r| r.repository_name().map(str::to_owned))
        .filter(|n| n.starts_with("faults/"))
        .collect();
    assert_eq!(created.len(), names.len(), "every repository exists once");

    // Restart: the new process resumes the drift-check schedule (each Repository in its slot of
    // the 10-minute interval) instead of re-reading every in-sync object at once, and writes
    // nothing to ECR or Kubernetes.
    let before: Vec<(String, String)> = api
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| (r.name_any(), r.resource_version().unwrap()))
        .collect();
    env.stop_operator();
    env.proxy.clear();
    env.start_operator();
    let reconciled = |metrics: &str| -> usize {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with(r#"ecr_operator_reconcile_total{controller="repository",result="success"}"#)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as usize
    };
    eventually(
        Duration::from_secs(60),
        "the restarted operator to reconcile every Repository",
        || async {
            let (code, metrics) = env.operator.as_ref()?.http_get("/metrics").ok()?;
            (code == 200 && reconciled(&metrics) >= names.len()).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reads = env.proxy.forwarded("ListTagsForResource");
    assert!(
        reads < names.len(),
        "the restarted operator re-read {reads} of {} in-sync repositories at once instead of resuming their slots",
        names.len()
    );
    assert_eq!(
        env.proxy.forwarded_writes(),
        Vec::<String>::new(),
        "no ECR writes after a restart"
    );
    let describes = env.proxy.forwarded("DescribeRepositories");
    assert!(
        describes <= 2,
        "reads are batched: {describes} DescribeRepositories calls for {} repositories",
        names.len()
    );
    let after: Vec<(String, String)> = api
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| (r.name_any(), r.resource_version().unwrap()))
        .collect();
    assert_eq!(before, after, "no Kubernetes writes after a restart");

    // The operator's own metrics agree: ECR calls by operation and outcome, reconciles, latency.
    let op = env.operator.as_ref().unwrap();
    assert_eq!(op.http_get("/readyz").unwrap().0, 200);
    assert_eq!(op.http_get("/healthz").unwrap().0, 200);
    let (code, metrics) = op.http_get("/metrics").unwrap();
    assert_eq!(code, 200);
    for needle in [
        // The Registry's own re-check (DescribeRegistry) is a background call.
        r#"ecr_operator_backend_requests_total{operation="DescribeRegistry",outcome="ok"}"#,
        r#"ecr_operator_backend_lane_calls_total{lane="background"}"#,
        "ecr_operator_backend_lane_wait_seconds_bucket",
        r#"ecr_operator_drift_objects{registry="e2e-faults"}"#,
        r#"ecr_operator_reconcile_total{controller="repository",result="success"}"#,
        "ecr_operator_backend_request_duration_seconds_bucket",
        "ecr_operator_reconcile_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from /metrics");
    }
    assert!(
        !metrics.contains("operation=\"CreateRepository\""),
        "the restarted operator created nothing"
    );
    env.delete_registry().await;
}

#[tokio::test]
async fn registry_settings_are_written_once_reverted_on_drift_and_the_account_is_verified() {
    let env = OperatorEnv::start("e2e-registry").await;
    let r = env
        .wait_registry(|r| has_condition(r, "Ready", "True", None))
        .await;
    let status = r.status.unwrap();
    assert_eq!(status.registry_id.as_deref(), Some("123456789012"));
    assert_eq!(
        status.registry_host.as_deref(),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com")
    );
    assert!(
        status
            .identity
            .as_deref()
            .is_some_and(|i| i.starts_with("arn:aws:sts::123456789012:")),
        "{:?}",
        status.identity
    );

    // moto accepts only V1 registry policies (ecr:CreateRepository / ecr:ReplicateImage).
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Replication", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
        "Resource": "arn:aws:ecr:us-east-1:123456789012:repository/*"}]});
    let settings = json!({"scanning": {"scanType": "Basic", "rules": [{"scanFrequency": "ScanOnPush", "repositoryFilters": ["prod*"]}]}, "policy": policy});
    env.apply_registry(settings.clone()).await;
    env.wait_registry(|r| has_condition(r, "Ready", "True", None))
        .await;
    let scanning = env
        .ecr
        .get_registry_scanning_configuration()
        .send()
        .await
        .unwrap();
    let rules = scanning.scanning_configuration().unwrap().rules();
    assert_eq!(rules[0].scan_frequency().as_str(), "SCAN_ON_PUSH");
    assert_eq!(rules[0].repository_filters()[0].filter(), "prod*");
    let p = env.ecr.get_registry_policy().send().await.unwrap();
    assert!(p.policy_text().unwrap().contains("444455556666"));

    // A reconcile of an in-sync Registry reads but never re-puts (and echoes the annotation).
    let reconcile_now = |value: &str| {
        json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
               "metadata": {"name": env.registry, "annotations": {"ecr-operator.dev/reconcile-requested-at": value}},
               "spec": {"region": "us-east-1", "endpoint": env.proxy.endpoint, "scanning": settings["scanning"], "policy": settings["policy"]}})
    };
    env.proxy.clear();
    env.apply("", &reconcile_now("1")).await.unwrap();
    env.wait_registry(|r| {
        r.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some("1")
    })
    .await;
    assert!(env.proxy.forwarded("DescribeRegistry") >= 1, "it reconciled");
    assert_eq!(
        env.proxy.forwarded_writes(),
        Vec::<String>::new(),
        "in sync: nothing re-put"
    );

    // Drift in ECR is reverted.
    let rule = aws_sdk_ecr::types::RegistryScanningRule::builder()
        .scan_frequency(aws_sdk_ecr::types::ScanFrequency::ScanOnPush)
        .repository_filters(
            aws_sdk_ecr::types::ScanningRepositoryFilter::builder()
                .filter("other*")
                .filter_type(aws_sdk_ecr::types::ScanningRepositoryFilterType::Wildcard)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    env.ecr
        .put_registry_scanning_configuration()
        .scan_type(aws_sdk_ecr::types::ScanType::Basic)
        .rules(rule)
        .send()
        .await
        .unwrap();
    env.apply("", &reconcile_now("2")).await.unwrap();
    env.wait_registry(|r| {
        r.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some("2")
    })
    .await;
    let scanning = env
        .ecr
        .get_registry_scanning_configuration()
        .send()
        .await
        .unwrap();
    assert_eq!(
        scanning.scanning_configuration().unwrap().rules()[0].repository_filters()[0].filter(),
        "prod*"
    );
    assert_eq!(env.proxy.forwarded("PutRegistryScanningConfiguration"), 1);
    assert_eq!(env.proxy.forwarded("PutRegistryPolicy"), 0);

    // The identity reaches account 123456789012, not the one the spec names.
    env.apply_registry(json!({"accountId": "111122223333"})).await;
    let r = env
        .wait_registry(|r| has_condition(r, "Stalled", "True", None))
        .await;
    let stalled = r
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.reason, "AccountMismatch");
    env.delete_registry().await;
}

#[tokio::test]
async fn observe_only_reports_drift_and_encryption_mismatch_stalls() {
    let env = OperatorEnv::start("e2e-observe").await;
    let ns = temp_namespace(&env.client, "observe").await;
    env.ecr
        .create_repository()
        .repository_name("observe/me")
        .send()
        .await
        .unwrap();
    let kms = aws_sdk_ecr::types::EncryptionConfiguration::builder()
        .encryption_type(aws_sdk_ecr::types::EncryptionType::Kms)
        .build()
        .unwrap();
    env.ecr
        .create_repository()
        .repository_name("observe/kms")
        .encryption_configuration(kms)
        .send()
        .await
        .unwrap();

    env.apply_repository(
        &ns,
        "watched",
        json!({"name": "observe/me", "managementPolicy": "ObserveOnly", "imageTagMutability": "Immutable"}),
    )
    .await;
    env.apply_repository(
        &ns,
        "missing",
        json!({"name": "observe/missing", "managementPolicy": "ObserveOnly"}),
    )
    .await;
    env.apply_repository(
        &ns,
        "wrong-encryption",
        json!({"name": "observe/kms", "encryption": {"type": "AES256"}}),
    )
    .await;

    let r = env
        .wait_condition(&ns, "watched", "Drifted", "True", Some("DriftDetected"))
        .await;
    assert_eq!(condition(&r, "Ready").unwrap().status, "True");
    assert!(
        condition(&r, "Drifted")
            .unwrap()
            .message
            .contains("PutImageTagMutability")
    );
    let d = env
        .ecr
        .describe_repositories()
        .repository_names("observe/me")
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.repositories()[0].image_tag_mutability(),
        Some(&ImageTagMutability::Mutable),
        "ObserveOnly never writes"
    );
    assert!(!env.ecr_tags("observe/me").await.contains_key(OWNER_TAG));

    env.wait_condition(&ns, "missing", "Stalled", "True", Some("RepositoryNotFound"))
        .await;
    assert!(
        !env.ecr_exists("observe/missing").await,
        "ObserveOnly never creates"
    );

    let r = env
        .wait_condition(
            &ns,
            "wrong-encryption",
            "Stalled",
            "True",
            Some("EncryptionMismatch"),
        )
        .await;
    assert!(condition(&r, "Stalled").unwrap().message.contains("KMS"));
    assert!(env.ecr_exists("observe/kms").await, "never recreated");
    assert!(
        env.proxy
            .forwarded_writes()
            .iter()
            .all(|op| op != "DeleteRepository" && op != "CreateRepository")
    );
    env.delete_registry().await;
}

#[tokio::test]
async fn watch_namespaces_and_controllers_limit_what_an_instance_serves() {
    let client = cluster().client().await.unwrap();
    let served = temp_namespace(&client, "served").await;
    let other = temp_namespace(&client, "unserved").await;
    let env = OperatorEnv::start_with(
        "e2e-scoped",
        &[
            "--watch-namespaces",
            &served,
            "--controllers",
            "registry,repository",
        ],
    )
    .await;
    env.apply_repository(&served, "inside", json!({"name": format!("{served}/inside")}))
        .await;
    env.apply_repository(&other, "outside", json!({"name": format!("{other}/outside")}))
        .await;
    let pull = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret",
        "metadata": {"name": "not-served"}, "spec": {"registries": ["e2e-scoped"]}});
    env.apply(&served, &pull).await.unwrap();

    env.wait_condition(&served, "inside", "Ready", "True", None).await;
    assert!(env.ecr_exists(&format!("{served}/inside")).await);
    // Give the instance time to (wrongly) act on the rest.
    quiet(Duration::from_secs(3)).await;
    let outside = Api::<Repository>::namespaced(client.clone(), &other)
        .get("outside")
        .await
        .unwrap();
    assert!(outside.status.is_none(), "an unserved namespace gets no status");
    assert!(outside.finalizers().is_empty(), "nor a finalizer");
    assert!(!env.ecr_exists(&format!("{other}/outside")).await);
    let pull = Api::<ecr_operator::api::v1alpha1::PullSecret>::namespaced(client.clone(), &served)
        .get("not-served")
        .await
        .unwrap();
    assert!(pull.status.is_none(), "the pull-secret controller is not running");
    let logs = env.logs();
    let synced = logs
        .lines()
        .find(|l| l.contains("caches synced"))
        .unwrap_or_default();
    assert!(synced.contains("Registry"), "{}", tail(&logs, 20));
    assert!(
        !synced.contains("Secret"),
        "no Secret watch without the pull-secret controllers: {synced}"
    );
}

/// Suspension is visible: a suspended object reports `Suspended=True` (and no Ready) at its current
/// generation (kstatus Current, never InProgress forever), an edit made while suspended is seen
/// but not applied, and resuming applies it. A suspended Registry says so too.
#[tokio::test]
async fn suspension_is_reported_and_edits_wait_for_resume() {
    let env = OperatorEnv::start("e2e-suspend").await;
    let ns = temp_namespace(&env.client, "suspend").await;
    let spec = |suspend: bool, team: &str| json!({"name": "suspend/web", "tags": {"team": team}, "suspend": suspend});
    env.apply_repository(&ns, "web", spec(false, "a")).await;
    env.wait_condition(&ns, "web", "Ready", "True", Some("Succeeded"))
        .await;

    env.apply_repository(&ns, "web", spec(true, "a")).await;
    env.wait_condition(&ns, "web", "Suspended", "True", Some("Suspended"))
        .await;
    // An edit while suspended: observed (so nothing waits on it), not applied.
    env.apply_repository(&ns, "web", spec(true, "b")).await;
    let r = env
        .wait_condition(&ns, "web", "Suspended", "True", Some("Suspended"))
        .await;
    assert_eq!(
        r.status.as_ref().unwrap().observed_generation,
        r.metadata.generation
    );
    assert_eq!(verdict(&r), "Current");
    for other in ["Ready", "Reconciling", "Stalled"] {
        assert!(condition(&r, other).is_none(), "{other}: {:?}", r.status);
    }
    quiet(Duration::from_secs(2)).await;
    assert_eq!(
        env.ecr_tags("suspend/web").await.get("team").map(String::as_str),
        Some("a")
    );

    env.apply_repository(&ns, "web", spec(false, "b")).await;
    env.wait_condition(&ns, "web", "Ready", "True", Some("Succeeded"))
        .await;
    assert_eq!(
        env.ecr_tags("suspend/web").await.get("team").map(String::as_str),
        Some("b")
    );

    env.apply_registry(json!({"suspend": true})).await;
    let registry = env
        .wait_registry(|r| has_condition(r, "Suspended", "True", Some("Suspended")))
        .await;
    assert_eq!(verdict(&registry), "Current");
    env.apply_registry(json!({"suspend": false})).await;
    env.wait_registry_ready().await;
}

/// Deleting a Registry that a Repository (`deletionPolicy: Delete`) still uses: the Registry
/// stays, Ready, naming its user in `InUse`; deleting the Repository then deletes the ECR
/// repository through it (it used to hang in Terminating, with its namespace), and the Registry
/// goes last.
#[tokio::test]
async fn a_registry_in_use_stays_until_its_users_are_gone() {
    use ecr_operator::api::v1alpha1::Registry;
    let env = OperatorEnv::start("e2e-in-use").await;
    env.wait_registry_ready().await;
    let ns = temp_namespace(&env.client, "in-use").await;
    env.apply_repository(
        &ns,
        "web",
        json!({"name": "in-use/web", "deletionPolicy": "Delete"}),
    )
    .await;
    env.wait_condition(&ns, "web", "Ready", "True", None).await;

    env.delete_registry().await;
    let held = env
        .wait_registry(|r| has_condition(r, "InUse", "True", Some("InUse")))
        .await;
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(has_condition(&held, "Ready", "True", None), "{:?}", held.status);
    let message = &condition(&held, "InUse").unwrap().message;
    assert!(message.contains(&format!("Repository {ns}/web")), "{message}");

    let repositories: Api<Repository> = Api::namespaced(env.client.clone(), &ns);
    repositories
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "the Repository to be deleted",
        || async { repositories.get_opt("web").await.unwrap().is_none().then_some(()) },
    )
    .await;
    assert!(
        !env.ecr_exists("in-use/web").await,
        "deleted from ECR through the held Registry"
    );
    let registries: Api<Registry> = Api::all(env.client.clone());
    eventually(
        Duration::from_secs(60),
        "the Registry to go once unused",
        || async {
            registries
                .get_opt(&env.registry)
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
}

/// Handing an ECR repository to another namespace, both documented ways, against moto: deleting
/// the old object with `deletionPolicy: Retain` releases the repository (its owner tag goes) and a
/// Repository elsewhere adopts it; a repository whose owner tag names an object that is gone is
/// refused (`OwnedElsewhere`, saying how to hand it over) until `spec.takeOverFrom` names it.
#[tokio::test]
async fn a_repository_is_handed_over_across_namespaces_never_silently() {
    let env = OperatorEnv::start("e2e-handover").await;
    let old_ns = temp_namespace(&env.client, "handover-old").await;
    let new_ns = temp_namespace(&env.client, "handover-new").await;

    // 1. Release by deletion with Retain, then adoption elsewhere.
    env.apply_repository(&old_ns, "api", json!({"name": "handover/api"}))
        .await;
    env.wait_condition(&old_ns, "api", "Ready", "True", None).await;
    let old: Api<Repository> = Api::namespaced(env.client.clone(), &old_ns);
    old.delete("api", &DeleteParams::default()).await.unwrap();
    eventually(Duration::from_secs(60), "the old Repository to go", || async {
        old.get_opt("api").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(
        env.ecr_exists("handover/api").await,
        "Retain keeps the repository"
    );
    assert!(
        !env.ecr_tags("handover/api").await.contains_key(OWNER_TAG),
        "released"
    );
    env.apply_repository(&new_ns, "api", json!({"name": "handover/api"}))
        .await;
    env.wait_condition(&new_ns, "api", "Ready", "True", None).await;
    assert_eq!(
        env.ecr_tags("handover/api").await.get(OWNER_TAG).cloned(),
        Some(format!("{CLUSTER_ID}/{new_ns}/api"))
    );

    // 2. An owner tag naming an object that is gone (never released): refused with the way out.
    let ghost = format!("{CLUSTER_ID}/ghost-ns/web");
    env.ecr
        .create_repository()
        .repository_name("handover/web")
        .send()
        .await
        .unwrap();
    let arn = env
        .ecr
        .describe_repositories()
        .repository_names("handover/web")
        .send()
        .await
        .unwrap()
        .repositories()[0]
        .repository_arn()
        .unwrap()
        .to_owned();
    let tag = aws_sdk_ecr::types::Tag::builder()
        .key(OWNER_TAG)
        .value(&ghost)
        .build()
        .unwrap();
    env.ecr
        .tag_resource()
        .resource_arn(&arn)
        .tags(tag)
        .send()
        .await
        .unwrap();
    env.apply_repository(&new_ns, "web", json!({"name": "handover/web"}))
        .await;
    let refused = env
        .wait_condition(&new_ns, "web", "Stalled", "True", Some("OwnedElsewhere"))
        .await;
    let message = &condition(&refused, "Stalled").unwrap().message;
    assert!(
        message.contains(&ghost) && message.contains("spec.takeOverFrom"),
        "{message}"
    );
    assert_eq!(
        env.ecr_tags("handover/web").await.get(OWNER_TAG),
        Some(&ghost),
        "never silently taken"
    );
    env.apply_repository(
        &new_ns,
        "web",
        json!({"name": "handover/web", "takeOverFrom": "ghost-ns/web"}),
    )
    .await;
    env.wait_condition(&new_ns, "web", "Ready", "True", None).await;
    assert_eq!(
        env.ecr_tags("handover/web").await.get(OWNER_TAG).cloned(),
        Some(format!("{CLUSTER_ID}/{new_ns}/web"))
    );
    env.delete_registry().await;
}
