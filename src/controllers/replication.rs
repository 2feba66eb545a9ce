//! Merges every `ReplicationRule` of a Registry into the registry's single ECR replication
//! configuration (keyed on the Registry: one writer per document), writes it only when it differs
//! semantically from ECR, and reports on each rule.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;

use super::context::{Context, object_key};
use super::driver::{self, Note, Reconciler};
use super::registry::owners::{self, Place};
use super::triggers;
use crate::api::interval::Interval;
use crate::api::v1alpha1::{AppliedReplicationRule, Registry, RegistryReplicationStatus, ReplicationRule};
use crate::backend::RegistryBackend;
use crate::error::{Error, Result};
pub use crate::replication::{MAX_DESTINATIONS, MAX_RULES, Merge, RuleInput, Verdict, merge, same_document};
use crate::status::write_if_changed;

pub const CONTROLLER: &str = "replication";

pub use crate::decide::replication::{
    Bookkeeping, Replicated, recheck_every, replication_owner, rule_status, settings, shortest_interval,
};

/// Runs the replication controller (keyed on Registry) until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    // Keyed on Registry: its spec, readiness and ID matter, its status bookkeeping does not.
    let (store, registries) = triggers::primary::<ReplicationController, B>(&ctx, triggers::registry);
    // A rule's spec, finalizers or deletion matter; the status this controller writes does not.
    let rules = triggers::dependency::<ReplicationRule, B>(&ctx, triggers::own);
    // A rule also matters to the other Registries of its Registry's registry (it may move the
    // ownership of the replication configuration), and so does another Registry of the same
    // registry appearing, changing its place or going (see `registry::owners`).
    let (by_rule, by_registry) = (ctx.clone(), ctx.clone());
    let controller = Controller::for_stream(registries, store)
        .watches_stream(rules, move |rule| {
            let name = &rule.spec.registry_ref.name;
            let mut refs = vec![ObjectRef::<Registry>::new(name)];
            refs.extend(owners::neighbours_of(&by_rule.registries, name));
            refs
        })
        .watches_stream(triggers::registry_changes(&ctx, owners::key), move |changed| {
            owners::neighbours(&by_registry.registries, &changed)
        });
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    // The rules this controller cannot reach (no Registry, or suspended) report on themselves.
    futures::join!(
        driver::run::<ReplicationController, B>(controller, ctx.clone(), shutdown.clone()),
        super::replication_rule::controller(ctx, shutdown),
    );
}

/// The replication controller: keyed on Registry, writes the replication configuration, each
/// ReplicationRule's status and [`Bookkeeping`].
pub struct ReplicationController;

impl Reconciler for ReplicationController {
    type Kind = Registry;
    type Status = Bookkeeping;
    type Synced = Replicated;
    const CONTROLLER: &'static str = CONTROLLER;
    // Failures are reported on each ReplicationRule's status.
    const WARNING_EVENTS: bool = false;
    // The Registry controller owns a Registry's conditions.
    const OWNS_CONDITIONS: bool = false;
    // A Registry being deleted is held while its recorded rules are in ECR (registry/in_use.rs):
    // the merge keeps running so that the deletion of those rules reaches ECR.
    const SYNCS_WHILE_DELETING: bool = true;

    fn api(client: &kube::Client, _: &Registry) -> Api<Registry> {
        Api::all(client.clone())
    }

    fn suspended(_: &Registry) -> bool {
        // A suspended Registry keeps its replication configuration in step with its rules; each
        // rule has its own `suspend`.
        false
    }

    fn stored_status(registry: &Registry) -> Option<Bookkeeping> {
        Some(Bookkeeping {
            replication: registry.status.as_ref().and_then(|s| s.replication.clone()),
        })
    }

    async fn sync<B: RegistryBackend>(registry: &Registry, ctx: &Context<B>) -> Result<Replicated> {
        replicate(registry, ctx).await
    }

    fn next_status(registry: &Registry, outcome: &Result<Replicated>, _: &Time) -> Bookkeeping {
        match outcome {
            Ok(Replicated::Merged(merged, _)) => Bookkeeping {
                replication: Some(RegistryReplicationStatus {
                    rules: merged
                        .ours
                        .iter()
                        .map(|(n, f)| AppliedReplicationRule {
                            name: n.clone(),
                            fingerprint: f.clone(),
                        })
                        .collect(),
                    foreign_rules: i32::try_from(merged.foreign).unwrap_or(i32::MAX),
                }),
            },
            // Nothing done, or failed: what was recorded stays.
            Ok(Replicated::Nothing | Replicated::Yielded) | Err(_) => {
                Self::stored_status(registry).unwrap_or_default()
            }
        }
    }

    fn event(_: &Registry, _: &Replicated) -> Option<Note> {
        None
    }

    fn requeue<B: RegistryBackend>(
        registry: &Registry,
        replicated: &Replicated,
        ctx: &Context<B>,
    ) -> Duration {
        let rules = match replicated {
            Replicated::Merged(_, shortest) => shortest.as_ref(),
            Replicated::Nothing | Replicated::Yielded => None,
        };
        let registry_every = registry
            .spec
            .interval
            .as_ref()
            .map_or(ctx.tunables.default_interval, Interval::duration);
        crate::jitter::jittered(recheck_every(registry_every, rules), &object_key(registry))
    }
}

/// Reads the rules and what was recorded, merges, writes the document when it differs, and
/// writes each rule's status (this controller is their only writer).
async fn replicate<B: RegistryBackend>(registry: &Registry, ctx: &Context<B>) -> Result<Replicated> {
    let name = registry.name_any();
    // Read the Registry itself (one GET per reconcile of a Registry, kept on purpose): which
    // rules are ours is in its `status.replication`, and the store may not show this
    // controller's last write yet; a stale copy could miss a rule it put, which would then be
    // taken for a foreign one and stay in ECR.
    let Some(registry) = Api::<Registry>::all(ctx.client.clone())
        .get_opt(&name)
        .await
        .map_err(Error::kube("read the Registry"))?
    else {
        return Ok(Replicated::Nothing);
    };
    // Relabelled into another shard since the trigger: that shard's instance writes it now.
    if !ctx.tunables.watch_selector.matches(registry.labels()) {
        return Ok(Replicated::Nothing);
    }
    // A consistent LIST rather than a second watch's cache (one per reconcile of a Registry, kept
    // on purpose): the trigger, a rule created, edited or deleted, may arrive before that cache
    // has seen it, and the document would be written without the new rule (or with the deleted
    // one) until the next re-check.
    let (rules, others): (Vec<ReplicationRule>, Vec<ReplicationRule>) =
        Api::<ReplicationRule>::all(ctx.client.clone())
            .list(&ctx.tunables.watch_selector.list_params())
            .await
            .map_err(Error::kube("list ReplicationRules"))?
            .items
            .into_iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .partition(|r| r.spec.registry_ref.name == name);
    let previously: Vec<(String, String)> = registry
        .status
        .as_ref()
        .and_then(|s| s.replication.as_ref())
        .map(|r| {
            r.rules
                .iter()
                .map(|a| (a.name.clone(), a.fingerprint.clone()))
                .collect()
        })
        .unwrap_or_default();
    if rules.is_empty() && previously.is_empty() {
        return Ok(Replicated::Nothing); // nothing of ours in this registry
    }
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let registry_id = registry.status.as_ref().and_then(|s| s.registry_id.clone());
    let rule_api = Api::<ReplicationRule>::all(ctx.client.clone());
    // One writer per replication configuration: an older Registry of the same registry with
    // rules of its own owns it.
    let ruled = rules
        .iter()
        .chain(&others)
        .map(|r| r.spec.registry_ref.name.clone())
        .collect();
    // Decided on this very read of the Registry: without a recorded registry it is not Ready
    // (and must not become the writer between this read and the next).
    let owner = Place::recorded(&registry).map(|place| {
        let owner = replication_owner(&registry, &place, &ctx.registries.state(), &ruled);
        (owner, place)
    });
    if let Some((Some(owner), place)) = owner {
        let conflict = Error::Conflict(owners::rule_message(&name, &owner, &place));
        for rule in rules.iter().filter(|r| !r.spec.suspend) {
            let status = rule_status(rule, Err(&conflict), registry_id.clone(), &name, &now);
            if let Err(e) = write_if_changed(&rule_api, rule, &status, &ctx.field_manager(CONTROLLER)).await {
                tracing::warn!(error = &e as &dyn std::error::Error, rule = %rule.name_any(), "status write failed");
            }
        }
        tracing::debug!(registry = %name, %owner, "replication configuration left to its owner");
        return Ok(Replicated::Yielded);
    }
    let result = match owner {
        Some(_) => sync(&registry, &rules, &previously, ctx).await,
        None => Err(Error::DependencyNotReady {
            kind: "Registry",
            name: name.clone(),
        }),
    };
    for rule in &rules {
        let verdict = match &result {
            Ok(m) => m.verdicts.get(&rule.name_any()).cloned().map(Ok),
            Err(e) => Some(Err(e)),
        };
        let Some(verdict) = verdict else { continue };
        if matches!(verdict, Ok(Verdict::Suspended)) {
            continue; // the rule controller reports a suspended rule
        }
        let status = rule_status(rule, verdict, registry_id.clone(), &name, &now);
        if let Err(e) = write_if_changed(&rule_api, rule, &status, &ctx.field_manager(CONTROLLER)).await {
            tracing::warn!(error = &e as &dyn std::error::Error, rule = %rule.name_any(), "status write failed");
        }
    }
    let shortest = shortest_interval(&rules);
    result.map(|m| Replicated::Merged(m, shortest))
}

async fn sync<B: RegistryBackend>(
    registry: &Registry,
    rules: &[ReplicationRule],
    previously: &[(String, String)],
    ctx: &Context<B>,
) -> Result<Merge> {
    let registry = ctx.ready_registry(&registry.name_any())?;
    let registry_id = registry
        .status
        .as_ref()
        .and_then(|s| s.registry_id.clone())
        .unwrap_or_default();
    let target = ctx.target(&registry).await?;
    let ecr = ctx
        .backend
        .get_replication(&target)
        .await
        .map_err(Error::backend("DescribeRegistry"))?;
    let inputs: Vec<RuleInput> = rules
        .iter()
        .map(|r| RuleInput {
            name: r.name_any(),
            priority: r.spec.priority,
            suspended: r.spec.suspend,
            settings: settings(r),
        })
        .collect();
    let exclusive = registry.spec.replication.as_ref().is_some_and(|r| r.exclusive);
    let merged = merge(
        &inputs,
        &ecr,
        previously,
        (&registry.spec.region, &registry_id),
        exclusive,
    );
    if !same_document(&merged.document, &ecr) {
        ctx.backend
            .put_replication(&target, &merged.document)
            .await
            .map_err(Error::backend("PutReplicationConfiguration"))?;
        tracing::info!(registry = %registry.name_any(), rules = merged.document.len(), "replication configuration written");
    }
    Ok(merged)
}
