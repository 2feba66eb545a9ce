//! Objects the operator cannot decode (stored before an admission rule existed, or by a newer
//! version of the CRD): each is left out of its controller, and reported once per generation by
//! name: a Warning event and, where the API server takes it, a status that says what to fix
//! (`Ready=False` and `Stalled=True`, reason `InvalidSpec`, at the object's generation). The
//! rest of the kind keeps being reconciled. Nothing of the object's body reaches the log.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::context::Context;
use crate::backend::RegistryBackend;
pub use crate::decide::quarantine::{Quarantine, Undecodable, decode, message, status};
use crate::status::stored_time;

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
