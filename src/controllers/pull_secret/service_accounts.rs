//! Our entry in `ServiceAccount.imagePullSecrets`, and only ours: the list is atomic under
//! server-side apply, so it is patched with a JSON patch guarded by the resourceVersion.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::backend::RegistryBackend;
use crate::controllers::context::Context;
use crate::error::{Error, Result};

/// Pure: the JSON patch that adds or removes our entry in `imagePullSecrets`, guarded by the
/// resourceVersion (the list is atomic under server-side apply), or `None` when nothing changes.
pub fn service_account_patch(sa: &ServiceAccount, secret: &str, present: bool) -> Option<serde_json::Value> {
    let list = sa.image_pull_secrets.as_deref().unwrap_or_default();
    let index = list.iter().position(|r| r.name == secret);
    let rv = sa.resource_version().unwrap_or_default();
    let guard = json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv});
    match (present, index) {
        (true, None) if sa.image_pull_secrets.is_none() => {
            Some(json!([guard, {"op": "add", "path": "/imagePullSecrets", "value": [{"name": secret}]}]))
        }
        (true, None) => {
            Some(json!([guard, {"op": "add", "path": "/imagePullSecrets/-", "value": {"name": secret}}]))
        }
        (false, Some(i)) => Some(json!([
            guard,
            {"op": "test", "path": format!("/imagePullSecrets/{i}/name"), "value": secret},
            {"op": "remove", "path": format!("/imagePullSecrets/{i}")}
        ])),
        _ => None,
    }
}

/// Adds (or removes) our Secret in the `imagePullSecrets` of the named ServiceAccounts (`*`: all)
/// of a namespace, leaving every other entry alone; retries on a concurrent write.
pub async fn sync_service_accounts<B: RegistryBackend>(
    ctx: &Context<B>,
    namespace: &str,
    names: &[String],
    secret: &str,
    present: bool,
) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    let all = names.iter().any(|n| n == "*");
    let targets: Vec<String> = if all {
        api.list(&Default::default())
            .await
            .map_err(Error::kube("list ServiceAccounts"))?
            .items
            .iter()
            .map(|s| s.name_any())
            .collect()
    } else {
        names.to_vec()
    };
    for name in targets {
        for attempt in 0..3 {
            let Some(sa) = api
                .get_opt(&name)
                .await
                .map_err(Error::kube("read a ServiceAccount"))?
            else {
                break;
            };
            let Some(ops) = service_account_patch(&sa, secret, present) else {
                break;
            };
            let patch: json_patch::Patch = serde_json::from_value(ops)
                .map_err(|e| Error::Internal(format!("building a ServiceAccount patch: {e}")))?;
            match api
                .patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
                .await
            {
                Ok(_) => break,
                // The test op failed: someone wrote in between. Read again.
                Err(kube::Error::Api(s)) if (s.code == 409 || s.code == 422) && attempt < 2 => continue,
                Err(e) => return Err(Error::kube("patch a ServiceAccount's imagePullSecrets")(e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(pull: Option<Vec<&str>>) -> ServiceAccount {
        let mut sa: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": "default", "resourceVersion": "7"}})).unwrap();
        sa.image_pull_secrets = pull.map(|l| {
            l.into_iter()
                .map(|n| k8s_openapi::api::core::v1::LocalObjectReference { name: n.into() })
                .collect()
        });
        sa
    }

    #[test]
    fn service_account_patches_touch_only_our_entry_and_are_guarded() {
        let add_first = service_account_patch(&sa(None), "ecr", true).unwrap();
        assert_eq!(
            add_first[0],
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": "7"})
        );
        assert_eq!(
            add_first[1],
            json!({"op": "add", "path": "/imagePullSecrets", "value": [{"name": "ecr"}]})
        );
        let append = service_account_patch(&sa(Some(vec!["theirs"])), "ecr", true).unwrap();
        assert_eq!(
            append[1],
            json!({"op": "add", "path": "/imagePullSecrets/-", "value": {"name": "ecr"}})
        );
        assert_eq!(
            service_account_patch(&sa(Some(vec!["theirs", "ecr"])), "ecr", true),
            None,
            "already there"
        );
        let remove = service_account_patch(&sa(Some(vec!["theirs", "ecr", "other"])), "ecr", false).unwrap();
        assert_eq!(
            remove[1],
            json!({"op": "test", "path": "/imagePullSecrets/1/name", "value": "ecr"})
        );
        assert_eq!(remove[2], json!({"op": "remove", "path": "/imagePullSecrets/1"}));
        assert_eq!(
            service_account_patch(&sa(Some(vec!["theirs"])), "ecr", false),
            None,
            "never theirs"
        );
    }
}
