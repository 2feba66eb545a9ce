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
    if obj.status() == Some(status) {
        return Ok(false);
    }
    apply_status(api, &obj.name_any(), status, field_manager).await?;
    Ok(true)
}

/// Server-side applies `status` (complete intent: any field the manager stops sending is
/// released) on the object `name`, forcing conflicts, under `field_manager`.
pub async fn apply_status<K>(
    api: &Api<K>,
    name: &str,
    status: &impl Serialize,
    field_manager: &str,
) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = Patch::Apply(serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    }));
    api.patch_status(name, &PatchParams::apply(field_manager).force(), &patch)
        .await
        .map_err(Error::kube("apply the status"))?;
    Ok(())
}
