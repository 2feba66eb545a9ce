//! I/O: the registry-wide settings a Registry owns besides scanning and policy: account settings,
//! pull-time update exclusions and the signing configuration. Each is read and written only when
//! the spec sets it (and this Registry is its owner); the decisions are in
//! [`crate::decide::registry_settings`].

use crate::api::v1alpha1::Registry;
use crate::backend::{RegistryBackend, Target};
use crate::controllers::context::Context;
use crate::decide::owners::Setting;
use crate::decide::registry_settings::{
    account_changes, account_pairs, desired_signing, exclusion_changes, signing_in_sync,
};
use crate::error::{Error, Result};

/// Brings the owned settings to the spec; pushes what it changed onto `changed`.
pub async fn sync<B: RegistryBackend>(
    registry: &Registry,
    target: &Target,
    ctx: &Context<B>,
    owns: impl Fn(Setting) -> bool,
    changed: &mut Vec<&'static str>,
) -> Result<()> {
    let spec = &registry.spec;
    if let Some(settings) = spec
        .account_settings
        .as_ref()
        .filter(|_| owns(Setting::AccountSettings))
    {
        let desired = account_pairs(settings);
        let mut observed = Vec::with_capacity(desired.len());
        for (name, _) in &desired {
            let value = ctx
                .backend
                .get_account_setting(target, name)
                .await
                .map_err(Error::backend("GetAccountSetting"))?;
            observed.push((*name, value));
        }
        let writes = account_changes(&desired, &observed);
        for (name, value) in &writes {
            ctx.backend
                .put_account_setting(target, name, value)
                .await
                .map_err(Error::backend("PutAccountSetting"))?;
        }
        if !writes.is_empty() {
            changed.push("account settings");
        }
    }
    if let Some(desired) = spec
        .pull_time_update_exclusions
        .as_ref()
        .filter(|_| owns(Setting::PullTimeExclusions))
    {
        let observed = ctx
            .backend
            .list_pull_time_exclusions(target)
            .await
            .map_err(Error::backend("ListPullTimeUpdateExclusions"))?;
        let (register, deregister) = exclusion_changes(desired, &observed);
        for (arns, on, operation) in [
            (&register, true, "RegisterPullTimeUpdateExclusion"),
            (&deregister, false, "DeregisterPullTimeUpdateExclusion"),
        ] {
            for arn in arns {
                ctx.backend
                    .set_pull_time_exclusion(target, arn, on)
                    .await
                    .map_err(Error::backend(operation))?;
            }
        }
        if !register.is_empty() || !deregister.is_empty() {
            changed.push("pull-time update exclusions");
        }
    }
    if let Some(signing) = spec.signing.as_ref().filter(|_| owns(Setting::Signing)) {
        let desired = desired_signing(signing);
        let observed = ctx
            .backend
            .get_signing(target)
            .await
            .map_err(Error::backend("GetSigningConfiguration"))?;
        if !signing_in_sync(observed.as_deref(), &desired) {
            ctx.backend
                .put_signing(target, &desired)
                .await
                .map_err(Error::backend("PutSigningConfiguration"))?;
            changed.push("signing configuration");
        }
    }
    Ok(())
}
