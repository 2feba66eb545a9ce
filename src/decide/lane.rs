//! Which lane of the ECR budget a reconcile's calls draw on ([`crate::backend::lanes`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::RECONCILE_REQUESTED_AT;
use crate::backend::lanes::Lane;
use crate::status::{READY, Summarized};

/// What the lane is decided from, read off the object and its stored status.
#[derive(Clone, Copy, Debug, Default)]
pub struct LaneFacts<'a> {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// The `observedGeneration` of the stored `Ready` condition when it is `True`.
    pub ready_at: Option<i64>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// The `ecr-operator.dev/reconcile-requested-at` annotation.
    pub requested: Option<&'a str>,
    /// `status.lastHandledReconcileAt`.
    pub handled: Option<&'a str>,
}

/// Pure: background only for a re-check of an object already in sync at its current generation
/// (Ready, nothing requested, not being deleted); everything else (a new object, a spec change
/// not yet observed, an object that never became Ready at this generation, a deletion, a
/// reconcile-now request not yet handled) is what a user waits for.
pub fn lane(facts: &LaneFacts) -> Lane {
    let in_sync = facts.generation.is_some()
        && facts.observed_generation == facts.generation
        && facts.ready_at == facts.generation;
    let requested = facts.requested.is_some() && facts.requested != facts.handled;
    if in_sync && !requested && !facts.deleting {
        Lane::Background
    } else {
        Lane::User
    }
}

/// Pure: the lane of a reconcile of an object, from its metadata and its stored status (the part
/// its controller owns).
pub fn lane_of(meta: &ObjectMeta, status: Option<&impl Summarized>) -> Lane {
    let ready_at = status.and_then(|s| {
        s.conditions()
            .iter()
            .find(|c| c.type_ == READY && c.status == "True")
            .and_then(|c| c.observed_generation)
    });
    lane(&LaneFacts {
        generation: meta.generation,
        observed_generation: status.and_then(Summarized::observed_generation),
        ready_at,
        deleting: meta.deletion_timestamp.is_some(),
        requested: meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(RECONCILE_REQUESTED_AT))
            .map(String::as_str),
        handled: status.and_then(Summarized::last_handled_reconcile_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_table() {
        let synced = LaneFacts {
            generation: Some(3),
            observed_generation: Some(3),
            ready_at: Some(3),
            ..LaneFacts::default()
        };
        let cases = [
            ("in sync: a drift check", synced, Lane::Background),
            (
                "a new object, never reconciled",
                LaneFacts {
                    generation: Some(1),
                    ..LaneFacts::default()
                },
                Lane::User,
            ),
            (
                "a spec change not yet observed",
                LaneFacts {
                    generation: Some(4),
                    ..synced
                },
                Lane::User,
            ),
            (
                "observed, but not Ready at this generation (failed, or waited for its Registry)",
                LaneFacts {
                    ready_at: None,
                    ..synced
                },
                Lane::User,
            ),
            (
                "Ready at an older generation only",
                LaneFacts {
                    ready_at: Some(2),
                    ..synced
                },
                Lane::User,
            ),
            (
                "being deleted",
                LaneFacts {
                    deleting: true,
                    ..synced
                },
                Lane::User,
            ),
            (
                "a reconcile requested and not handled",
                LaneFacts {
                    requested: Some("2026-11-30T10:00:00Z"),
                    handled: Some("2026-11-29T10:00:00Z"),
                    ..synced
                },
                Lane::User,
            ),
            (
                "a first request",
                LaneFacts {
                    requested: Some("now"),
                    ..synced
                },
                Lane::User,
            ),
            (
                "a request already handled",
                LaneFacts {
                    requested: Some("now"),
                    handled: Some("now"),
                    ..synced
                },
                Lane::Background,
            ),
            (
                "no generation (a kind without one)",
                LaneFacts {
                    generation: None,
                    observed_generation: None,
                    ready_at: None,
                    ..synced
                },
                Lane::User,
            ),
        ];
        for (name, facts, expected) in cases {
            assert_eq!(lane(&facts), expected, "{name}");
        }
    }
}
