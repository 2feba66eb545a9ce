//! Protection of the images this cluster uses, for the LifecyclePolicy controller (I/O): the
//! uses of one ECR repository from the inventory → [`decide::resolve`] and [`decide::plan`]
//! (pure) → the protection tags added (BatchGetImage + PutImage) and released (BatchDeleteImage
//! by tag), an event for each, the metric of images protected. The policy itself is put by the
//! caller, with [`rules_to_put`] (the protection rule first), after the tags are in place.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use kube::Resource;
use kube::runtime::events::EventType;

use crate::api::v1alpha1::{LifecyclePolicy, LifecycleRule, Registry};
use crate::backend::{RegistryBackend, Target};
use crate::decide::protection::{self as decide, Settings};
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::lifecycle::evaluate::Image;

use super::context::Context;
use super::lifecycle_policy::CONTROLLER;

/// What protection keeps between reconciles: the inventory (fed by `controllers::inventory`) and,
/// per (Registry, ECR repository), when each marked image was first seen out of use. The latter
/// is memory only: after a restart the grace period starts again (later, never earlier).
#[derive(Default)]
pub struct State {
    pub inventory: Arc<Inventory>,
    left_use: Mutex<HashMap<(String, String), BTreeMap<String, SystemTime>>>,
}

impl State {
    fn left_use(&self, key: &(String, String)) -> BTreeMap<String, SystemTime> {
        let map = self
            .left_use
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key).cloned().unwrap_or_default()
    }

    fn set_left_use(&self, key: (String, String), value: BTreeMap<String, SystemTime>) {
        let mut map = self
            .left_use
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if value.is_empty() {
            map.remove(&key);
        } else {
            map.insert(key, value);
        }
    }
}

/// How long new uses gather before the policies are re-checked for them.
pub const NEW_USES_SETTLE: std::time::Duration = std::time::Duration::from_secs(3);

/// One item per burst of new image references in the inventory (after [`NEW_USES_SETTLE`]).
pub fn new_uses(inventory: &Inventory) -> impl futures::Stream<Item = ()> + Send + Sync + 'static {
    futures::stream::unfold(inventory.changes(), |mut rx| async move {
        rx.changed().await.ok()?;
        tokio::time::sleep(NEW_USES_SETTLE).await;
        rx.borrow_and_update();
        Some(((), rx))
    })
}

/// The rules the operator puts: the user's, with the protection rule first when protection is on
/// (`ProtectionDoesNotFit` when ECR's limits leave no room for it: nothing is put).
pub fn rules_to_put(lp: &LifecyclePolicy) -> Result<Vec<LifecycleRule>> {
    match crate::decide::protection::settings(&lp.spec) {
        Some(_) => decide::protected(&lp.spec.rules).map_err(Error::ProtectionDoesNotFit),
        None => Ok(lp.spec.rules.clone()),
    }
}

/// What protection found and did in one repository.
#[derive(Debug, Default)]
pub struct Protected {
    /// The repository's images as they are after the tags were added and released.
    pub images: Vec<Image>,
    /// Digests in use, with the workloads using each.
    pub in_use: BTreeMap<String, BTreeSet<String>>,
    /// Images protected by this cluster (in use, or in their grace period).
    pub protected: usize,
}

/// The images of `ecr` (in `registry`, reached through `t`) in use, and, unless `dry_run`, their
/// protection tags added and released. `images` are the repository's, from DescribeImages.
#[allow(clippy::too_many_arguments)]
pub async fn protect<B: RegistryBackend>(
    ctx: &Context<B>,
    lp: &LifecyclePolicy,
    registry: &Registry,
    t: &Target,
    ecr: &str,
    mut images: Vec<Image>,
    rules: &[LifecycleRule],
) -> Result<Protected> {
    let Some((grace, rollback)) = crate::decide::protection::settings(&lp.spec) else {
        return Ok(Protected {
            images,
            ..Default::default()
        });
    };
    let host = registry.status.as_ref().and_then(|s| s.registry_host.clone());
    let uses = host
        .map(|h| ctx.protection.inventory.uses(&h, ecr, rollback))
        .unwrap_or_default();
    let in_use = decide::resolve(&uses, &images);
    if lp.spec.dry_run {
        return Ok(Protected {
            images,
            protected: in_use.len(),
            in_use,
        });
    }
    let token = decide::cluster_token(&ctx.tunables.cluster_id);
    let key = (registry.metadata.name.clone().unwrap_or_default(), ecr.to_owned());
    let settings = Settings {
        token: &token,
        complete: ctx.protection.inventory.complete(),
        grace,
        rules,
        now: SystemTime::now(),
    };
    let digests: BTreeSet<String> = in_use.keys().cloned().collect();
    let plan = decide::plan(&images, &digests, &ctx.protection.left_use(&key), &settings);
    for (digest, tag) in &plan.add {
        ctx.backend
            .tag_image(t, ecr, digest, tag)
            .await
            .map_err(Error::backend("PutImage"))?;
        if let Some(i) = images.iter_mut().find(|i| &i.digest == digest) {
            i.tags.push(tag.clone());
        }
    }
    for (digest, tag) in &plan.release {
        ctx.backend
            .untag_image(t, ecr, tag)
            .await
            .map_err(Error::backend("BatchDeleteImage"))?;
        if let Some(i) = images.iter_mut().find(|i| &i.digest == digest) {
            i.tags.retain(|x| x != tag);
        }
        images.retain(|i| &i.digest != digest || !i.tags.is_empty());
    }
    ctx.protection.set_left_use(key, plan.left_use.clone());
    ctx.metrics.protected_images(
        registry.metadata.name.as_deref().unwrap_or_default(),
        ecr,
        plan.protected,
    );
    notify(ctx, lp, ecr, &plan, &in_use).await;
    Ok(Protected {
        images,
        in_use,
        protected: plan.protected,
    })
}

/// A Normal event for the tags added (`Protected`, naming the workloads) and released
/// (`ProtectionReleased`).
async fn notify<B: RegistryBackend>(
    ctx: &Context<B>,
    lp: &LifecyclePolicy,
    ecr: &str,
    plan: &decide::Plan,
    in_use: &BTreeMap<String, BTreeSet<String>>,
) {
    let reference = lp.object_ref(&());
    if !plan.add.is_empty() {
        let workloads: BTreeSet<&String> = plan
            .add
            .iter()
            .filter_map(|(d, _)| in_use.get(d))
            .flatten()
            .collect();
        let names: Vec<String> = workloads.into_iter().cloned().collect();
        let note = format!(
            "Protected {} images in use in {ecr} (used by {})",
            plan.add.len(),
            crate::text::listed(&names, decide::preview::NAMED)
        );
        ctx.events
            .publish(
                CONTROLLER,
                &reference,
                EventType::Normal,
                "Protected",
                note,
                "Protect",
            )
            .await;
    }
    if !plan.release.is_empty() {
        let note = format!(
            "Released the protection of {} images of {ecr} no longer in use (grace period over)",
            plan.release.len()
        );
        ctx.events
            .publish(
                CONTROLLER,
                &reference,
                EventType::Normal,
                "ProtectionReleased",
                note,
                "Protect",
            )
            .await;
    }
}
