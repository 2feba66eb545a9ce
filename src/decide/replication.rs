//! Pure decisions of the replication controller: each rule's settings as the merge takes them
//! (the merge itself is [`crate::replication`]), who owns the registry's document, how often it is
//! re-checked, and each rule's status. No I/O (see [`crate::decide`]).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Resource, ResourceExt};
use serde::Serialize;

use super::owners::{self, Place, Setting};
use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::interval::Interval;
use crate::api::v1alpha1::{Registry, RegistryReplicationStatus, ReplicationRule, ReplicationRuleStatus};
use crate::backend::ReplicationRuleSettings;
use crate::error::Error;
use crate::replication::{Merge, Verdict};
use crate::status::{Outcome, summarize};

pub fn settings(rule: &ReplicationRule) -> ReplicationRuleSettings {
    ReplicationRuleSettings {
        destinations: rule
            .spec
            .destinations
            .iter()
            .map(|d| (d.region.clone(), d.registry_id.clone()))
            .collect(),
        filters: rule
            .spec
            .repository_filters
            .iter()
            .flatten()
            .map(|f| f.filter.clone())
            .collect(),
    }
}

/// The part of a Registry's status this controller owns: which rules of the registry's
/// replication configuration it wrote. Applied under its own field manager; the Registry
/// controller never sends this field, so each field of the status has one writer.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct Bookkeeping {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<RegistryReplicationStatus>,
}

/// Bookkeeping has no conditions of its own (each rule reports on itself), and this controller
/// never suspends.
impl crate::status::Summarized for Bookkeeping {
    fn conditions(&self) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
        &[]
    }
    fn summarize_as(
        &mut self,
        _: Option<i64>,
        _: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    ) {
    }
    /// None: the merge runs in the user lane (one per Registry, and it is what a rule's author
    /// waits for).
    fn observed_generation(&self) -> Option<i64> {
        None
    }
    fn last_handled_reconcile_at(&self) -> Option<&str> {
        None
    }
}

/// What one reconcile did.
pub enum Replicated {
    /// No rule names this registry, and none of ours is left in ECR.
    Nothing,
    /// The merged document (written when it differed) and the verdicts, and the shortest
    /// `spec.interval` among the rules (the document is re-checked that often).
    Merged(Merge, Option<Interval>),
    /// An older Registry of the same registry owns its replication configuration: nothing was
    /// read or written, and each rule says so.
    Yielded,
}

/// Pure: the older Registry of the same registry (`place`) that owns the replication
/// configuration this Registry would write; `None` when this Registry owns it.
pub fn replication_owner(
    registry: &Registry,
    place: &Place,
    registries: &[Arc<Registry>],
    ruled: &std::collections::BTreeSet<String>,
) -> Option<String> {
    owners::yielded(registry, place, registries, ruled)
        .into_iter()
        .find(|y| y.setting == Setting::Replication)
        .map(|y| y.owner)
}

/// Pure: the shortest `spec.interval` among the rules (each rule's drift re-check).
pub fn shortest_interval(rules: &[ReplicationRule]) -> Option<Interval> {
    rules
        .iter()
        .filter_map(|r| r.spec.interval.clone())
        .min_by_key(Interval::duration)
}

/// Pure: the registry's document is re-checked at the shorter of the Registry's interval (or the
/// default) and its rules' shortest `spec.interval`.
pub fn recheck_every(registry: Duration, rules: Option<&Interval>) -> Duration {
    rules.map_or(registry, |r| r.duration().min(registry))
}

/// Pure: the status of one rule.
pub fn rule_status(
    rule: &ReplicationRule,
    verdict: std::result::Result<Verdict, &Error>,
    registry_id: Option<String>,
    registry: &str,
    now: &Time,
) -> ReplicationRuleStatus {
    let prev = rule.status.clone().unwrap_or_default();
    let generation = rule.meta().generation;
    let mut status = ReplicationRuleStatus {
        observed_generation: generation,
        last_handled_reconcile_at: rule.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        registry_id,
        position: None,
        ..prev.clone()
    };
    let failure;
    let outcome = match verdict {
        Ok(Verdict::Applied { position }) => {
            status.position = i32::try_from(position).ok();
            Outcome::InSync(format!(
                "Rule {} of the replication configuration of Registry {registry}",
                position + 1
            ))
        }
        Ok(Verdict::Duplicate { of, position }) => {
            status.position = i32::try_from(position).ok();
            Outcome::InSync(format!("Identical to ReplicationRule {of}, which is applied"))
        }
        Ok(Verdict::LimitExceeded(m)) => {
            failure = Error::LimitExceeded(m);
            Outcome::Failed(&failure)
        }
        Ok(Verdict::InvalidDestination(m)) => {
            failure = Error::InvalidDestination(m);
            Outcome::Failed(&failure)
        }
        Ok(Verdict::Suspended) => Outcome::Suspended,
        Err(e) => Outcome::Failed(e),
    };
    status.conditions = summarize(&prev.conditions, generation, &outcome, now);
    status
}

#[cfg(test)]
mod tests;
