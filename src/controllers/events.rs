//! Kubernetes events: one `Recorder` per controller, built once, so repeats of an event are
//! aggregated into a series (kube's recorder keeps that cache per instance).

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// The recorders of every controller.
pub struct Events {
    client: Client,
    /// The Pod name (the reporting instance).
    instance: Option<String>,
    recorders: Mutex<HashMap<&'static str, Recorder>>,
}

impl Events {
    pub fn new(client: Client, instance: Option<String>) -> Self {
        Self {
            client,
            instance,
            recorders: Mutex::default(),
        }
    }

    /// The controller's recorder, built on first use and shared afterwards.
    fn recorder(&self, controller: &'static str) -> Recorder {
        let build = || {
            Recorder::new(
                self.client.clone(),
                Reporter {
                    controller: format!("{}/{controller}-controller", crate::api::GROUP),
                    instance: self.instance.clone(),
                },
            )
        };
        match self.recorders.lock() {
            Ok(mut map) => map.entry(controller).or_insert_with(build).clone(),
            Err(_) => build(),
        }
    }

    /// Publishes an event; a failure is logged, never fails the reconcile.
    pub async fn publish(
        &self,
        controller: &'static str,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
        action: &str,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(crate::text::truncate(note, 1024)),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder(controller).publish(&event, reference).await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                controller,
                reason,
                "failed to publish an event"
            );
        }
    }
}
