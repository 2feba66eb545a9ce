//! Objects the operator cannot decode (stored before an admission rule existed, or by a newer
//! version of the CRD): each is left out of its controller, and reported once per generation by
//! name: a Warning event and, where the API server takes it, a status that says what to fix
//! (`Ready=False` and `Stalled=True`, reason `InvalidSpec`, at the object's generation). The
//! rest of the kind keeps being reconciled. Nothing of the object's body reaches the log.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::context::Context;
use crate::backend::RegistryBackend;
use crate::status::{READY, STALLED, stored_time};

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
    fn first_time(&self, object: &DynamicObject) -> bool {
        let key = (
            object.uid().unwrap_or_default(),
            object.metadata.generation.unwrap_or(0),
        );
        self.reported.lock().map(|mut r| r.insert(key)).unwrap_or(false)
    }
}

/// Logs `bad` by name and, the first time for its generation, reports it on the object as
/// `controller` (event) and `field_manager` (status), in the background.
pub fn report<K, B>(ctx: &Arc<Context<B>>, controller: &'static str, field_manager: String, bad: Undecodable)
where
    K: Resource<DynamicType = ()>,
    B: RegistryBackend,
{
    let name = bad.object.name_any();
    let namespace = bad.object.namespace();
    tracing::warn!(
        kind = %K::kind(&()),
        namespace = namespace.as_deref().unwrap_or_default(),
        name = %name,
        error = %bad.error,
        "cannot decode this object; it is skipped until it is fixed"
    );
    if !ctx.quarantine.first_time(&bad.object) {
        return;
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let resource = ApiResource::erase::<K>(&());
        let reference = ObjectReference {
            api_version: Some(resource.api_version.clone()),
            kind: Some(resource.kind.clone()),
            name: Some(name.clone()),
            namespace: namespace.clone(),
            uid: bad.object.uid(),
            ..ObjectReference::default()
        };
        ctx.events
            .publish(
                controller,
                &reference,
                EventType::Warning,
                "InvalidSpec",
                message(&bad.error),
                "Decode",
            )
            .await;
        let now = stored_time(std::time::SystemTime::now())
            .map(|t| t.0.to_string())
            .unwrap_or_default();
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(ctx.client.clone(), ns, &resource),
            None => Api::all_with(ctx.client.clone(), &resource),
        };
        let patch = Patch::Apply(json!({
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "status": status(&bad.object, &bad.error, &now),
        }));
        if let Err(e) = api
            .patch_status(&name, &PatchParams::apply(&field_manager).force(), &patch)
            .await
        {
            // The status may itself be what does not validate; the event and the log remain.
            tracing::info!(name = %name, error = %crate::error::error_chain(&e), "could not write the status of an undecodable object");
        }
    });
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
