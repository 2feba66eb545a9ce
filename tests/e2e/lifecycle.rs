//! LifecyclePolicy against the real control plane and moto. moto stores lifecycle policies but
//! never evaluates them, accepts only the classic grammar (no archive or transition rules), and
//! has no preview API: these tests use classic rules, and the preview is the operator's own
//! evaluator over DescribeImages (age-, pull- and archive-based rules are covered by its unit tests).

use std::time::Duration;

use ecr_operator::api::RECONCILE_REQUESTED_AT;
use ecr_operator::api::v1alpha1::{LifecyclePolicy, Registry, Repository};
use ecr_operator_testenv::FaultPlan;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::harness::env::{OperatorEnv, tail};
use crate::harness::wait::{condition, has_condition, wait_condition};
use crate::support::{eventually, temp_namespace};

fn rules() -> Value {
    json!([
        {"rulePriority": 1, "description": "keep 2 releases", "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"], "countType": "imageCountMoreThan", "countNumber": 2}, "action": {"type": "expire"}},
        {"rulePriority": 2, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}, "action": {"type": "expire"}}
    ])
}

async fn apply_policy(env: &OperatorEnv, ns: &str, name: &str, spec: Value) {
    let doc = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": name}, "spec": spec});
    env.apply(ns, &doc).await.unwrap();
}

async fn repo(env: &OperatorEnv, ns: &str, name: &str, labels: Value) {
    let doc = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository", "metadata": {"name": name, "labels": labels},
        "spec": {"registryRef": {"name": env.registry}, "name": format!("{ns}/{name}")}});
    env.apply(ns, &doc).await.unwrap();
}

async fn ecr_policy(env: &OperatorEnv, ns: &str, name: &str) -> Option<String> {
    env.ecr
        .get_lifecycle_policy()
        .repository_name(format!("{ns}/{name}"))
        .send()
        .await
        .ok()
        .and_then(|o| o.lifecycle_policy_text().map(str::to_owned))
}

async fn wait_policy(env: &OperatorEnv, ns: &str, name: &str, present: bool) {
    let what = format!(
        "{ns}/{name} to {} a lifecycle policy",
        if present { "have" } else { "lose" }
    );
    let ok = tokio::time::timeout(
        Duration::from_secs(60),
        eventually(Duration::from_secs(60), &what, || async {
            (ecr_policy(env, ns, name).await.is_some() == present).then_some(())
        }),
    )
    .await;
    if ok.is_err() {
        panic!("timed out waiting for {what}\n{}", tail(&env.logs(), 30));
    }
}

async fn wait_lp(env: &OperatorEnv, ns: &str, name: &str, type_: &str, reason: &str) -> LifecyclePolicy {
    let api: Api<LifecyclePolicy> = Api::namespaced(env.client.clone(), ns);
    let limit = Duration::from_secs(60);
    wait_condition(&api, name, type_, "True", Some(reason), limit, || env.logs()).await
}

async fn wait_repos_ready(env: &OperatorEnv, ns: &str, names: &[&str]) {
    let api: Api<Repository> = Api::namespaced(env.client.clone(), ns);
    for name in names {
        wait_condition(&api, name, "Ready", "True", None, Duration::from_secs(60), || {
            env.logs()
        })
        .await;
    }
}

#[tokio::test]
async fn a_label_selected_policy_follows_its_repositories_and_is_never_re_put() {
    let env = OperatorEnv::start("e2e-lp").await;
    let ns = temp_namespace(&env.client, "lp").await;
    repo(&env, &ns, "r1", json!({"lifecycle": "std"})).await;
    repo(&env, &ns, "r2", json!({"lifecycle": "std"})).await;
    repo(&env, &ns, "r3", json!({})).await;
    repo(&env, &ns, "foreign", json!({})).await;
    wait_repos_ready(&env, &ns, &["r1", "r2", "r3", "foreign"]).await;
    // A policy set outside the operator on an unselected repository is never touched.
    let theirs = r#"{"rules":[{"rulePriority":1,"description":"set by hand","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":500},"action":{"type":"expire"}}]}"#;
    env.ecr
        .put_lifecycle_policy()
        .repository_name(format!("{ns}/foreign"))
        .lifecycle_policy_text(theirs)
        .send()
        .await
        .unwrap();

    apply_policy(
        &env,
        &ns,
        "std",
        json!({"repositorySelector": {"matchLabels": {"lifecycle": "std"}}, "rules": rules()}),
    )
    .await;
    wait_lp(&env, &ns, "std", "Ready", "Succeeded").await;
    wait_policy(&env, &ns, "r1", true).await;
    wait_policy(&env, &ns, "r2", true).await;
    assert!(ecr_policy(&env, &ns, "r3").await.is_none());
    let text = ecr_policy(&env, &ns, "r1").await.unwrap();
    assert!(text.contains("imageCountMoreThan") && text.len() >= 100);

    // A newly labelled Repository gets it; a relabelled one loses it.
    repo(&env, &ns, "r3", json!({"lifecycle": "std"})).await;
    wait_policy(&env, &ns, "r3", true).await;
    repo(&env, &ns, "r1", json!({"lifecycle": "none"})).await;
    wait_policy(&env, &ns, "r1", false).await;

    // In sync: a reconcile does not put the policy again.
    env.proxy.clear();
    let mut spec = json!({"repositorySelector": {"matchLabels": {"lifecycle": "std"}}, "rules": rules()});
    spec["interval"] = json!("10s");
    apply_policy(&env, &ns, "std", spec).await;
    eventually(
        Duration::from_secs(30),
        "two more reconciles of the policy",
        || async { (env.proxy.forwarded("GetLifecyclePolicy") >= 4).then_some(()) },
    )
    .await;
    assert_eq!(
        env.proxy.forwarded("PutLifecyclePolicy"),
        0,
        "an in-sync policy is never re-put"
    );

    // Deleting the policy removes it everywhere it was put, and nowhere else.
    Api::<LifecyclePolicy>::namespaced(env.client.clone(), &ns)
        .delete("std", &DeleteParams::default())
        .await
        .unwrap();
    wait_policy(&env, &ns, "r2", false).await;
    wait_policy(&env, &ns, "r3", false).await;
    assert_eq!(ecr_policy(&env, &ns, "foreign").await.as_deref(), Some(theirs));
    env.delete_registry().await;
}

#[tokio::test]
async fn preview_counts_conflicts_and_invalid_policies() {
    let mut env = OperatorEnv::start("e2e-lp2").await;
    let ns = temp_namespace(&env.client, "lp2").await;
    repo(&env, &ns, "images", json!({})).await;
    wait_repos_ready(&env, &ns, &["images"]).await;
    for i in 1..=5 {
        env.push_image(&format!("{ns}/images"), &format!("v{i}")).await;
    }
    env.push_image(&format!("{ns}/images"), "latest").await;

    // dryRun: the preview counts, nothing is put.
    apply_policy(
        &env,
        &ns,
        "a-preview",
        json!({"repositories": ["images"], "dryRun": true, "rules": rules()}),
    )
    .await;
    let p = wait_lp(&env, &ns, "a-preview", "Ready", "Succeeded").await;
    let preview = p.status.unwrap().preview.unwrap();
    assert_eq!(preview.rules[0].matched, 5, "{preview:?}");
    assert_eq!(preview.rules[0].expiring, 3, "keep 2 of 5 v* images");
    assert!(preview.rules[0].examples.iter().all(|e| e.contains(":v")));
    assert!(preview.evaluated_at.is_some());
    assert!(
        ecr_policy(&env, &ns, "images").await.is_none(),
        "dryRun puts nothing"
    );

    // A second, newer policy on the same repository reports Conflict; the older one holds it.
    // (creationTimestamp has 1 s resolution: on a tie the name decides, so the older sorts first.)
    apply_policy(
        &env,
        &ns,
        "b-newer",
        json!({"repositories": ["images"], "rules": rules()}),
    )
    .await;
    let c = wait_lp(&env, &ns, "b-newer", "Stalled", "Conflict").await;
    let cond = c
        .status
        .clone()
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert!(cond.message.contains("images"), "{}", cond.message);
    assert!(
        c.status
            .unwrap()
            .repositories
            .iter()
            .any(|t| t.state == ecr_operator::api::v1alpha1::TargetState::Conflict
                && t.message.as_deref().unwrap_or("").contains("a-preview"))
    );

    // The conflict survives a restart without a write.
    let api: Api<LifecyclePolicy> = Api::namespaced(env.client.clone(), &ns);
    let versions = || async {
        let mut v = Vec::new();
        for n in ["a-preview", "b-newer"] {
            v.push(api.get(n).await.unwrap().metadata.resource_version.unwrap());
        }
        v
    };
    let before = versions().await;
    env.restart_and_settle("DescribeImages", 1).await;
    assert_eq!(env.proxy.forwarded("PutLifecyclePolicy"), 0);
    let after = versions().await;
    assert_eq!(before, after, "no status write after a restart");

    // What CEL cannot check ends Stalled InvalidPolicy: two rules with the same tag prefixes.
    apply_policy(&env, &ns, "dup", json!({"repositories": ["other"], "rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["a", "b"], "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}},
        {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPrefixList": ["b", "a"], "countType": "imageCountMoreThan", "countNumber": 9}, "action": {"type": "expire"}}
    ]})).await;
    let d = wait_lp(&env, &ns, "dup", "Stalled", "InvalidPolicy").await;
    let msg = d
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap()
        .message;
    assert!(
        msg.contains("rules 1 and 2") && msg.contains("must not repeat"),
        "{msg}"
    );
    env.delete_registry().await;
}

/// The reasons of the Warning events about `name` in `ns`.
async fn warnings(env: &OperatorEnv, ns: &str, name: &str) -> Vec<String> {
    Api::<k8s_openapi::api::events::v1::Event>::namespaced(env.client.clone(), ns)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .filter_map(|e| e.reason)
        .collect()
}

/// Waits (at most 30 s) until the policy `name` has a Warning event with `reason`.
async fn wait_warning(env: &OperatorEnv, ns: &str, name: &str, reason: &str) {
    eventually(
        Duration::from_secs(30),
        &format!("a Warning {reason}"),
        || async {
            warnings(env, ns, name)
                .await
                .iter()
                .any(|r| r == reason)
                .then_some(())
        },
    )
    .await;
}

async fn ready_message(env: &OperatorEnv, ns: &str, name: &str) -> String {
    let p = Api::<LifecyclePolicy>::namespaced(env.client.clone(), ns)
        .get(name)
        .await
        .unwrap();
    p.status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .message
}

/// A policy that names a Repository that does not exist is put on the ones that do and waits
/// (`Reconciling`, `NamedRepositoryNotFound`) until it exists; a selector that matches nothing
/// is Ready with the reason `NoRepositorySelected` until a Repository matches. Each says so
/// once in a Warning event.
#[tokio::test]
async fn a_policy_says_what_it_names_that_does_not_exist_and_when_it_selects_nothing() {
    let env = OperatorEnv::start("e2e-lp3").await;
    let ns = temp_namespace(&env.client, "lp3").await;
    repo(&env, &ns, "api", json!({})).await;
    wait_repos_ready(&env, &ns, &["api"]).await;

    apply_policy(
        &env,
        &ns,
        "named",
        json!({"repositories": ["api", "later"], "rules": rules()}),
    )
    .await;
    wait_lp(&env, &ns, "named", "Reconciling", "NamedRepositoryNotFound").await;
    wait_policy(&env, &ns, "api", true).await;
    let message = ready_message(&env, &ns, "named").await;
    assert!(
        message.starts_with(&format!(
            "spec.repositories names later, but no Repository later exists in namespace {ns}"
        )),
        "{message}"
    );
    wait_warning(&env, &ns, "named", "NamedRepositoryNotFound").await;
    // The Repository is created: the watch brings the policy to it, and the policy is Ready.
    repo(&env, &ns, "later", json!({})).await;
    wait_lp(&env, &ns, "named", "Ready", "Succeeded").await;
    wait_policy(&env, &ns, "later", true).await;

    apply_policy(
        &env,
        &ns,
        "selects-nothing",
        json!({"repositorySelector": {"matchLabels": {"lifecycle": "nothing-yet"}}, "rules": rules()}),
    )
    .await;
    wait_lp(&env, &ns, "selects-nothing", "Ready", "NoRepositorySelected").await;
    let message = ready_message(&env, &ns, "selects-nothing").await;
    assert!(
        message.starts_with(&format!(
            "repositorySelector matches no Repository in namespace {ns}"
        )),
        "{message}"
    );
    wait_warning(&env, &ns, "selects-nothing", "NoRepositorySelected").await;
    // A Repository gets matching labels: it gets the policy and the reason is Succeeded.
    repo(&env, &ns, "matched", json!({"lifecycle": "nothing-yet"})).await;
    wait_lp(&env, &ns, "selects-nothing", "Ready", "Succeeded").await;
    wait_policy(&env, &ns, "matched", true).await;
}

/// Asks the env's Registry to reconcile now (the reconcile-now annotation).
async fn poke_registry(env: &OperatorEnv, value: &str) {
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: value}}});
    Api::<Registry>::all(env.client.clone())
        .patch(&env.registry, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// A LifecyclePolicy deleted while its Registry cannot reach ECR is never forgotten: it stays
/// (its finalizer), waiting and saying so, with the policy still in ECR, until the Registry is
/// back; then the policy is removed from ECR and only then the object goes. A Repository with
/// `deletionPolicy: Retain` deleted during the outage likewise waits to release its repository. The policy re-checks
/// once more while the Registry is not Ready (its interval): that reconcile used to drop the
/// record of the put, so the deletion went through at once and the policy stayed in ECR for good.
#[tokio::test]
async fn a_policy_deleted_while_its_registry_is_unreachable_goes_only_once_removed_from_ecr() {
    let env = OperatorEnv::start("e2e-lp-outage").await;
    let ns = temp_namespace(&env.client, "lp-outage").await;
    repo(&env, &ns, "app", json!({})).await;
    wait_repos_ready(&env, &ns, &["app"]).await;
    // Re-checked every 10 s: the outage below spans such a re-check.
    apply_policy(
        &env,
        &ns,
        "std",
        json!({"repositories": ["app"], "rules": rules(), "interval": "10s"}),
    )
    .await;
    wait_lp(&env, &ns, "std", "Ready", "Succeeded").await;
    wait_policy(&env, &ns, "app", true).await;

    // ECR becomes unreachable (every connection dropped at the proxy); the Registry notices.
    env.proxy.set_plan(FaultPlan {
        drop_percent: 100,
        ..FaultPlan::default()
    });
    poke_registry(&env, "outage").await;
    env.wait_registry(|r| has_condition(r, "Ready", "False", None))
        .await;
    // The policy's next re-check finds its Registry not Ready and waits for it.
    let waiting = wait_lp(&env, &ns, "std", "Reconciling", "DependencyNotReady").await;
    let entry = &waiting.status.unwrap().repositories[0];
    assert!(entry.hash.is_some(), "the record of the put is kept: {entry:?}");

    let policies: Api<LifecyclePolicy> = Api::namespaced(env.client.clone(), &ns);
    policies.delete("std", &DeleteParams::default()).await.unwrap();
    // The Repository (deletionPolicy Retain) too: its release (the owner tag) waits as well.
    let repositories: Api<Repository> = Api::namespaced(env.client.clone(), &ns);
    repositories
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    let ecr_name = format!("{ns}/app");
    // For 15 s: both objects stay, deleting and waiting, and ECR keeps the policy and the owner
    // tag (moto is read directly, not through the failing proxy).
    let outage = std::time::Instant::now();
    while outage.elapsed() < Duration::from_secs(15) {
        let lp = policies
            .get_opt("std")
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("deleted with the policy still in ECR\n{}", tail(&env.logs(), 40)));
        assert!(lp.metadata.deletion_timestamp.is_some());
        assert!(
            ecr_policy(&env, &ns, "app").await.is_some(),
            "nothing can remove it while ECR is unreachable"
        );
        assert!(
            repositories.get_opt("app").await.unwrap().is_some(),
            "the Repository went without releasing its ECR repository\n{}",
            tail(&env.logs(), 40)
        );
        assert!(
            env.ecr_tags(&ecr_name)
                .await
                .contains_key(ecr_operator::api::OWNER_TAG)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let lp = policies.get("std").await.unwrap();
    let reconciling = condition(&lp, "Reconciling").cloned();
    assert!(
        reconciling
            .as_ref()
            .is_some_and(|c| c.status == "True" && c.reason == "DependencyNotReady"),
        "it says what it waits for: {reconciling:?}"
    );

    // ECR is back: the policy is removed from ECR, and only then the object goes.
    env.proxy.set_plan(FaultPlan::default());
    poke_registry(&env, "back").await;
    eventually(
        Duration::from_secs(120),
        "the LifecyclePolicy to go once ECR is back",
        || async { policies.get_opt("std").await.unwrap().is_none().then_some(()) },
    )
    .await;
    assert!(
        ecr_policy(&env, &ns, "app").await.is_none(),
        "removed from ECR before the object went"
    );
    assert!(
        env.proxy.forwarded("DeleteLifecyclePolicy") >= 1,
        "removed by the operator"
    );
    eventually(
        Duration::from_secs(120),
        "the Repository to go once ECR is back",
        || async { repositories.get_opt("app").await.unwrap().is_none().then_some(()) },
    )
    .await;
    assert!(env.ecr_exists(&ecr_name).await, "Retain keeps the repository");
    assert!(
        !env.ecr_tags(&ecr_name)
            .await
            .contains_key(ecr_operator::api::OWNER_TAG),
        "and releases it"
    );
    env.delete_registry().await;
}

/// Deleting a namespace with everything in it finishes and leaves nothing of it in ECR: a
/// Repository with `deletionPolicy: Delete` deletes its ECR repository, the LifecyclePolicy on it
/// finds nothing left to remove (ECR answers RepositoryNotFoundException for a repository that is
/// gone; that used to be retried forever, holding the policy and the namespace in Terminating),
/// and the PullSecret's Secret goes with it.
#[tokio::test]
async fn a_namespace_deleted_with_everything_in_it_finishes_and_leaves_nothing_in_ecr() {
    let env = OperatorEnv::start("e2e-lp-ns").await;
    let ns = temp_namespace(&env.client, "lp-ns").await;
    let doc = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository", "metadata": {"name": "gone", "labels": {"lifecycle": "std"}},
        "spec": {"registryRef": {"name": env.registry}, "name": format!("{ns}/gone"), "deletionPolicy": "Delete"}});
    env.apply(&ns, &doc).await.unwrap();
    repo(&env, &ns, "kept", json!({"lifecycle": "std"})).await;
    wait_repos_ready(&env, &ns, &["gone", "kept"]).await;
    apply_policy(
        &env,
        &ns,
        "std",
        json!({"repositorySelector": {"matchLabels": {"lifecycle": "std"}}, "rules": rules()}),
    )
    .await;
    wait_lp(&env, &ns, "std", "Ready", "Succeeded").await;
    wait_policy(&env, &ns, "gone", true).await;
    let ps = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret", "metadata": {"name": "pull"},
        "spec": {"registries": [env.registry], "serviceAccounts": ["default"]}});
    env.apply(&ns, &ps).await.unwrap();
    let pull: Api<ecr_operator::api::v1alpha1::PullSecret> = Api::namespaced(env.client.clone(), &ns);
    wait_condition(
        &pull,
        "pull",
        "Ready",
        "True",
        None,
        Duration::from_secs(60),
        || env.logs(),
    )
    .await;

    // The Repository goes first, with its ECR repository: the policy has nothing left to remove
    // there and is Ready again (not retrying a repository that no longer exists).
    Api::<Repository>::namespaced(env.client.clone(), &ns)
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(60), "the ECR repository to go", || async {
        (!env.ecr_exists(&format!("{ns}/gone")).await).then_some(())
    })
    .await;
    let lp = eventually(
        Duration::from_secs(60),
        "the policy to settle on one repository",
        || async {
            let lp = Api::<LifecyclePolicy>::namespaced(env.client.clone(), &ns)
                .get("std")
                .await
                .ok()?;
            let s = lp.status.clone()?;
            (s.repositories.len() == 1 && has_condition(&lp, "Ready", "True", Some("Succeeded")))
                .then_some(lp)
        },
    )
    .await;
    assert_eq!(lp.status.unwrap().repositories[0].name, "kept");

    // Then the namespace, with everything left in it.
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces.delete(&ns, &DeleteParams::default()).await.unwrap();
    let finished = tokio::time::timeout(
        Duration::from_secs(120),
        eventually(
            Duration::from_secs(120),
            "the namespace to finish deleting",
            || async { namespaces.get_opt(&ns).await.unwrap().is_none().then_some(()) },
        ),
    )
    .await;
    if finished.is_err() {
        panic!("the namespace is still Terminating\n{}", tail(&env.logs(), 40));
    }
    assert!(!env.ecr_exists(&format!("{ns}/gone")).await);
    assert!(env.ecr_exists(&format!("{ns}/kept")).await, "Retain keeps it");
    assert!(
        ecr_policy(&env, &ns, "kept").await.is_none(),
        "the policy is removed from the repository that stays"
    );
    assert!(
        !env.ecr_tags(&format!("{ns}/kept"))
            .await
            .contains_key(ecr_operator::api::OWNER_TAG),
        "and that repository is released"
    );
    env.delete_registry().await;
}
