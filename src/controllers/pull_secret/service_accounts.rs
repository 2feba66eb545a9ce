//! Our entry in `ServiceAccount.imagePullSecrets`, and only ours: the list is atomic under
//! server-side apply, so it is patched with a JSON patch guarded by the resourceVersion.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};

use crate::backend::RegistryBackend;
use crate::controllers::context::Context;
pub use crate::decide::pull_secret::format::ARGOCD_PART_OF;
pub use crate::decide::pull_secret::service_accounts::{
    missing_names, not_found, not_found_in_namespaces, service_account_patch, wants_entry,
};
use crate::error::{Error, Result};

/// Whether Argo CD runs in `namespace`: one of its ServiceAccounts (labelled
/// `app.kubernetes.io/part-of=argocd` by its manifests and its Helm chart) is there. One LIST of
/// metadata, at most one item, under the ServiceAccount `list` the operator already has.
pub async fn argocd_runs_in<B: RegistryBackend>(ctx: &Context<B>, namespace: &str) -> Result<bool> {
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    let found = api
        .list_metadata(&ListParams::default().labels(ARGOCD_PART_OF).limit(1))
        .await
        .map_err(Error::kube("list Argo CD's ServiceAccounts"))?;
    Ok(!found.items.is_empty())
}

/// Brings our Secret's entry in the `imagePullSecrets` of every ServiceAccount of a namespace to
/// what the spec says: present in the named ones (`*`: all) when `present`, absent from every
/// other one (and from all when `!present`), leaving every other entry alone; retries on a
/// concurrent write. Returns the named ServiceAccounts that do not exist, in the order given.
pub async fn sync_service_accounts<B: RegistryBackend>(
    ctx: &Context<B>,
    namespace: &str,
    names: &[String],
    secret: &str,
    present: bool,
) -> Result<Vec<String>> {
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    let listed = api
        .list(&Default::default())
        .await
        .map_err(Error::kube("list ServiceAccounts"))?
        .items;
    let existing: Vec<String> = listed.iter().map(ResourceExt::name_any).collect();
    let missing = missing_names(names, &existing);
    for listed_sa in listed {
        let name = listed_sa.name_any();
        let wanted = wants_entry(names, &name, present);
        let mut sa = Some(listed_sa);
        for attempt in 0..3 {
            let Some(current) = sa.take() else {
                break;
            };
            let Some(ops) = service_account_patch(&current, secret, wanted) else {
                break;
            };
            let patch: json_patch::Patch = serde_json::from_value(ops)
                .map_err(|e| Error::Internal(format!("building a ServiceAccount patch: {e}")))?;
            match api
                .patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
                .await
            {
                Ok(_) => break,
                // The test op failed: someone wrote in between. Read again (gone: nothing to do).
                Err(kube::Error::Api(s)) if (s.code == 409 || s.code == 422) && attempt < 2 => {
                    sa = api
                        .get_opt(&name)
                        .await
                        .map_err(Error::kube("read a ServiceAccount"))?;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => break,
                Err(e) => return Err(Error::kube("patch a ServiceAccount's imagePullSecrets")(e)),
            }
        }
    }
    Ok(missing)
}
