//! The status of the ReplicationRules the replication controller cannot reach: a rule whose
//! Registry does not exist (the replication controller is keyed on Registry, so nothing else
//! would ever look at it) and a suspended rule. Every other rule's status is written by the
//! replication controller from its merge, under the same field manager, so a rule's status
//! always has one writer at a time: this one while the Registry is missing or the rule is
//! suspended, the merge otherwise.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;

use super::context::Context;
use super::driver::{self, Note, Reconciler};
use super::triggers;
use crate::api::v1alpha1::{ReplicationRule, ReplicationRuleStatus};
use crate::backend::RegistryBackend;
pub use crate::decide::replication_rule::{Delegated, next_status};
use crate::error::{Error, Result};

pub const CONTROLLER: &str = "replication-rule";

/// Runs the rule controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, own) = triggers::primary::<ReplicationRuleController, B>(&ctx, triggers::own);
    let registries = triggers::registry_changes(&ctx, triggers::registry);
    let controller = Controller::for_stream(own, store.clone())
        // A Registry created or deleted changes whether its rules are reachable.
        .watches_stream(registries, move |registry| {
            triggers::users_of(&store, &registry, |r: &ReplicationRule, name| r.spec.registry_ref.name == name)
        });
    driver::run::<ReplicationRuleController, B>(controller, ctx, shutdown).await;
}

/// The rule controller: one decision, whether the rule's Registry exists.
pub struct ReplicationRuleController;

impl Reconciler for ReplicationRuleController {
    type Kind = ReplicationRule;
    type Status = ReplicationRuleStatus;
    type Synced = Delegated;
    const CONTROLLER: &'static str = CONTROLLER;
    // The replication controller writes the other states of this status.
    const FIELD_MANAGER: &'static str = super::replication::CONTROLLER;

    fn api(client: &kube::Client, _: &ReplicationRule) -> Api<ReplicationRule> {
        Api::all(client.clone())
    }

    fn suspended(rule: &ReplicationRule) -> bool {
        rule.spec.suspend
    }

    fn stored_status(rule: &ReplicationRule) -> Option<ReplicationRuleStatus> {
        // Never "no status": a delegated rule without one is left for the merge to write.
        Some(rule.status.clone().unwrap_or_default())
    }

    async fn sync<B: RegistryBackend>(rule: &ReplicationRule, ctx: &Context<B>) -> Result<Delegated> {
        let name = &rule.spec.registry_ref.name;
        if ctx.registries.get(&ObjectRef::new(name)).is_some() {
            Ok(Delegated)
        } else {
            Err(Error::DependencyNotFound {
                kind: "Registry",
                name: name.clone(),
            })
        }
    }

    fn next_status(rule: &ReplicationRule, outcome: &Result<Delegated>, now: &Time) -> ReplicationRuleStatus {
        next_status(rule, outcome, now)
    }

    fn event(_: &ReplicationRule, _: &Delegated) -> Option<Note> {
        None
    }

    fn requeue<B: RegistryBackend>(_: &ReplicationRule, _: &Delegated, _: &Context<B>) -> Duration {
        // Nothing to look at again: the watches bring every change that matters.
        Duration::from_secs(3600)
    }
}
