//! The condition contract shared by every kind (docs/dev/architecture.md §6):
//!
//! | outcome | Ready | Reconciling | Stalled | kstatus |
//! | --- | --- | --- | --- | --- |
//! | in sync | True / Succeeded | absent | absent | Current |
//! | waiting on a dependency | False / DependencyNotReady | True / DependencyNotReady | absent | InProgress |
//! | transient error | False / `reason` | True / ProgressingWithRetry | absent | InProgress |
//! | stalled error | False / `reason` | absent | True / `reason` | Failed |
//! | deleting | False / Deleting | True / Deleting | absent | Terminating |
//! | suspended | absent | absent | absent | Current (Argo CD: Suspended); `Suspended=True` |

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::error::{Error, ErrorClass, error_chain, truncate};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
/// The condition of a suspended object (the only one it has).
pub const SUSPENDED: &str = "Suspended";

/// What a reconcile achieved.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// In sync; the message says what is ready.
    InSync(String),
    /// A reconcile failed.
    Failed(&'a Error),
    /// Not an error: the object waits for something to happen elsewhere (a dependency becoming
    /// Ready). Reconciling, not Stalled.
    Waiting { reason: &'static str, message: String },
    /// Not an error: a verdict that needs a human (a conflict, a limit). Stalled.
    Stalled { reason: &'static str, message: String },
    /// The object is being deleted.
    Deleting(String),
    /// `spec.suspend: true`: the operator observed this generation and, as asked, applies
    /// nothing. Only `Suspended=True` is written: no `Ready` (it would be a claim either way:
    /// what is in ECR may not match the spec, yet nothing is wrong), nothing in progress or
    /// failed. kstatus reads Current (suspension is the state the spec asks for, and a health
    /// check must not wait on it forever) and the Argo CD check says Suspended.
    Suspended,
}

/// The Ready message of a suspended object.
pub const SUSPENDED_MESSAGE: &str =
    "Suspended: spec.suspend is true, so changes to this object are not applied and ECR is not checked";

/// A status in the kstatus shape: `observedGeneration` and `conditions`, plus fields of its
/// own that a suspension leaves as they were last written.
pub trait Summarized: Default {
    /// The stored conditions.
    fn conditions(&self) -> &[Condition];
    /// Replaces `observedGeneration` and `conditions`.
    fn summarize_as(&mut self, generation: Option<i64>, conditions: Vec<Condition>);
    /// The stored `observedGeneration`.
    fn observed_generation(&self) -> Option<i64>;
    /// The stored `lastHandledReconcileAt`.
    fn last_handled_reconcile_at(&self) -> Option<&str>;
}

/// Pure: the status of a suspended object: what was last written, at this generation, with
/// the conditions of [`Outcome::Suspended`].
pub fn suspended<S: Summarized>(stored: Option<S>, generation: Option<i64>, now: &Time) -> S {
    let mut status = stored.unwrap_or_default();
    let conditions = summarize(status.conditions(), generation, &Outcome::Suspended, now);
    status.summarize_as(generation, conditions);
    status
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: truncate(message, 1024),
        observed_generation: generation,
        last_transition_time: now.clone(),
    }
}

/// Pure: the kstatus conditions after this outcome. Domain conditions of `prev` (anything but
/// Ready, Reconciling, Stalled) are dropped; callers add their own with [`set_condition`].
pub fn summarize(
    prev: &[Condition],
    generation: Option<i64>,
    outcome: &Outcome<'_>,
    now: &Time,
) -> Vec<Condition> {
    let mut next: Vec<Condition> = Vec::new();
    let c = |t: &str, s: &str, r: &str, m: String| condition(t, s, r, m, generation, now);
    match outcome {
        Outcome::InSync(message) => next.push(c(READY, "True", "Succeeded", message.clone())),
        Outcome::Deleting(message) => {
            next.push(c(READY, "False", "Deleting", message.clone()));
            next.push(c(RECONCILING, "True", "Deleting", message.clone()));
        }
        Outcome::Suspended => next.push(c(SUSPENDED, "True", "Suspended", SUSPENDED_MESSAGE.to_owned())),
        Outcome::Waiting { reason, message } => {
            next.push(c(READY, "False", reason, message.clone()));
            next.push(c(RECONCILING, "True", reason, message.clone()));
        }
        Outcome::Stalled { reason, message } => {
            next.push(c(READY, "False", reason, message.clone()));
            next.push(c(STALLED, "True", reason, message.clone()));
        }
        Outcome::Failed(err) => {
            let message = error_chain(*err);
            match err.class() {
                ErrorClass::Waiting => {
                    next.push(c(READY, "False", err.reason(), message.clone()));
                    next.push(c(RECONCILING, "True", err.reason(), message));
                }
                ErrorClass::Transient => {
                    next.push(c(READY, "False", err.reason(), message.clone()));
                    next.push(c(RECONCILING, "True", "ProgressingWithRetry", message));
                }
                ErrorClass::Stalled => {
                    next.push(c(READY, "False", err.reason(), message.clone()));
                    next.push(c(STALLED, "True", err.reason(), message));
                }
            }
        }
    }
    for cond in &mut next {
        if let Some(old) = prev.iter().find(|o| o.type_ == cond.type_)
            && old.status == cond.status
        {
            cond.last_transition_time = old.last_transition_time.clone();
        }
    }
    next
}

/// Inserts or replaces a condition by type, keeping `lastTransitionTime` when the status is
/// unchanged, and keeps the order Ready, Reconciling, Stalled, then the rest alphabetically.
pub fn set_condition(conditions: &mut Vec<Condition>, prev: &[Condition], mut new: Condition) {
    if let Some(old) = prev.iter().find(|c| c.type_ == new.type_)
        && old.status == new.status
    {
        new.last_transition_time = old.last_transition_time.clone();
    }
    conditions.retain(|c| c.type_ != new.type_);
    conditions.push(new);
    let rank = |t: &str| match t {
        READY => 0,
        RECONCILING => 1,
        STALLED => 2,
        _ => 3,
    };
    conditions.sort_by(|a, b| {
        rank(&a.type_)
            .cmp(&rank(&b.type_))
            .then_with(|| a.type_.cmp(&b.type_))
    });
}

/// A time as the API server stores it: whole seconds (RFC 3339 without a fraction). A status
/// computed with sub-second times would never equal what was stored, so every reconcile would
/// write it again.
pub fn stored_time(t: std::time::SystemTime) -> Option<Time> {
    let secs = t
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs();
    k8s_openapi::jiff::Timestamp::from_second(i64::try_from(secs).ok()?)
        .ok()
        .map(Time)
}

/// The reason of the Ready condition among `conditions`.
pub fn ready_reason(conditions: Option<&[Condition]>) -> Option<String> {
    conditions?
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| c.reason.clone())
}

/// A domain condition (e.g. `Drifted`).
pub fn domain_condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    condition(
        type_,
        if status { "True" } else { "False" },
        reason,
        message,
        generation,
        now,
    )
}

/// The kstatus verdict for an object's status: `Current`, `InProgress`, `Failed` or
/// `Terminating`. An exact port of what `status.Compute` of kstatus
/// (`sigs.k8s.io/cli-utils/pkg/kstatus/status` v0.37.2; Flux's fork `github.com/fluxcd/cli-utils`
/// has the same rules) answers for a custom resource, in its order:
///
/// 1. a deletion timestamp: `Terminating`;
/// 2. `metadata.generation` and `status.observedGeneration` both present and different:
///    `InProgress` (without `observedGeneration` this check is skipped);
/// 3. the first condition that is `Reconciling=True` (`InProgress`) or `Stalled=True` (`Failed`);
/// 4. the first `Ready` condition: `True` is `Current`, `False` or `Unknown` is `InProgress`;
/// 5. otherwise `Current`, so an object with no status at all reads as `Current`.
///
/// `tests/e2e/conformance.rs` runs the real library on every outcome of every kind and checks that
/// this port agrees row by row.
pub fn kstatus(
    generation: Option<i64>,
    observed_generation: Option<i64>,
    conditions: &[Condition],
    deleting: bool,
) -> KStatus {
    if deleting {
        return KStatus::Terminating;
    }
    if let (Some(generation), Some(observed)) = (generation, observed_generation)
        && generation != observed
    {
        return KStatus::InProgress;
    }
    for c in conditions.iter().filter(|c| c.status == "True") {
        match c.type_.as_str() {
            RECONCILING => return KStatus::InProgress,
            STALLED => return KStatus::Failed,
            _ => {}
        }
    }
    for c in conditions.iter().filter(|c| c.type_ == READY) {
        match c.status.as_str() {
            "True" => return KStatus::Current,
            "False" | "Unknown" => return KStatus::InProgress,
            _ => {}
        }
    }
    KStatus::Current
}

/// kstatus's verdict on an object (the statuses Flux and `kubectl wait` tooling act on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KStatus {
    Current,
    InProgress,
    Failed,
    Terminating,
}

impl KStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KStatus::Current => "Current",
            KStatus::InProgress => "InProgress",
            KStatus::Failed => "Failed",
            KStatus::Terminating => "Terminating",
        }
    }
}

impl std::fmt::Display for KStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for KStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendError;

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn outcomes_map_to_the_kstatus_table() {
        let waiting = Error::DependencyNotReady {
            kind: "Registry",
            name: "default".into(),
        };
        let transient = Error::backend("CreateRepository")(BackendError::Throttled("slow".into()));
        let stalled = Error::OwnedElsewhere {
            name: "a".into(),
            owner: "x/y/z".into(),
        };
        type Expected<'a> = Vec<(&'a str, &'a str, &'a str)>;
        let cases: Vec<(Outcome, Expected, &str)> = vec![
            (
                Outcome::InSync("ok".into()),
                vec![("Ready", "True", "Succeeded")],
                "Current",
            ),
            (
                Outcome::Failed(&waiting),
                vec![
                    ("Ready", "False", "DependencyNotReady"),
                    ("Reconciling", "True", "DependencyNotReady"),
                ],
                "InProgress",
            ),
            (
                Outcome::Waiting {
                    reason: "DependencyNotReady",
                    message: "Repository api is not Ready".into(),
                },
                vec![
                    ("Ready", "False", "DependencyNotReady"),
                    ("Reconciling", "True", "DependencyNotReady"),
                ],
                "InProgress",
            ),
            (
                Outcome::Stalled {
                    reason: "Conflict",
                    message: "held by an older LifecyclePolicy".into(),
                },
                vec![("Ready", "False", "Conflict"), ("Stalled", "True", "Conflict")],
                "Failed",
            ),
            (
                Outcome::Failed(&transient),
                vec![
                    ("Ready", "False", "Throttled"),
                    ("Reconciling", "True", "ProgressingWithRetry"),
                ],
                "InProgress",
            ),
            (
                Outcome::Failed(&stalled),
                vec![
                    ("Ready", "False", "OwnedElsewhere"),
                    ("Stalled", "True", "OwnedElsewhere"),
                ],
                "Failed",
            ),
            (
                Outcome::Suspended,
                vec![("Suspended", "True", "Suspended")],
                "Current",
            ),
            (
                Outcome::Deleting("bye".into()),
                vec![
                    ("Ready", "False", "Deleting"),
                    ("Reconciling", "True", "Deleting"),
                ],
                "InProgress",
            ),
        ];
        for (outcome, expected, verdict) in cases {
            let conds = summarize(&[], Some(3), &outcome, &at(100));
            let got: Vec<(&str, &str, &str)> = conds
                .iter()
                .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
                .collect();
            assert_eq!(got, expected, "{outcome:?}");
            assert!(conds.iter().all(|c| c.observed_generation == Some(3)));
            assert_eq!(kstatus(Some(3), Some(3), &conds, false), verdict, "{outcome:?}");
        }
    }

    #[test]
    fn stale_observed_generation_is_in_progress_and_deletion_is_terminating() {
        let conds = summarize(&[], Some(2), &Outcome::InSync("ok".into()), &at(1));
        assert_eq!(kstatus(Some(3), Some(2), &conds, false), "InProgress");
        assert_eq!(kstatus(Some(3), Some(3), &conds, true), "Terminating");
        assert_eq!(kstatus(Some(3), None, &conds, true), "Terminating");
    }

    /// kstatus' rules beyond the operator's own outcomes, as the real library applies them
    /// (`tests/e2e/conformance.rs` runs the library itself on the operator's outcomes).
    #[test]
    fn kstatus_follows_the_library_rules() {
        type Case<'a> = (
            &'a str,
            Option<i64>,
            Option<i64>,
            &'a [(&'a str, &'a str)],
            &'a str,
        );
        let cases: [Case; 15] = [
            // No status at all: kstatus cannot tell, and assumes Current. The operator writes a
            // status on every object it is responsible for, so this is never its final word.
            ("no status", Some(1), None, &[], "Current"),
            // Without observedGeneration (or without generation) that check is skipped.
            (
                "no observedGeneration",
                Some(3),
                None,
                &[(READY, "True")],
                "Current",
            ),
            (
                "no observedGeneration, not Ready",
                Some(3),
                None,
                &[(READY, "False")],
                "InProgress",
            ),
            ("no generation", None, Some(2), &[(READY, "True")], "Current"),
            ("stale", Some(3), Some(2), &[], "InProgress"),
            (
                "stale, Stalled",
                Some(3),
                Some(2),
                &[(STALLED, "True")],
                "InProgress",
            ),
            // Ready=False alone (a suspended object) is InProgress, Unknown as well.
            ("not Ready", Some(1), Some(1), &[(READY, "False")], "InProgress"),
            (
                "Ready unknown",
                Some(1),
                Some(1),
                &[(READY, "Unknown")],
                "InProgress",
            ),
            // A Ready status kstatus does not know is skipped.
            ("Ready odd", Some(1), Some(1), &[(READY, "Maybe")], "Current"),
            (
                "Ready odd, False",
                Some(1),
                Some(1),
                &[(READY, "Maybe"), (READY, "False")],
                "InProgress",
            ),
            // Reconciling and Stalled win over Ready; the first of them in the list wins.
            (
                "Stalled",
                Some(1),
                Some(1),
                &[(READY, "True"), (STALLED, "True")],
                "Failed",
            ),
            (
                "Reconciling first",
                Some(1),
                Some(1),
                &[(RECONCILING, "True"), (STALLED, "True")],
                "InProgress",
            ),
            (
                "Stalled first",
                Some(1),
                Some(1),
                &[(STALLED, "True"), (RECONCILING, "True")],
                "Failed",
            ),
            (
                "Stalled False",
                Some(1),
                Some(1),
                &[(STALLED, "False"), (READY, "True")],
                "Current",
            ),
            // Other conditions do not count.
            ("domain only", Some(1), Some(1), &[("Drifted", "True")], "Current"),
        ];
        for (case, generation, observed, conditions, verdict) in cases {
            let conditions: Vec<Condition> = conditions
                .iter()
                .map(|(t, s)| condition(t, s, "Reason", "message".into(), Some(1), &at(1)))
                .collect();
            let got = kstatus(generation, observed, &conditions, false);
            assert_eq!(got, verdict, "{case}");
        }
    }

    #[test]
    fn transition_time_only_moves_when_status_changes() {
        let first = summarize(&[], Some(1), &Outcome::InSync("ok".into()), &at(10));
        let again = summarize(&first, Some(2), &Outcome::InSync("still ok".into()), &at(20));
        assert_eq!(again[0].last_transition_time, at(10));
        let err = Error::InvalidSpec("bad".into());
        let failed = summarize(&again, Some(3), &Outcome::Failed(&err), &at(30));
        assert_eq!(failed[0].last_transition_time, at(30));
        // The same outcome twice gives an identical status: a no-op write can be skipped.
        assert_eq!(
            summarize(&failed, Some(3), &Outcome::Failed(&err), &at(40)),
            failed
        );
    }

    #[test]
    fn conditions_keep_a_stable_order() {
        let mut conds = summarize(&[], Some(1), &Outcome::InSync("ok".into()), &at(1));
        set_condition(
            &mut conds,
            &[],
            domain_condition("Drifted", true, "Drift", "x".into(), Some(1), &at(1)),
        );
        set_condition(
            &mut conds,
            &[],
            domain_condition("Applied", true, "Ok", "x".into(), Some(1), &at(1)),
        );
        let order: Vec<&str> = conds.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(order, ["Ready", "Applied", "Drifted"]);
    }
}
