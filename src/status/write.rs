//! One status write per reconcile: server-side apply of the complete status under the
//! controller's field manager, skipped when nothing changed.

use kube::api::{Api, Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Applies `status` unless it equals the object's current status. Returns whether it wrote.
pub async fn write_if_changed<K>(
    api: &Api<K>,
    obj: &K,
    status: &K::Status,
    field_manager: &str,
) -> Result<bool>
where
    K: Resource<DynamicType = ()> + HasStatus + Clone + DeserializeOwned + std::fmt::Debug,
    K::Status: Serialize + PartialEq,
{
    write_fields(api, obj, status, field_manager, &|_| true).await
}

/// Like [`write_if_changed`] for a status shared by several controllers: only the top-level
/// fields `owned` accepts are compared and applied, so this field manager never takes the others.
pub async fn write_fields<K>(
    api: &Api<K>,
    obj: &K,
    status: &K::Status,
    field_manager: &str,
    owned: &(dyn Fn(&str) -> bool + Sync),
) -> Result<bool>
where
    K: Resource<DynamicType = ()> + HasStatus + Clone + DeserializeOwned + std::fmt::Debug,
    K::Status: Serialize + PartialEq,
{
    let project = |s: Option<&K::Status>| -> serde_json::Map<String, serde_json::Value> {
        match s.and_then(|s| serde_json::to_value(s).ok()) {
            Some(serde_json::Value::Object(map)) => map.into_iter().filter(|(k, _)| owned(k)).collect(),
            _ => serde_json::Map::new(),
        }
    };
    let desired = project(Some(status));
    if obj.status().is_some() && project(obj.status()) == desired {
        return Ok(false);
    }
    let patch = Patch::Apply(serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": desired,
    }));
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(field_manager).force(),
        &patch,
    )
    .await
    .map_err(Error::kube("apply the status"))?;
    Ok(true)
}
