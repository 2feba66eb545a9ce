//! Reconciles `LifecyclePolicy` objects: validates the rules, puts the policy on every Repository
//! it selects and wins (the oldest LifecyclePolicy wins a repository), removes it where it no
//! longer applies (only policies this operator put, recognised by hash), and previews the rules
//! locally over DescribeImages.
//!
//! What was put where is recorded in the policy's own status (`status.repositories[]`: ECR name,
//! Registry, hash), so removing it never depends on another object still existing, and this
//! controller writes no other kind's status.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;

use crate::decide::lifecycle_policy as decide;
pub use crate::decide::lifecycle_policy::{
    Applied, Plan, image, keep_record, recorded, selects, targets, to_release, winner,
};

use super::context::{Context, object_key};
use super::driver::{self, Note, Reconciler};
use super::triggers;
use crate::api::v1alpha1::{
    LifecyclePolicy, LifecyclePolicyStatus, LifecyclePolicyTarget, Repository, TargetState,
};
use crate::backend::{BackendError, RegistryBackend};
use crate::error::{Error, Result};
use crate::lifecycle::{self, evaluate};

pub const CONTROLLER: &str = "lifecycle-policy";

/// Runs the LifecyclePolicy controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, own) = triggers::primary::<LifecyclePolicyController, B>(&ctx, triggers::own);
    let repositories = triggers::dependency::<Repository, B>(&ctx, triggers::repository_for_policies);
    let controller = Controller::for_stream(own, store.clone())
        // A Repository that appears, goes, becomes Ready or changes labels re-queues the policies
        // of its namespace; its status writes do not.
        .watches_stream(repositories, move |repo| {
            let ns = repo.namespace();
            store.state().into_iter().filter(|p| p.namespace() == ns).map(|p| ObjectRef::from_obj(p.as_ref())).collect::<Vec<_>>()
        })
        // A reference to an image never seen before (a deploy, a rollback) re-checks every
        // policy at once instead of at its interval, at most every few seconds.
        .reconcile_all_on(super::protection::new_uses(&ctx.protection.inventory));
    // The inventory of images in use, for protection: watched while this controller runs.
    let inventory = tokio::spawn(super::inventory::watch(
        ctx.client.clone(),
        ctx.tunables.watch_namespaces.clone(),
        ctx.protection.inventory.clone(),
        ctx.metrics.clone(),
    ));
    driver::run::<LifecyclePolicyController, B>(controller, ctx, shutdown).await;
    inventory.abort();
}

/// The outcome of one sync: what was done, the first failure on some repository, if any, and
/// what it reports without failing ([`decide::notice`]: named Repositories that do not exist, a
/// selector that matches none). The notice gets a Warning event when it starts, but is not
/// retried on a timer: the Repository watch re-queues the policy the moment one appears.
pub struct Synced {
    applied: Applied,
    failure: Option<Error>,
    notice: Option<Error>,
}

/// The LifecyclePolicy controller.
pub struct LifecyclePolicyController;

impl Reconciler for LifecyclePolicyController {
    type Kind = LifecyclePolicy;
    type Status = LifecyclePolicyStatus;
    type Synced = Synced;
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: bool = true;

    fn api(client: &kube::Client, lp: &LifecyclePolicy) -> Api<LifecyclePolicy> {
        Api::namespaced(client.clone(), &lp.namespace().unwrap_or_default())
    }

    fn suspended(lp: &LifecyclePolicy) -> bool {
        lp.spec.suspend
    }

    fn stored_status(lp: &LifecyclePolicy) -> Option<LifecyclePolicyStatus> {
        lp.status.clone()
    }

    async fn sync<B: RegistryBackend>(lp: &LifecyclePolicy, ctx: &Context<B>) -> Result<Synced> {
        sync(lp, ctx).await
    }

    async fn cleanup<B: RegistryBackend>(lp: &LifecyclePolicy, ctx: &Context<B>) -> Result<Option<Note>> {
        let previous = recorded(lp, &list_repositories(lp, ctx).await?);
        let mut removed = 0;
        for record in to_release(&previous, &[]) {
            // Waits (the finalizer stays) until the Registry is Ready: the record is never
            // dropped with the policy still in ECR.
            removed += usize::from(release(record, ctx).await?);
        }
        Ok((removed > 0).then(|| {
            (
                "Deleted",
                format!("Removed the lifecycle policy from {removed} repositories"),
            )
        }))
    }

    fn next_status(lp: &LifecyclePolicy, outcome: &Result<Synced>, now: &Time) -> LifecyclePolicyStatus {
        match outcome {
            Ok(s) => decide::next_status(lp, Some(&s.applied), s.failure.as_ref(), now),
            Err(e) => decide::next_status(lp, None, Some(e), now),
        }
    }

    fn failure(s: &Synced) -> Option<&Error> {
        s.failure.as_ref().or(s.notice.as_ref())
    }

    fn into_result(s: Synced) -> Result<Synced> {
        match s.failure {
            Some(e) => Err(e),
            None => Ok(s),
        }
    }

    fn event(_: &LifecyclePolicy, s: &Synced) -> Option<Note> {
        let a = &s.applied;
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
    }

    fn requeue<B: RegistryBackend>(lp: &LifecyclePolicy, s: &Synced, ctx: &Context<B>) -> Duration {
        // A Repository that does not exist yet is waited for by the watch, not by polling ECR.
        let state = |st: TargetState| {
            s.applied
                .targets
                .iter()
                .any(|t| t.state == st && !s.applied.missing.contains(&t.name))
        };
        if state(TargetState::Conflict) {
            // Reported in the status; re-checked when a policy or repository changes.
            ctx.tunables.stalled_recheck
        } else if state(TargetState::Pending) || state(TargetState::Releasing) {
            ctx.tunables.waiting_requeue
        } else {
            ctx.interval(lp.spec.interval.as_ref(), &object_key(lp))
        }
    }
}

/// The Repositories of the policy's namespace. A consistent LIST, kept on purpose (one per
/// reconcile, whatever the number of repositories served): the reconcile is often triggered by a
/// Repository change through a watch that keeps no store, and a separate store could still lack
/// that change when the reconcile runs (a new or relabelled Repository left unserved, with no
/// further trigger to fix it).
async fn list_repositories<B: RegistryBackend>(
    lp: &LifecyclePolicy,
    ctx: &Context<B>,
) -> Result<Vec<Repository>> {
    Ok(
        Api::<Repository>::namespaced(ctx.client.clone(), &lp.namespace().unwrap_or_default())
            .list(&ctx.tunables.watch_selector.list_params())
            .await
            .map_err(Error::kube("list Repositories"))?
            .items,
    )
}

/// Removes the policy recorded in `record` from ECR when ECR still holds exactly what was put.
/// Returns whether it deleted one; waits (an error) while the Registry is not Ready.
async fn release<B: RegistryBackend>(record: &LifecyclePolicyTarget, ctx: &Context<B>) -> Result<bool> {
    let (Some(registry), Some(ecr), Some(hash)) = (&record.registry, &record.ecr_name, &record.hash) else {
        return Ok(false);
    };
    let registry = ctx.ready_registry(registry)?;
    let t = ctx.target(&registry).await?;
    let current = match ctx.backend.get_lifecycle_policy(&t, ecr).await {
        Ok(current) => current,
        // The ECR repository itself is gone (deleted with its Repository): nothing to remove.
        Err(BackendError::NotFound(_)) => None,
        Err(e) => return Err(Error::backend("GetLifecyclePolicy")(e)),
    };
    if current.as_deref().is_none_or(|c| &lifecycle::hash(c) != hash) {
        return Ok(false); // gone, or changed by someone else: not ours to delete
    }
    ctx.backend
        .delete_lifecycle_policy(&t, ecr)
        .await
        .map_err(Error::backend("DeleteLifecyclePolicy"))?;
    Ok(true)
}

/// dereference (consistent LISTs of the namespace's Repositories and policies) → [`targets`]
/// (pure) → put and preview, per repository → release what is no longer served.
async fn sync<B: RegistryBackend>(lp: &LifecyclePolicy, ctx: &Context<B>) -> Result<Synced> {
    let problems = lifecycle::validate::violations(&lp.spec.rules);
    if !problems.is_empty() {
        return Err(Error::InvalidPolicy(format!(
            "invalid lifecycle policy: {}",
            problems.join("; ")
        )));
    }
    let ns = lp.namespace().unwrap_or_default();
    let repos = list_repositories(lp, ctx).await?;
    // Every policy of the namespace, consistently listed (kept on purpose): which one holds a
    // repository (the oldest) must be decided on all of them, including one created a moment
    // ago that this controller's store may not show yet, or two policies could both put theirs
    // on one repository and overwrite each other in turn.
    let policies = Api::<LifecyclePolicy>::namespaced(ctx.client.clone(), &ns)
        .list(&ctx.tunables.watch_selector.list_params())
        .await
        .map_err(Error::kube("list LifecyclePolicies"))?
        .items;
    let plans = targets(lp, &repos, &policies)?;
    // The records of earlier puts (the same LIST also serves the legacy records): an entry that
    // records no put this time keeps them, and what is no longer served is released below.
    let previous = recorded(lp, &repos);
    // The protection rule first (when on): `ProtectionDoesNotFit` puts nothing.
    let rules = super::protection::rules_to_put(lp)?;
    let text = lifecycle::render(&rules);
    let hash = lifecycle::hash(&text);
    let now = SystemTime::now();
    let (mut applied, mut failure) = (Applied::default(), None);
    let mut images_all: Vec<(String, evaluate::Image)> = Vec::new();
    let mut in_use = crate::decide::protection::preview::InUse::new();
    // Each repository's Registry prices for the preview's savings (docs/insight.md).
    let mut prices = std::collections::BTreeMap::new();
    let mut serving = Vec::new();
    for (name, plan) in plans {
        let (ecr, registry) = match plan {
            Plan::Conflict { holder } => {
                let message = format!("held by the older LifecyclePolicy {holder}");
                applied
                    .targets
                    .push(decide::entry(&name, TargetState::Conflict, Some(message)));
                continue;
            }
            Plan::Pending => {
                let message = "the Repository is not Ready yet".to_owned();
                applied
                    .targets
                    .push(decide::entry(&name, TargetState::Pending, Some(message)));
                continue;
            }
            Plan::Missing => {
                let message = format!("no Repository {name} exists in this namespace yet");
                applied
                    .targets
                    .push(decide::entry(&name, TargetState::Pending, Some(message)));
                applied.missing.push(name);
                continue;
            }
            Plan::Serve { ecr_name, registry } => (ecr_name, registry),
        };
        serving.push((registry.clone(), ecr.clone()));
        let Ok(resolved) = ctx.ready_registry(&registry) else {
            let message = format!("Registry {registry} is not Ready yet");
            let mut entry = decide::entry(&name, TargetState::Pending, Some(message));
            keep_record(&mut entry, &previous, &registry, &ecr);
            applied.targets.push(entry);
            continue;
        };
        let region = &resolved.spec.region;
        let price = crate::decide::insight::prices(region, resolved.spec.pricing.as_ref())
            .unwrap_or_else(|_| crate::decide::insight::default_prices(region));
        prices.insert(ecr.clone(), price);
        let mut entry = decide::entry(&name, TargetState::Failed, None);
        let result = async {
            let t = ctx.target(&resolved).await?;
            // With protection, the tags go on before the policy is put.
            let protected = if crate::decide::protection::settings(&lp.spec).is_some() {
                let images = describe(ctx, &t, &ecr, now).await?;
                let p = super::protection::protect(ctx, lp, &resolved, &t, &ecr, images, &rules).await?;
                entry.protected_images =
                    (!lp.spec.dry_run).then_some(i64::try_from(p.protected).unwrap_or(i64::MAX));
                Some(p)
            } else {
                None
            };
            if !lp.spec.dry_run {
                let current = ctx
                    .backend
                    .get_lifecycle_policy(&t, &ecr)
                    .await
                    .map_err(Error::backend("GetLifecyclePolicy"))?;
                if !current
                    .as_deref()
                    .is_some_and(|c| lifecycle::same_policy(c, &rules))
                {
                    ctx.backend
                        .put_lifecycle_policy(&t, &ecr, &text)
                        .await
                        .map_err(Error::backend("PutLifecyclePolicy"))?;
                    applied.put.push(name.clone());
                }
                // Recorded as soon as it is there, so a later failure cannot lose the record.
                entry.ecr_name = Some(ecr.clone());
                entry.registry = Some(registry.clone());
                entry.hash = Some(hash.clone());
            }
            let (images, used) = match protected {
                Some(p) => (p.images, p.in_use),
                None => (describe(ctx, &t, &ecr, now).await?, Default::default()),
            };
            Ok::<_, Error>((images, used))
        }
        .await;
        match result {
            Ok((images, used)) => {
                images_all.extend(images.into_iter().map(|i| (ecr.clone(), i)));
                if !used.is_empty() {
                    in_use.insert(ecr.clone(), used);
                }
                entry.state = if lp.spec.dry_run {
                    TargetState::Previewed
                } else {
                    TargetState::Applied
                };
            }
            Err(e) => {
                entry.message = Some(crate::text::error_chain(&e));
                failure.get_or_insert(e);
            }
        }
        keep_record(&mut entry, &previous, &registry, &ecr);
        applied.targets.push(entry);
    }
    // What this policy put earlier and no longer serves: remove it, or keep the record (and
    // wait) while its Registry is not Ready.
    for record in to_release(&previous, &serving) {
        match release(record, ctx).await {
            Ok(removed) => applied.removed += usize::from(removed),
            Err(e) => {
                let mut kept = record.clone();
                kept.state = TargetState::Releasing;
                kept.message = Some(crate::text::error_chain(&e));
                applied.targets.push(kept);
                if e.class() != crate::error::ErrorClass::Waiting {
                    failure.get_or_insert(e);
                }
            }
        }
    }
    applied.preview = decide::preview(&lp.spec.rules, &images_all, now);
    crate::decide::protection::preview::annotate(
        &mut applied.preview,
        &lp.spec.rules,
        &images_all,
        &in_use,
        now,
    );
    if crate::decide::protection::settings(&lp.spec).is_some() {
        // What the protected policy reclaims: nothing of an image in use.
        crate::decide::protection::preview::reclaim(
            &mut applied.preview,
            &rules,
            &images_all,
            &in_use,
            now,
            &prices,
        );
    } else {
        crate::decide::insight::reclaim(&lp.spec.rules, &images_all, now, &prices, &mut applied.preview);
    }
    let notice = decide::notice(lp, &applied);
    Ok(Synced {
        applied,
        failure,
        notice,
    })
}

/// Every image of `ecr` (DescribeImages), for the evaluator.
async fn describe<B: RegistryBackend>(
    ctx: &Context<B>,
    t: &crate::backend::Target,
    ecr: &str,
    now: SystemTime,
) -> Result<Vec<evaluate::Image>> {
    let images = ctx
        .backend
        .describe_images(t, ecr)
        .await
        .map_err(Error::backend("DescribeImages"))?;
    Ok(images.into_iter().map(|i| image(i, now)).collect())
}
