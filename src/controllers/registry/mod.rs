//! Reconciles `Registry` objects: verifies the identity reaches the registry, fills the status,
//! and keeps the registry-wide scanning configuration and permissions policy in sync when set.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::{Resource, ResourceExt};

use super::context::{Context, object_key};
use super::driver::{self, Note, Reconciler};
use super::triggers;
use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::v1alpha1::{Registry, RegistrySpec, RegistryStatus, ScanFrequency, ScanType};
use crate::backend::{RegistryBackend, RegistryInfo, ScanningRuleSettings, ScanningSettings};
use crate::error::{Error, Result};
use crate::status::{Outcome, domain_condition, set_condition, summarize};

mod in_use;
pub mod owners;

use owners::{Place, SETTINGS_CONFLICT, Setting, Yielded};

pub const CONTROLLER: &str = "registry";
/// The domain condition of a Registry whose deletion waits for its users.
pub const IN_USE: &str = "InUse";

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
    let controller = controller.watches_stream(
        triggers::dependency::<Registry, B>(&ctx, owners::key),
        move |changed| owners::neighbours(&neighbours.registries, &changed),
    );
    driver::run::<RegistryController, B>(controller, ctx, shutdown).await;
}

/// What the last sync found.
pub struct Synced {
    info: RegistryInfo,
    changed: Vec<&'static str>,
    /// The registry-wide settings this Registry sets but leaves to an older Registry of the same
    /// registry (it wrote none of them).
    yielded: Vec<Yielded>,
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
        registry.status.clone().map(|s| RegistryStatus {
            replication: None,
            ..s
        })
    }

    fn ready_reason(registry: &Registry) -> Option<String> {
        crate::status::ready_reason(registry.status.as_ref().map(|s| s.conditions.as_slice()))
    }

    async fn sync<B: RegistryBackend>(registry: &Registry, ctx: &Context<B>) -> Result<Synced> {
        sync(registry, ctx).await
    }

    fn next_status(registry: &Registry, outcome: &Result<Synced>, now: &Time) -> RegistryStatus {
        next_status(registry, outcome, now)
    }

    async fn cleanup<B: RegistryBackend>(registry: &Registry, ctx: &Context<B>) -> Result<Option<Note>> {
        in_use::check(registry, ctx).await?;
        Ok(None)
    }

    fn event(_: &Registry, s: &Synced) -> Option<Note> {
        (!s.changed.is_empty()).then(|| ("Updated", format!("Updated the {}", s.changed.join(" and the "))))
    }

    fn warning(registry: &Registry, s: &Synced) -> Option<Note> {
        conflict_warning(registry, s)
    }

    fn requeue<B: RegistryBackend>(registry: &Registry, _: &Synced, ctx: &Context<B>) -> Duration {
        ctx.interval(registry.spec.interval.as_ref(), &object_key(registry))
    }
}

async fn sync<B: RegistryBackend>(registry: &Registry, ctx: &Context<B>) -> Result<Synced> {
    check_spec(&registry.spec)?;
    let target = ctx.target(registry).await?;
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
    Ok(Synced {
        info,
        changed,
        yielded,
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

/// Pure: whether this Registry may use the account its credentials reach (`actual`). With
/// `spec.accountId`, only that account. Without it, the account it has served (`served`, from
/// `status.registryId`): an edit of `endpoint` or `auth` that reaches another account would
/// otherwise move every Repository, rule and pull secret on it there, silently creating a second
/// set of ECR objects. Setting `spec.accountId` to the new account is how to move on purpose.
pub fn check_account(spec: Option<&str>, served: Option<&str>, actual: &str) -> Result<()> {
    match (spec, served) {
        (Some(expected), _) if expected != actual => Err(Error::AccountMismatch {
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        }),
        (None, Some(served)) if served != actual => Err(Error::AccountChanged {
            served: served.to_owned(),
            actual: actual.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Pure: the `SettingsConflict` condition's message, when this Registry yields settings.
fn conflict_message(registry: &Registry, s: &Synced) -> Option<String> {
    (!s.yielded.is_empty()).then(|| {
        let place = Place::of(registry, &s.info.registry_id);
        owners::message(&registry.name_any(), &place, &s.yielded)
    })
}

/// Pure: a Warning event when this Registry starts yielding settings, or yields others (not on
/// every reconcile while it does).
fn conflict_warning(registry: &Registry, s: &Synced) -> Option<Note> {
    let message = conflict_message(registry, s)?;
    let already = registry.status.as_ref().is_some_and(|st| {
        st.conditions
            .iter()
            .any(|c| c.type_ == SETTINGS_CONFLICT && c.status == "True" && c.message == message)
    });
    let reason = Error::Conflict(String::new()).reason();
    (!already).then_some((reason, message))
}

/// Pure: what the operator refuses in a Registry's spec before any ECR call, because admission
/// could not: an `allowedNamespaces` stored before the selector rules existed (`InvalidSpec`; the
/// Registry is not Ready, so the objects on it wait instead of each failing tenancy), and a
/// registry policy longer than ECR allows (`InvalidPolicy`; its serialised size is known only here).
pub fn check_spec(spec: &RegistrySpec) -> Result<()> {
    if let Some(selector) = &spec.allowed_namespaces {
        crate::api::selector::parse(selector)
            .map_err(|e| Error::InvalidSpec(format!("invalid allowedNamespaces: {e}")))?;
    }
    let too_long = spec
        .policy
        .as_ref()
        .and_then(|p| crate::policy::length_violation(&serde_json::Value::Object(p.0.clone())));
    if let Some(v) = too_long {
        return Err(Error::InvalidPolicy(format!(
            "invalid registry policy (spec.policy): {v}"
        )));
    }
    Ok(())
}

/// Pure: the registry scanning configuration the spec asks for, in ECR's spelling, normalised
/// like the backend's reading (filters sorted, rules sorted by frequency).
pub fn desired_scanning(spec: &RegistrySpec) -> Option<ScanningSettings> {
    let scanning = spec.scanning.as_ref()?;
    let mut rules: Vec<ScanningRuleSettings> = scanning
        .rules
        .iter()
        .flatten()
        .map(|r| {
            let mut filters = r.repository_filters.clone();
            filters.sort();
            let frequency = match r.scan_frequency {
                ScanFrequency::ScanOnPush => "SCAN_ON_PUSH",
                ScanFrequency::ContinuousScan => "CONTINUOUS_SCAN",
                ScanFrequency::Manual => "MANUAL",
            };
            ScanningRuleSettings {
                frequency: frequency.into(),
                filters,
            }
        })
        .collect();
    rules.sort_by(|a, b| a.frequency.cmp(&b.frequency));
    let scan_type = match scanning.scan_type {
        ScanType::Basic => "BASIC",
        ScanType::Enhanced => "ENHANCED",
    };
    Some(ScanningSettings {
        scan_type: scan_type.into(),
        rules,
    })
}

/// Pure: the host images are pulled from.
pub fn registry_host(registry_id: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("{registry_id}.dkr.ecr.{region}.{suffix}")
}

/// Pure: the next status.
fn next_status(registry: &Registry, outcome: &Result<Synced>, now: &Time) -> RegistryStatus {
    let prev = RegistryController::stored_status(registry).unwrap_or_default();
    let generation = registry.meta().generation;
    let mut status = RegistryStatus {
        observed_generation: generation,
        last_handled_reconcile_at: registry.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        ..prev.clone()
    };
    let mut conflict = None;
    let summary = match outcome {
        Ok(synced) => {
            status.registry_id = Some(synced.info.registry_id.clone());
            status.registry_host = Some(registry_host(&synced.info.registry_id, &registry.spec.region));
            status.identity = synced.info.identity.clone();
            conflict = conflict_message(registry, synced);
            let mut message = format!(
                "Registry {} in {} is reachable",
                synced.info.registry_id, registry.spec.region
            );
            if let Some(owner) = synced.yielded.first().map(|y| &y.owner) {
                message.push_str(&format!(
                    "; it leaves registry-wide settings it sets to Registry {owner} ({SETTINGS_CONFLICT})"
                ));
            }
            Outcome::InSync(message)
        }
        // Deletion waits for the users: the Registry keeps serving them (their own cleanup needs
        // it Ready), and a domain condition names them.
        Err(Error::InUse(message)) => {
            let mut conditions = prev.conditions.clone();
            let held = domain_condition(IN_USE, true, IN_USE, message.clone(), generation, now);
            set_condition(&mut conditions, &prev.conditions, held);
            status.conditions = conditions;
            return status;
        }
        Err(e) => Outcome::Failed(e),
    };
    status.conditions = summarize(&prev.conditions, generation, &summary, now);
    if let Some(message) = conflict {
        // Ready (Repositories and pull secrets are per repository, not registry-wide), and says
        // which settings it leaves to whom.
        let reason = Error::Conflict(String::new()).reason();
        let held = domain_condition(SETTINGS_CONFLICT, true, reason, message, generation, now);
        let mut conditions = status.conditions.clone();
        set_condition(&mut conditions, &prev.conditions, held);
        status.conditions = conditions;
    }
    status
}

#[cfg(test)]
mod tests;
