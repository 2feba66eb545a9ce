//! Reconciles `LifecyclePolicy` objects: validates the rules, puts the policy on every Repository
//! it selects and wins (the oldest LifecyclePolicy wins a repository), removes it where it no
//! longer applies (only policies this operator put, recognised by hash), and previews the rules
//! locally over DescribeImages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::core::SelectorExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::context::{Context, object_key, publish_outcome, ready_reason};
use super::error_policy;
use super::repository::ecr_name;
use crate::api::v1alpha1::{
    AppliedLifecyclePolicy, LifecyclePolicy, LifecyclePolicyStatus, LifecyclePolicyTarget, LifecyclePreview,
    Repository, RulePreview,
};
use crate::api::{FINALIZER, RECONCILE_REQUESTED_AT};
use crate::backend::RegistryBackend;
use crate::error::{Error, Result};
use crate::lifecycle::{self, evaluate};
use crate::status::{Outcome, summarize, write_fields, write_if_changed};

pub const CONTROLLER: &str = "lifecycle-policy";
/// The Repository status field this controller owns.
const REPOSITORY_FIELD: &str = "lifecyclePolicy";

/// Runs the LifecyclePolicy controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api = Api::<LifecyclePolicy>::all(ctx.client.clone());
    let controller = Controller::new(api, watcher::Config::default().any_semantic());
    let store = controller.store();
    controller
        // A Repository that appears or changes labels re-queues the policies of its namespace.
        .watches(Api::<Repository>::all(ctx.client.clone()), watcher::Config::default().any_semantic(), move |repo| {
            let ns = repo.namespace();
            store.state().into_iter().filter(|p| p.namespace() == ns).map(|p| ObjectRef::from_obj(p.as_ref())).collect::<Vec<_>>()
        })
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.tunables.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<B>, error_policy::<LifecyclePolicy, B>, ctx.clone())
        .for_each(|r| super::report(CONTROLLER, r))
        .await;
}

/// Pure: whether `policy` selects `repo` (same namespace, by label selector or name).
pub fn selects(policy: &LifecyclePolicy, repo: &Repository) -> Result<bool> {
    if policy.namespace() != repo.namespace() {
        return Ok(false);
    }
    if let Some(names) = &policy.spec.repositories {
        return Ok(names.contains(&repo.name_any()));
    }
    match &policy.spec.repository_selector {
        Some(sel) => {
            let s = kube::core::Selector::try_from(sel.clone())
                .map_err(|e| Error::InvalidSpec(format!("invalid repositorySelector: {e}")))?;
            Ok(s.matches(repo.labels()))
        }
        None => Ok(false),
    }
}

/// Pure: the LifecyclePolicy that holds `repo`: the oldest (creationTimestamp, then name) of the
/// policies selecting it. Deterministic, so two policies never flap.
pub fn winner<'a>(policies: &'a [LifecyclePolicy], repo: &Repository) -> Option<&'a LifecyclePolicy> {
    policies
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && selects(p, repo).unwrap_or(false))
        .min_by(|a, b| {
            let key =
                |p: &LifecyclePolicy| (p.metadata.creation_timestamp.clone().map(|t| t.0), p.name_any());
            key(a).cmp(&key(b))
        })
}

async fn reconcile<B: RegistryBackend>(lp: Arc<LifecyclePolicy>, ctx: Arc<Context<B>>) -> Result<Action> {
    let start = Instant::now();
    let Some(ns) = ctx.served_namespace(lp.as_ref())? else {
        return Ok(Action::await_change());
    };
    let api = Api::<LifecyclePolicy>::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, lp.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(lp) => apply(&lp, &api, &ctx).await,
            FinalizerEvent::Cleanup(lp) => {
                let repos =
                    Api::<Repository>::namespaced(ctx.client.clone(), &lp.namespace().unwrap_or_default())
                        .list(&Default::default())
                        .await
                        .map_err(Error::kube("list Repositories"))?
                        .items;
                release(&lp, &ctx, &repos, &[]).await?;
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(Error::from);
    super::finish(&ctx, CONTROLLER, lp.as_ref(), start, result)
}

/// What one reconcile found.
struct Applied {
    targets: Vec<LifecyclePolicyTarget>,
    preview: Vec<RulePreview>,
    put: Vec<String>,
    removed: usize,
}

async fn apply<B: RegistryBackend>(
    lp: &LifecyclePolicy,
    api: &Api<LifecyclePolicy>,
    ctx: &Context<B>,
) -> Result<Action> {
    if lp.spec.suspend {
        return Ok(Action::await_change());
    }
    let outcome = sync(lp, ctx).await;
    let status = next_status(lp, &outcome, &Time(k8s_openapi::jiff::Timestamp::now()));
    let previous = ready_reason(lp.status.as_ref().map(|s| s.conditions.as_slice()));
    let written = write_if_changed(api, lp, &status, &ctx.field_manager(CONTROLLER)).await;
    let event = outcome.as_ref().map(|a| {
        (!a.put.is_empty() || a.removed > 0).then(|| {
            (
                "Updated",
                format!(
                    "Put the lifecycle policy on {}; removed it from {} repositories",
                    a.put.join(", "),
                    a.removed
                ),
            )
        })
    });
    publish_outcome(
        &ctx.recorder(CONTROLLER),
        &lp.object_ref(&()),
        previous.as_deref(),
        event.map_err(|(e, _)| e),
        "Reconcile",
    )
    .await;
    let applied = outcome.map_err(|(e, _)| e)?;
    written?;
    let conflicts: Vec<&str> = applied
        .targets
        .iter()
        .filter(|t| t.state == "Conflict")
        .map(|t| t.name.as_str())
        .collect();
    if !conflicts.is_empty() {
        // Reported in the status; re-checked when a policy or repository changes.
        return Ok(Action::requeue(ctx.tunables.stalled_recheck));
    }
    if applied.targets.iter().any(|t| t.state == "Pending") {
        return Ok(Action::requeue(ctx.tunables.waiting_requeue));
    }
    Ok(Action::requeue(
        ctx.interval(lp.spec.interval.as_ref(), &object_key(lp)),
    ))
}

/// The sync result: the error comes with whatever targets were computed before it.
type Synced = std::result::Result<Applied, (Error, Vec<LifecyclePolicyTarget>)>;

async fn sync<B: RegistryBackend>(lp: &LifecyclePolicy, ctx: &Context<B>) -> Synced {
    let problems = lifecycle::validate::violations(&lp.spec.rules);
    if !problems.is_empty() {
        return Err((Error::InvalidPolicy(problems.join("; ")), vec![]));
    }
    let ns = lp.namespace().unwrap_or_default();
    let repos = Api::<Repository>::namespaced(ctx.client.clone(), &ns)
        .list(&Default::default())
        .await
        .map_err(|e| (Error::kube("list Repositories")(e), vec![]))?
        .items;
    let policies = Api::<LifecyclePolicy>::namespaced(ctx.client.clone(), &ns)
        .list(&Default::default())
        .await
        .map_err(|e| (Error::kube("list LifecyclePolicies")(e), vec![]))?
        .items;
    let text = lifecycle::render(&lp.spec.rules);
    let hash = lifecycle::hash(&text);
    let now = SystemTime::now();
    let mut targets = Vec::new();
    let mut won = Vec::new();
    let mut put = Vec::new();
    let mut images_all: Vec<(String, evaluate::Image)> = Vec::new();
    for repo in &repos {
        if !selects(lp, repo).map_err(|e| (e, vec![]))? {
            continue;
        }
        let name = repo.name_any();
        match winner(&policies, repo) {
            Some(w) if w.name_any() != lp.name_any() => {
                targets.push(target(
                    &name,
                    "Conflict",
                    Some(format!("held by the older LifecyclePolicy {}", w.name_any())),
                ));
                continue;
            }
            _ => {}
        }
        won.push(name.clone());
        let ready = repo.status.as_ref().is_some_and(|s| s.repository_arn.is_some());
        let registry = ctx.ready_registry(&repo.spec.registry_ref.name);
        let (Ok(registry), true) = (registry, ready) else {
            targets.push(target(
                &name,
                "Pending",
                Some("the Repository is not Ready yet".into()),
            ));
            continue;
        };
        let result = async {
            let t = ctx.target(&registry).await?;
            let ecr = ecr_name(repo);
            if !lp.spec.dry_run {
                let current = ctx
                    .backend
                    .get_lifecycle_policy(&t, &ecr)
                    .await
                    .map_err(Error::backend("GetLifecyclePolicy"))?;
                if !current
                    .as_deref()
                    .is_some_and(|c| lifecycle::same_policy(c, &lp.spec.rules))
                {
                    ctx.backend
                        .put_lifecycle_policy(&t, &ecr, &text)
                        .await
                        .map_err(Error::backend("PutLifecyclePolicy"))?;
                    put.push(name.clone());
                }
                record(
                    ctx,
                    repo,
                    Some(AppliedLifecyclePolicy {
                        name: lp.name_any(),
                        hash: hash.clone(),
                    }),
                )
                .await?;
            }
            let images = ctx
                .backend
                .describe_images(&t, &ecr)
                .await
                .map_err(Error::backend("DescribeImages"))?;
            Ok::<_, Error>(images.into_iter().map(move |i| (ecr.clone(), image(i, now))))
        }
        .await;
        match result {
            Ok(images) => {
                images_all.extend(images);
                let state = if lp.spec.dry_run { "Previewed" } else { "Applied" };
                targets.push(target(&name, state, None));
            }
            Err(e) => {
                targets.push(target(&name, "Failed", Some(crate::error::error_chain(&e))));
                return Err((e, targets));
            }
        }
    }
    let removed = release(lp, ctx, &repos, &won)
        .await
        .map_err(|e| (e, targets.clone()))?;
    Ok(Applied {
        preview: preview(&lp.spec.rules, &images_all, now),
        targets,
        put,
        removed,
    })
}

fn target(name: &str, state: &str, message: Option<String>) -> LifecyclePolicyTarget {
    LifecyclePolicyTarget {
        name: name.to_owned(),
        state: state.to_owned(),
        message,
    }
}

fn image(i: crate::backend::ImageInfo, now: SystemTime) -> evaluate::Image {
    evaluate::Image {
        digest: i.digest,
        tags: i.tags,
        pushed_at: i.pushed_at.unwrap_or(now),
        last_pulled_at: i.last_pulled_at,
        archived: i.archived,
        archived_at: i.archived_at,
        last_activated_at: i.last_activated_at,
    }
}

/// Pure: per rule, over every selected repository (evaluated repository by repository).
fn preview(
    rules: &[crate::api::v1alpha1::LifecycleRule],
    images: &[(String, evaluate::Image)],
    now: SystemTime,
) -> Vec<RulePreview> {
    let mut by_repo: BTreeMap<&str, Vec<evaluate::Image>> = BTreeMap::new();
    for (repo, img) in images {
        by_repo.entry(repo.as_str()).or_default().push(img.clone());
    }
    let mut sorted = rules.to_vec();
    sorted.sort_by_key(|r| r.rule_priority);
    let mut out: Vec<RulePreview> = sorted
        .iter()
        .map(|r| RulePreview {
            rule_priority: r.rule_priority,
            ..Default::default()
        })
        .collect();
    for (repo, imgs) in by_repo {
        for (i, o) in evaluate::evaluate(rules, &imgs, now).into_iter().enumerate() {
            let p = &mut out[i];
            p.matched += o.matched.len() as i64;
            p.expiring += o.expired.len() as i64;
            p.transitioning += o.transitioned.len() as i64;
            for idx in o.expired.iter().chain(&o.transitioned) {
                if p.examples.len() < 3 {
                    let img = &imgs[*idx];
                    p.examples.push(match img.tags.first() {
                        Some(tag) => format!("{repo}:{tag}"),
                        None => format!("{repo}@{}", img.digest),
                    });
                }
            }
        }
    }
    out
}

/// Sets (or clears) the Repository status field this controller owns.
async fn record<B: RegistryBackend>(
    ctx: &Context<B>,
    repo: &Repository,
    applied: Option<AppliedLifecyclePolicy>,
) -> Result<()> {
    let ns = repo.namespace().unwrap_or_default();
    let api = Api::<Repository>::namespaced(ctx.client.clone(), &ns);
    let mut status = repo.status.clone().unwrap_or_default();
    status.lifecycle_policy = applied;
    write_fields(&api, repo, &status, &ctx.field_manager(CONTROLLER), &|k| {
        k == REPOSITORY_FIELD
    })
    .await?;
    Ok(())
}

/// Removes this policy from the Repositories that record it but are not in `keep`: deletes the
/// ECR lifecycle policy only when it is still the one this operator put (same hash).
async fn release<B: RegistryBackend>(
    lp: &LifecyclePolicy,
    ctx: &Context<B>,
    repos: &[Repository],
    keep: &[String],
) -> Result<usize> {
    let mut removed = 0;
    for repo in repos {
        let Some(applied) = repo.status.as_ref().and_then(|s| s.lifecycle_policy.clone()) else {
            continue;
        };
        if applied.name != lp.name_any() || keep.contains(&repo.name_any()) {
            continue;
        }
        if let Ok(registry) = ctx.ready_registry(&repo.spec.registry_ref.name) {
            let t = ctx.target(&registry).await?;
            let ecr = ecr_name(repo);
            let current = ctx
                .backend
                .get_lifecycle_policy(&t, &ecr)
                .await
                .map_err(Error::backend("GetLifecyclePolicy"))?;
            if current
                .as_deref()
                .is_some_and(|c| lifecycle::hash(c) == applied.hash)
            {
                ctx.backend
                    .delete_lifecycle_policy(&t, &ecr)
                    .await
                    .map_err(Error::backend("DeleteLifecyclePolicy"))?;
                removed += 1;
            }
        }
        record(ctx, repo, None).await?;
    }
    Ok(removed)
}

/// Pure: the next status. The preview's `evaluatedAt` moves only when the preview changes, so an
/// in-sync reconcile writes nothing.
fn next_status(lp: &LifecyclePolicy, outcome: &Synced, now: &Time) -> LifecyclePolicyStatus {
    let prev = lp.status.clone().unwrap_or_default();
    let generation = lp.meta().generation;
    let mut status = LifecyclePolicyStatus {
        observed_generation: generation,
        last_handled_reconcile_at: lp.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        ..prev.clone()
    };
    let conflict_error;
    let summary = match outcome {
        Ok(a) => {
            status.repositories = a.targets.clone();
            let same = prev.preview.as_ref().is_some_and(|p| p.rules == a.preview);
            status.preview = Some(LifecyclePreview {
                evaluated_at: if same {
                    prev.preview.as_ref().and_then(|p| p.evaluated_at.clone())
                } else {
                    Some(now.clone())
                },
                rules: a.preview.clone(),
            });
            let conflicts: Vec<&str> = a
                .targets
                .iter()
                .filter(|t| t.state == "Conflict")
                .map(|t| t.name.as_str())
                .collect();
            let applied = a
                .targets
                .iter()
                .filter(|t| t.state == "Applied" || t.state == "Previewed")
                .count();
            let pending: Vec<&str> = a
                .targets
                .iter()
                .filter(|t| t.state == "Pending")
                .map(|t| t.name.as_str())
                .collect();
            if conflicts.is_empty() && !pending.is_empty() {
                // Not Ready until every selected repository is served.
                conflict_error = Error::DependencyNotReady {
                    kind: "Repository",
                    name: pending.join(", "),
                };
                Outcome::Failed(&conflict_error)
            } else if conflicts.is_empty() {
                Outcome::InSync(if lp.spec.dry_run {
                    format!("Previewed on {applied} repositories (dryRun: nothing put)")
                } else {
                    format!("Applied to {applied} repositories")
                })
            } else {
                conflict_error = Error::Conflict(format!(
                    "Repositories {} are held by an older LifecyclePolicy; applied to {applied}",
                    conflicts.join(", ")
                ));
                Outcome::Failed(&conflict_error)
            }
        }
        Err((e, targets)) => {
            if !targets.is_empty() {
                status.repositories = targets.clone();
            }
            Outcome::Failed(e)
        }
    };
    status.conditions = summarize(&prev.conditions, generation, &summary, now);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(name: &str, created: i64, spec: serde_json::Value) -> LifecyclePolicy {
        let mut spec = spec;
        spec["rules"] = json!([{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}}]);
        let mut p: LifecyclePolicy = serde_json::from_value(
            json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "LifecyclePolicy",
            "metadata": {"name": name, "namespace": "ns"}, "spec": spec}),
        )
        .unwrap();
        p.metadata.creation_timestamp =
            Some(Time(k8s_openapi::jiff::Timestamp::from_second(created).unwrap()));
        p
    }

    fn repo(name: &str, labels: serde_json::Value) -> Repository {
        serde_json::from_value(
            json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
            "metadata": {"name": name, "namespace": "ns", "labels": labels}, "spec": {}}),
        )
        .unwrap()
    }

    #[test]
    fn selection_by_label_or_name_in_the_same_namespace() {
        let by_label = policy(
            "a",
            1,
            json!({"repositorySelector": {"matchLabels": {"lifecycle": "std"}}}),
        );
        let by_name = policy("b", 1, json!({"repositories": ["api"]}));
        assert!(selects(&by_label, &repo("api", json!({"lifecycle": "std"}))).unwrap());
        assert!(!selects(&by_label, &repo("api", json!({}))).unwrap());
        assert!(selects(&by_name, &repo("api", json!({}))).unwrap());
        assert!(!selects(&by_name, &repo("web", json!({}))).unwrap());
        let mut elsewhere = repo("api", json!({"lifecycle": "std"}));
        elsewhere.metadata.namespace = Some("other".into());
        assert!(!selects(&by_label, &elsewhere).unwrap());
    }

    #[test]
    fn the_oldest_policy_wins_then_the_name() {
        let r = repo("api", json!({"lifecycle": "std"}));
        let sel = json!({"repositorySelector": {"matchLabels": {"lifecycle": "std"}}});
        let ps = vec![
            policy("zeta", 100, sel.clone()),
            policy("alpha", 200, sel.clone()),
            policy("beta", 100, sel.clone()),
        ];
        assert_eq!(winner(&ps, &r).unwrap().name_any(), "beta");
        let mut gone = ps.clone();
        gone[2].metadata.deletion_timestamp =
            Some(Time(k8s_openapi::jiff::Timestamp::from_second(300).unwrap()));
        assert_eq!(winner(&gone, &r).unwrap().name_any(), "zeta");
    }

    #[test]
    fn pending_repositories_keep_the_policy_reconciling() {
        let lp = policy("a", 1, json!({"repositories": ["api"]}));
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
        let pending: Synced = Ok(Applied {
            targets: vec![target("api", "Pending", None)],
            preview: vec![],
            put: vec![],
            removed: 0,
        });
        let s = next_status(&lp, &pending, &now);
        assert_eq!(
            crate::status::kstatus(None, s.observed_generation, &s.conditions, false),
            "InProgress"
        );
        assert_eq!(s.conditions[0].reason, "DependencyNotReady");
    }

    #[test]
    fn preview_evaluated_at_moves_only_when_the_preview_changes() {
        let lp = policy("a", 1, json!({"repositories": ["api"]}));
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
        let t2 = Time(k8s_openapi::jiff::Timestamp::from_second(2_000).unwrap());
        let ok = |expiring| -> Synced {
            Ok(Applied {
                targets: vec![target("api", "Applied", None)],
                preview: vec![RulePreview {
                    rule_priority: 1,
                    matched: 7,
                    expiring,
                    ..Default::default()
                }],
                put: vec![],
                removed: 0,
            })
        };
        let s1 = next_status(&lp, &ok(2), &t1);
        let mut lp2 = lp.clone();
        lp2.status = Some(s1.clone());
        assert_eq!(
            next_status(&lp2, &ok(2), &t2),
            s1,
            "same preview: identical status, no write"
        );
        let s3 = next_status(&lp2, &ok(3), &t2);
        assert_eq!(s3.preview.unwrap().evaluated_at, Some(t2));
    }
}
