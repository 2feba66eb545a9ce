//! The status of the ReplicationRules the replication controller cannot reach: a rule whose
//! Registry does not exist (the replication controller is keyed on Registry, so nothing else
//! would ever look at it) and a suspended rule. Every other rule's status is written by the
//! replication controller from its merge, under the same field manager, so a rule's status
//! always has one writer at a time: this one while the Registry is missing or the rule is
//! suspended, the merge otherwise.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;

use super::context::Context;
use super::driver::{self, Note, Reconciler};
use super::triggers;
use crate::api::v1alpha1::{Registry, ReplicationRule, ReplicationRuleStatus};
use crate::backend::RegistryBackend;
use crate::error::{Error, Result};
use crate::status::{Outcome, summarize};

pub const CONTROLLER: &str = "replication-rule";

/// Runs the rule controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, own) = triggers::primary::<ReplicationRuleController, B>(&ctx, triggers::own);
    let registries = triggers::dependency::<Registry, B>(&ctx, triggers::registry);
    let controller = Controller::for_stream(own, store.clone())
        // A Registry created or deleted changes whether its rules are reachable.
        .watches_stream(registries, move |registry| {
            triggers::users_of(&store, &registry, |r: &ReplicationRule, name| r.spec.registry_ref.name == name)
        });
    driver::run::<ReplicationRuleController, B>(controller, ctx, shutdown).await;
}

/// The rule controller: one decision, whether the rule's Registry exists.
pub struct ReplicationRuleController;

/// The rule's Registry exists: the replication controller reports on it.
pub struct Delegated;

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

    fn ready_reason(rule: &ReplicationRule) -> Option<String> {
        crate::status::ready_reason(rule.status.as_ref().map(|s| s.conditions.as_slice()))
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

/// Pure: the rule's status. Delegated: what the replication controller wrote, untouched.
/// Missing Registry: waiting for it, at this generation.
fn next_status(rule: &ReplicationRule, outcome: &Result<Delegated>, now: &Time) -> ReplicationRuleStatus {
    let prev = rule.status.clone().unwrap_or_default();
    match outcome {
        Ok(Delegated) => prev,
        Err(e) => {
            let generation = rule.meta().generation;
            ReplicationRuleStatus {
                observed_generation: generation,
                position: None,
                conditions: summarize(&prev.conditions, generation, &Outcome::Failed(e), now),
                ..prev
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{KStatus, kstatus};

    fn rule(status: serde_json::Value) -> ReplicationRule {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ReplicationRule",
            "metadata": {"name": "to-eu", "generation": 2},
            "spec": {"registryRef": {"name": "gone"}, "destinations": [{"region": "eu-west-1", "registryId": "123456789012"}]},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn a_rule_without_its_registry_waits_and_a_delegated_rule_is_left_alone() {
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(100).unwrap());
        let applied = serde_json::json!({"observedGeneration": 1, "position": 0, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Succeeded", "message": "Rule 1",
             "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]});
        let r = rule(applied);
        let missing = Err(Error::DependencyNotFound {
            kind: "Registry",
            name: "gone".into(),
        });
        let waiting = next_status(&r, &missing, &now);
        assert_eq!(waiting.observed_generation, Some(2));
        assert_eq!(waiting.position, None, "no longer in any document");
        let verdict = kstatus(Some(2), waiting.observed_generation, &waiting.conditions, false);
        assert_eq!(verdict, KStatus::InProgress);
        assert!(
            waiting.conditions[0].message.contains("gone"),
            "{:?}",
            waiting.conditions
        );
        assert_eq!(waiting.conditions[0].reason, "DependencyNotReady");

        let delegated = next_status(&r, &Ok(Delegated), &now);
        assert_eq!(Some(delegated), r.status);
    }
}
