//! Pure: the status of a ReplicationRule the replication merge cannot reach (its Registry does not
//! exist). No I/O (see [`crate::decide`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;

use crate::api::v1alpha1::{ReplicationRule, ReplicationRuleStatus};
use crate::error::Result;
use crate::status::{Outcome, summarize};

/// The rule's Registry exists: the replication controller reports on it.
pub struct Delegated;

/// Pure: the rule's status. Delegated: what the replication controller wrote, untouched.
/// Missing Registry: waiting for it, at this generation.
pub fn next_status(rule: &ReplicationRule, outcome: &Result<Delegated>, now: &Time) -> ReplicationRuleStatus {
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
    use crate::error::Error;
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
