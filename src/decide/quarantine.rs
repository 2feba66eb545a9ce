//! Pure parts of the quarantine of objects the operator cannot decode (the reporting is
//! `controllers::quarantine`): decoding one object with the failing field named, the message and
//! status it gets, and the record of what was reported. No I/O (see [`crate::decide`]).

use std::collections::HashSet;
use std::sync::Mutex;

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::status::{READY, STALLED};

/// An object of a kind that did not decode: its identity and the decoder's message.
#[derive(Clone, Debug)]
pub struct Undecodable {
    pub object: DynamicObject,
    /// Where and why, e.g. `spec.interval: interval must be whole hours, ... (got "1d")`.
    pub error: String,
}

/// Pure: decodes one object of kind `K`, naming the field that failed.
pub fn decode<K: DeserializeOwned>(object: DynamicObject) -> Result<K, Box<Undecodable>> {
    let value = match serde_json::to_value(&object) {
        Ok(v) => v,
        Err(e) => {
            let error = e.to_string();
            return Err(Box::new(Undecodable { object, error }));
        }
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let error = crate::text::truncate(format!("{}: {}", e.path(), e.inner()), 400);
        Box::new(Undecodable { object, error })
    })
}

/// Pure: the message users see.
pub fn message(error: &str) -> String {
    format!(
        "The operator cannot read this object ({error}). It was stored before the current \
         admission rules or by another version of the CRD; fix that field and apply it again. \
         Until then this object is not reconciled (the others are)."
    )
}

/// Pure: the status written on an undecodable object: what is stored, at its generation, with
/// `Ready=False` and `Stalled=True` (reason `InvalidSpec`).
pub fn status(object: &DynamicObject, error: &str, now: &str) -> Value {
    let generation = object.metadata.generation;
    let mut status = object.data.get("status").cloned().unwrap_or_else(|| json!({}));
    if !status.is_object() {
        status = json!({});
    }
    let condition = |type_: &str, value: &str| {
        json!({"type": type_, "status": value, "reason": "InvalidSpec", "message": message(error),
               "lastTransitionTime": now, "observedGeneration": generation})
    };
    status["observedGeneration"] = json!(generation);
    status["conditions"] = json!([condition(READY, "False"), condition(STALLED, "True")]);
    status
}

/// Reports undecodable objects of the kinds whose status the reporting controller owns.
#[derive(Default)]
pub struct Quarantine {
    /// (uid, generation) already reported: a status write does not move the generation, so
    /// the watch event it causes is not reported again.
    reported: Mutex<HashSet<(String, i64)>>,
}

impl Quarantine {
    /// Whether `(uid, generation)` is new (and records it).
    pub fn first_time(&self, object: &DynamicObject) -> bool {
        let key = (
            object.uid().unwrap_or_default(),
            object.metadata.generation.unwrap_or(0),
        );
        self.reported.lock().map(|mut r| r.insert(key)).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1alpha1::Repository;

    fn stored(interval: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "generation": 4},
            "spec": {"registryRef": {"name": "default"}, "interval": interval},
            "status": {"observedGeneration": 3, "repositoryUri": "x/web", "conditions": [
                {"type": "Ready", "status": "True", "reason": "Succeeded", "message": "in sync",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        }))
        .unwrap()
    }

    #[test]
    fn a_bad_field_is_named_and_reported_as_stalled_at_its_generation() {
        assert!(decode::<Repository>(stored("10m")).is_ok());
        let bad = decode::<Repository>(stored("1d")).unwrap_err();
        assert!(bad.error.starts_with("spec.interval: "), "{}", bad.error);
        assert!(bad.error.contains("1d"), "{}", bad.error);
        let s = status(&bad.object, &bad.error, "2026-11-30T00:00:00Z");
        assert_eq!(s["observedGeneration"], 4);
        assert_eq!(s["repositoryUri"], "x/web", "what was known is kept");
        let conditions: Vec<(&str, &str, &str)> = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["type"].as_str().unwrap(),
                    c["status"].as_str().unwrap(),
                    c["reason"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            conditions,
            [
                ("Ready", "False", "InvalidSpec"),
                ("Stalled", "True", "InvalidSpec")
            ]
        );
        assert!(
            s["conditions"][1]["message"]
                .as_str()
                .unwrap()
                .contains("spec.interval")
        );
        let verdict = crate::status::kstatus(
            Some(4),
            Some(4),
            &serde_json::from_value::<Vec<_>>(s["conditions"].clone()).unwrap(),
            false,
        );
        assert_eq!(verdict, crate::status::KStatus::Failed);
    }

    #[test]
    fn each_generation_is_reported_once() {
        let q = Quarantine::default();
        let mut o = stored("1d");
        assert!(q.first_time(&o));
        assert!(
            !q.first_time(&o),
            "the status write's watch event is not reported again"
        );
        o.metadata.generation = Some(5);
        assert!(q.first_time(&o), "a new (still bad) edit is reported");
    }
}
