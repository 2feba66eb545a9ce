//! Reconciles `Registry` objects: verifies the identity reaches the registry, fills the status,
//! and keeps the registry-wide scanning configuration and permissions policy in sync when set.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Controller;

use super::context::{Context, object_key};
use super::driver::{self, Note, Reconciler};
use super::triggers;
use crate::api::v1alpha1::{Registry, RegistryStatus};
use crate::backend::RegistryBackend;
use crate::error::{Error, Result};

mod in_use;
mod settings;

pub use crate::decide::owners;
use crate::decide::registry as decide;
pub use crate::decide::registry::{
    IN_USE, Synced, check_account, check_spec, desired_scanning, registry_host,
};
use owners::{Place, Setting, Yielded};

pub const CONTROLLER: &str = "registry";

/// Runs the Registry controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, own) = triggers::primary::<RegistryController, B>(&ctx, triggers::own);
    let controller = in_use::watch_users(Controller::for_stream(own, store), &ctx);
    // Another Registry of the same registry appearing, changing its place or claims, or going
    // may move the ownership of the registry-wide settings (see `owners`).
    let neighbours = ctx.clone();
    let controller = controller
        .watches_stream(triggers::registry_changes(&ctx, owners::key), move |changed| {
            owners::neighbours(&neighbours.registries, &changed)
        });
    driver::run::<RegistryController, B>(controller, ctx, shutdown).await;
}

/// The Registry controller: identity, account and registry-wide settings. The replication
/// controller owns `status.replication`; this one never sends it.
pub struct RegistryController;

impl Reconciler for RegistryController {
    type Kind = Registry;
    type Status = RegistryStatus;
    type Synced = Synced;
    const CONTROLLER: &'static str = CONTROLLER;
    // Deletion waits for the Registry's users (see `in_use`).
    const FINALIZER: bool = true;

    fn api(client: &kube::Client, _: &Registry) -> Api<Registry> {
        Api::all(client.clone())
    }

    fn suspended(registry: &Registry) -> bool {
        registry.spec.suspend
    }

    fn stored_status(registry: &Registry) -> Option<RegistryStatus> {
        decide::stored_status(registry)
    }

    async fn sync<B: RegistryBackend>(registry: &Registry, ctx: &Context<B>) -> Result<Synced> {
        sync(registry, ctx).await
    }

    fn next_status(registry: &Registry, outcome: &Result<Synced>, now: &Time) -> RegistryStatus {
        decide::next_status(registry, outcome, now)
    }

    async fn cleanup<B: RegistryBackend>(registry: &Registry, ctx: &Context<B>) -> Result<Option<Note>> {
        in_use::check(registry, ctx).await?;
        Ok(None)
    }

    fn event(_: &Registry, s: &Synced) -> Option<Note> {
        (!s.changed.is_empty()).then(|| ("Updated", format!("Updated the {}", s.changed.join(" and the "))))
    }

    fn warning(registry: &Registry, s: &Synced) -> Option<Note> {
        decide::conflict_warning(registry, s)
    }

    fn requeue<B: RegistryBackend>(registry: &Registry, _: &Synced, ctx: &Context<B>) -> Duration {
        ctx.interval(registry.spec.interval.as_ref(), &object_key(registry))
    }
}

async fn sync<B: RegistryBackend>(registry: &Registry, ctx: &Context<B>) -> Result<Synced> {
    check_spec(&registry.spec)?;
    // The one reconcile that reads the credentials Secret every time: it refreshes the keys
    // every user of this Registry shares (see `cache::static_keys`).
    let target = ctx.fresh_target(registry).await?;
    let info = ctx
        .backend
        .describe_registry(&target)
        .await
        .map_err(Error::backend("DescribeRegistry"))?;
    let served = registry.status.as_ref().and_then(|s| s.registry_id.as_deref());
    check_account(registry.spec.account_id.as_deref(), served, &info.registry_id)?;
    let yielded = yielded(registry, &info.registry_id, ctx).await?;
    let owns = |setting| !yielded.iter().any(|y: &Yielded| y.setting == setting);
    let mut changed = Vec::new();
    if let Some(desired) = desired_scanning(&registry.spec).filter(|_| owns(Setting::Scanning)) {
        let observed = ctx
            .backend
            .get_registry_scanning(&target)
            .await
            .map_err(Error::backend("GetRegistryScanningConfiguration"))?;
        if observed != desired {
            ctx.backend
                .put_registry_scanning(&target, &desired)
                .await
                .map_err(Error::backend("PutRegistryScanningConfiguration"))?;
            changed.push("scanning configuration");
        }
    }
    if let Some(policy) = registry.spec.policy.as_ref().filter(|_| owns(Setting::Policy)) {
        let desired = serde_json::Value::Object(policy.0.clone());
        let observed = ctx
            .backend
            .get_registry_policy(&target)
            .await
            .map_err(Error::backend("GetRegistryPolicy"))?;
        if !observed
            .as_deref()
            .is_some_and(|text| crate::policy::same_policy(text, &desired))
        {
            ctx.backend
                .put_registry_policy(&target, &desired.to_string())
                .await
                .map_err(Error::backend("PutRegistryPolicy"))?;
            changed.push("registry policy");
        }
    }
    settings::sync(registry, &target, ctx, owns, &mut changed).await?;
    Ok(Synced {
        info,
        changed,
        yielded,
        drift_check_interval: Some(crate::controllers::drift::humantime(
            ctx.drift.effective_interval(&registry.name_any()),
        )),
    })
}

/// I/O: the registry-wide settings this Registry (whose credentials reach `account`) leaves to
/// an older Registry of the same registry. The ReplicationRules are listed only when another
/// Registry shares the registry (rarely).
async fn yielded<B: RegistryBackend>(
    registry: &Registry,
    account: &str,
    ctx: &Context<B>,
) -> Result<Vec<Yielded>> {
    let place = Place::of(registry, account);
    let registries = ctx.registries.state();
    if owners::sharing(&registry.name_any(), &place, &registries).is_empty() {
        return Ok(Vec::new());
    }
    let ruled = ruled(ctx).await?;
    Ok(owners::yielded(registry, &place, &registries, &ruled))
}

/// I/O: the names of the Registries that have ReplicationRules (a consistent LIST: a rule created
/// a moment ago must count).
async fn ruled<B: RegistryBackend>(ctx: &Context<B>) -> Result<std::collections::BTreeSet<String>> {
    Ok(
        Api::<crate::api::v1alpha1::ReplicationRule>::all(ctx.client.clone())
            .list(&ctx.tunables.watch_selector.list_params())
            .await
            .map_err(Error::kube("list ReplicationRules"))?
            .items
            .into_iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .map(|r| r.spec.registry_ref.name)
            .collect(),
    )
}
