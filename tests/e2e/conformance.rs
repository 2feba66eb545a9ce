//! The status contract against the tools that read it. Every outcome of every kind, as the
//! operator writes it (`status::summarize`, wrapped in an object of that kind), is read by the real
//! kstatus library (what Flux's health checks and `kubectl`-style waiters use; built from
//! `sigs.k8s.io/cli-utils` by `tests/kstatus/build.sh`) and by the Argo CD health check of
//! `docs/gitops.md`; each row states what both must answer. The operator's own port,
//! `status::kstatus` (used by its tests), must agree with the library on every row.
//!
//! Needs Go to build the kstatus command, hence in the end-to-end binary; it starts no control
//! plane.

use ecr_operator::api::FINALIZER;
use ecr_operator::backend::BackendError;
use ecr_operator::error::Error;
use ecr_operator::status::{Outcome, READY, RECONCILING, STALLED, kstatus, summarize};
use ecr_operator_testenv::gitops::{argocd_health, argocd_health_checks, kstatus_verdicts};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::{Value, json};

/// The generation of every object, unless a row says otherwise.
const GENERATION: i64 = 3;

/// A kind of the operator's API, from its CRD.
struct Kind {
    kind: String,
    api_version: String,
    namespaced: bool,
}

fn kinds() -> Vec<Kind> {
    ecr_operator::api::crds()
        .into_iter()
        .map(|crd| {
            let version = crd
                .spec
                .versions
                .iter()
                .find(|v| v.storage)
                .map(|v| v.name.clone())
                .unwrap();
            Kind {
                kind: crd.spec.names.kind.clone(),
                api_version: format!("{}/{version}", crd.spec.group),
                namespaced: crd.spec.scope == "Namespaced",
            }
        })
        .collect()
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(1_795_000_000).unwrap())
}

/// An object of `kind` at `generation`, with `status` when given.
fn object(kind: &Kind, generation: i64, status: Option<Value>) -> Value {
    let mut metadata = json!({
        "name": "conformance",
        "uid": "00000000-0000-0000-0000-000000000001",
        "generation": generation,
        "creationTimestamp": "2026-11-22T09:00:00Z",
        "finalizers": [FINALIZER],
    });
    if kind.namespaced {
        metadata["namespace"] = json!("shop");
    }
    let mut obj = json!({
        "apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata, "spec": {},
    });
    if let Some(status) = status {
        obj["status"] = status;
    }
    obj
}

/// The object marked for deletion, as the API server does while a finalizer is left.
fn deleting(mut obj: Value) -> Value {
    obj["metadata"]["deletionTimestamp"] = json!("2026-11-22T10:00:00Z");
    obj
}

/// A status with `conditions`, and `observedGeneration` when given.
fn status(observed_generation: Option<i64>, conditions: &[Condition]) -> Value {
    let mut status = json!({ "conditions": conditions });
    if let Some(observed) = observed_generation {
        status["observedGeneration"] = json!(observed);
    }
    status
}

/// The conditions the operator writes for `outcome` at `generation`.
fn written(outcome: &Outcome<'_>, generation: i64) -> Vec<Condition> {
    summarize(&[], Some(generation), outcome, &now())
}

/// The message of the condition `type_`.
fn message(conditions: &[Condition], type_: &str) -> String {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.message.clone())
        .unwrap_or_else(|| panic!("no {type_} condition in {conditions:?}"))
}

/// "reason: message" of the Stalled condition, as the Argo CD check reports it.
fn stalled(conditions: &[Condition]) -> String {
    let c = conditions.iter().find(|c| c.type_ == STALLED).unwrap();
    format!("{}: {}", c.reason, c.message)
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: Some(GENERATION),
        last_transition_time: now(),
    }
}

/// One row of the table: what the operator wrote, and what each reader must answer (the verdict
/// and a part of its message).
struct Row {
    case: &'static str,
    object: Value,
    kstatus: (&'static str, String),
    argocd: (&'static str, String),
}

fn rows(kind: &Kind) -> Vec<Row> {
    let k = kind.kind.as_str();
    let in_sync = written(
        &Outcome::InSync(format!("{k} conformance is in sync")),
        GENERATION,
    );
    let waiting = written(
        &Outcome::Waiting {
            reason: "DependencyNotReady",
            message: "Registry \"default\" is not Ready".into(),
        },
        GENERATION,
    );
    let dependency = Error::DependencyNotReady {
        kind: "Registry",
        name: "default".into(),
    };
    let waiting_error = written(&Outcome::Failed(&dependency), GENERATION);
    let throttled = Error::backend("CreateRepository")(BackendError::Throttled("rate exceeded".into()));
    let transient = written(&Outcome::Failed(&throttled), GENERATION);
    let owned = Error::OwnedElsewhere {
        name: "shop/web".into(),
        owner: "other/web".into(),
    };
    let stalled_error = written(&Outcome::Failed(&owned), GENERATION);
    let stalled_verdict = written(
        &Outcome::Stalled {
            reason: "Conflict",
            message: "held by an older LifecyclePolicy".into(),
        },
        GENERATION,
    );
    let deleting_conditions = written(
        &Outcome::Deleting(format!("deleting {k} conformance")),
        GENERATION,
    );
    let suspended = written(&Outcome::Suspended, GENERATION);
    let suspended_message = ecr_operator::status::SUSPENDED_MESSAGE;
    // The shape `quarantine` writes on an object stored in a shape the operator cannot decode.
    let invalid = "spec.interval: \"1.5h\" is not whole hours, minutes and seconds";
    let undecodable = vec![
        condition(READY, "False", "InvalidSpec", invalid),
        condition(STALLED, "True", "InvalidSpec", invalid),
    ];
    let older = written(&Outcome::InSync("in sync".into()), GENERATION - 1);
    let older_stalled = written(&Outcome::Failed(&owned), GENERATION - 1);
    let not_observed = |g: i64| {
        format!(
            "{k} generation is {g}, but latest observed generation is {}",
            g - 1
        )
    };
    let at = |conditions: &[Condition]| Some(status(Some(GENERATION), conditions));
    vec![
        // kstatus cannot tell an object without status from one whose kind has none: Current.
        // This is why the operator writes a status on every object it is responsible for, even
        // one it cannot decode or act on (suspended): only its own status is the truth.
        Row {
            case: "no status",
            object: object(kind, GENERATION, None),
            kstatus: ("Current", "Resource is current".into()),
            argocd: ("Progressing", "Waiting for ecr-operator".into()),
        },
        Row {
            case: "empty status",
            object: object(kind, GENERATION, Some(json!({}))),
            kstatus: ("Current", "Resource is current".into()),
            argocd: ("Progressing", "Waiting for ecr-operator".into()),
        },
        // Without observedGeneration kstatus skips its generation check; Argo CD waits.
        Row {
            case: "status without observedGeneration",
            object: object(kind, GENERATION, Some(status(None, &in_sync))),
            kstatus: ("Current", "Resource is Ready".into()),
            argocd: ("Progressing", format!("observe generation {GENERATION}")),
        },
        Row {
            case: "in sync",
            object: object(kind, GENERATION, at(&in_sync)),
            kstatus: ("Current", "Resource is Ready".into()),
            argocd: ("Healthy", message(&in_sync, READY)),
        },
        Row {
            case: "waiting on a dependency",
            object: object(kind, GENERATION, at(&waiting)),
            kstatus: ("InProgress", message(&waiting, RECONCILING)),
            argocd: ("Progressing", message(&waiting, READY)),
        },
        Row {
            case: "waiting on a dependency (an error of class Waiting)",
            object: object(kind, GENERATION, at(&waiting_error)),
            kstatus: ("InProgress", message(&waiting_error, RECONCILING)),
            argocd: ("Progressing", message(&waiting_error, READY)),
        },
        Row {
            case: "transient error",
            object: object(kind, GENERATION, at(&transient)),
            kstatus: ("InProgress", message(&transient, RECONCILING)),
            argocd: ("Progressing", message(&transient, READY)),
        },
        Row {
            case: "stalled error",
            object: object(kind, GENERATION, at(&stalled_error)),
            kstatus: ("Failed", message(&stalled_error, STALLED)),
            argocd: ("Degraded", stalled(&stalled_error)),
        },
        Row {
            case: "stalled verdict (not an error)",
            object: object(kind, GENERATION, at(&stalled_verdict)),
            kstatus: ("Failed", message(&stalled_verdict, STALLED)),
            argocd: ("Degraded", stalled(&stalled_verdict)),
        },
        Row {
            case: "undecodable",
            object: {
                let mut obj = object(kind, GENERATION, at(&undecodable));
                obj["spec"] = json!({"interval": "1.5h"});
                obj
            },
            kstatus: ("Failed", invalid.into()),
            argocd: ("Degraded", format!("InvalidSpec: {invalid}")),
        },
        // Argo CD itself answers Progressing ("Pending deletion") for an object being deleted
        // before it runs a health check; the script must not contradict it.
        Row {
            case: "deleting",
            object: deleting(object(kind, GENERATION, at(&deleting_conditions))),
            kstatus: ("Terminating", "Resource scheduled for deletion".into()),
            argocd: ("Progressing", message(&deleting_conditions, READY)),
        },
        // A deletion with a finalizer left raises the generation; the operator has not seen it.
        Row {
            case: "deleting, not yet observed",
            object: deleting(object(kind, GENERATION + 1, at(&in_sync))),
            kstatus: ("Terminating", "Resource scheduled for deletion".into()),
            argocd: ("Progressing", format!("observe generation {}", GENERATION + 1)),
        },
        Row {
            case: "older observedGeneration",
            object: object(kind, GENERATION, Some(status(Some(GENERATION - 1), &older))),
            kstatus: ("InProgress", not_observed(GENERATION)),
            argocd: ("Progressing", format!("observe generation {GENERATION}")),
        },
        // A refusal of an older spec says nothing about the new one.
        Row {
            case: "older observedGeneration, stalled",
            object: object(
                kind,
                GENERATION,
                Some(status(Some(GENERATION - 1), &older_stalled)),
            ),
            kstatus: ("InProgress", not_observed(GENERATION)),
            argocd: ("Progressing", format!("observe generation {GENERATION}")),
        },
        // Suspended: only Suspended=True, no Ready (kstatus would read Ready=False as InProgress
        // forever): Current for Flux, Suspended for Argo CD.
        Row {
            case: "suspended",
            object: object(kind, GENERATION, at(&suspended)),
            kstatus: ("Current", "Resource is current".into()),
            argocd: ("Suspended", suspended_message.into()),
        },
    ]
}

/// The port's verdict, from the same fields the library reads.
fn port(obj: &Value) -> &'static str {
    let conditions: Vec<Condition> = match &obj["status"]["conditions"] {
        Value::Null => Vec::new(),
        c => serde_json::from_value(c.clone()).unwrap(),
    };
    kstatus(
        obj["metadata"]["generation"].as_i64(),
        obj["status"]["observedGeneration"].as_i64(),
        &conditions,
        obj["metadata"]["deletionTimestamp"].is_string(),
    )
    .as_str()
}

#[test]
fn every_outcome_of_every_kind_reads_the_same_in_kstatus_argocd_and_the_port() {
    let scripts = argocd_health_checks().unwrap();
    let kinds = kinds();
    assert_eq!(
        kinds.len(),
        ecr_operator::api::crds().len(),
        "every kind of the API"
    );
    let rows: Vec<(String, Row)> = kinds
        .iter()
        .flat_map(|kind| rows(kind).into_iter().map(|row| (kind.kind.clone(), row)))
        .collect();
    let objects: Vec<Value> = rows.iter().map(|(_, row)| row.object.clone()).collect();
    let verdicts = kstatus_verdicts(&objects).unwrap();

    let mut wrong = Vec::new();
    for ((kind, row), (status, msg)) in rows.iter().zip(&verdicts) {
        let case = format!("{kind}, {}", row.case);
        let (want, want_msg) = &row.kstatus;
        if status.as_str() != *want || !msg.contains(want_msg.as_str()) {
            wrong.push(format!(
                "{case}: kstatus says {status} ({msg}), the table {want} ({want_msg})"
            ));
        }
        let ported = port(&row.object);
        if ported != status {
            wrong.push(format!("{case}: status::kstatus says {ported}, kstatus {status}"));
        }
        let script = scripts
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, script)| script)
            .unwrap_or_else(|| panic!("docs/gitops.md has no health check for {kind}"));
        let (health, health_msg) = argocd_health(script, &row.object).unwrap();
        let (want, want_msg) = &row.argocd;
        if health != *want || !health_msg.contains(want_msg.as_str()) {
            wrong.push(format!(
                "{case}: Argo CD says {health} ({health_msg}), the table {want} ({want_msg})"
            ));
        }
    }
    assert_eq!(rows.len(), kinds.len() * 15);
    assert!(
        wrong.is_empty(),
        "{} of {} rows disagree:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}
