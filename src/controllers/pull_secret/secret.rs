//! The pull Secret: its desired content (pure), and the write that never takes over a Secret
//! someone else owns.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;

use crate::backend::RegistryBackend;
use crate::controllers::context::Context;
pub use crate::decide::pull_secret::secret::{DOCKERCONFIGJSON, desired_secret, secret_in_sync};
use crate::error::{Error, Result};

/// Writes the Secret unless it is already in sync; never touches a Secret someone else owns.
/// Returns whether it wrote.
///
/// It reads only the label-selected cache of our own Secrets, so the operator needs no `get` on
/// Secrets: a Secret missing from the cache is applied without `force`, and if someone else
/// already wrote a Secret of that name the API server answers with a conflict (or, for another
/// `type`, an immutable-field error) instead of letting us take it over.
pub async fn apply_secret<B: RegistryBackend>(
    ctx: &Context<B>,
    controller: &'static str,
    desired: &Secret,
    owner_uid: &str,
) -> Result<bool> {
    let ns = desired.namespace().unwrap_or_default();
    let name = desired.name_any();
    let cached = ctx
        .managed_secrets
        .get(&ObjectRef::<Secret>::new(&name).within(&ns));
    let force = match cached {
        Some(existing) if !existing.owner_references().iter().any(|o| o.uid == owner_uid) => {
            return Err(Error::SecretExists(format!("{ns}/{name}")));
        }
        Some(existing) if secret_in_sync(&existing, desired) => return Ok(false),
        Some(_) => true,
        None => false,
    };
    let mut params = PatchParams::apply(&ctx.field_manager(controller));
    if force {
        params = params.force();
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    match api.patch(&name, &params, &Patch::Apply(desired)).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if !force && (s.code == 409 || s.code == 422) => {
            return Err(Error::SecretExists(format!("{ns}/{name}")));
        }
        Err(e) => return Err(Error::kube("apply the pull Secret")(e)),
    }
    ctx.metrics.secret_written(controller);
    Ok(true)
}
