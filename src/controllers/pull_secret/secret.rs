//! The pull Secret: its desired content (pure), and the write that never takes over a Secret
//! someone else owns.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use secrecy::{ExposeSecret, SecretString};

use super::MANAGED_BY;
use crate::api::OPERATOR_NAME;
use crate::backend::RegistryBackend;
use crate::controllers::context::Context;
use crate::error::{Error, Result};

pub const DOCKERCONFIGJSON: &str = ".dockerconfigjson";

/// Pure: the Secret to write.
pub fn desired_secret(
    namespace: &str,
    name: &str,
    owner: OwnerReference,
    owner_label: (&str, &str),
    content: &SecretString,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.to_owned(), OPERATOR_NAME.to_owned()),
                (owner_label.0.to_owned(), owner_label.1.to_owned()),
            ])),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".to_owned()),
        data: Some(BTreeMap::from([(
            DOCKERCONFIGJSON.to_owned(),
            ByteString(content.expose_secret().as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// Pure: whether `existing` already is `desired` (same content, type, our labels and owner).
pub fn secret_in_sync(existing: &Secret, desired: &Secret) -> bool {
    let labels_ok = desired
        .labels()
        .iter()
        .all(|(k, v)| existing.labels().get(k) == Some(v));
    let owner_ok = desired
        .owner_references()
        .iter()
        .all(|o| existing.owner_references().contains(o));
    labels_ok && owner_ok && existing.type_ == desired.type_ && existing.data == desired.data
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::pull_secret::PULL_SECRET_LABEL;

    #[test]
    fn desired_secret_is_labelled_owned_and_typed() {
        let owner = OwnerReference {
            api_version: "ecr-operator.dev/v1alpha1".into(),
            kind: "PullSecret".into(),
            name: "ps".into(),
            uid: "u1".into(),
            controller: Some(true),
            ..Default::default()
        };
        let s = desired_secret(
            "ns",
            "ecr",
            owner.clone(),
            (PULL_SECRET_LABEL, "ps"),
            &SecretString::from("{}"),
        );
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
        assert_eq!(
            s.labels().get(MANAGED_BY).map(String::as_str),
            Some("ecr-operator")
        );
        assert_eq!(s.owner_references(), [owner]);
        assert!(secret_in_sync(&s, &s));
        let mut other = s.clone();
        other.data = Some(BTreeMap::from([(
            DOCKERCONFIGJSON.to_owned(),
            ByteString(b"x".to_vec()),
        )]));
        assert!(!secret_in_sync(&other, &s));
        // Debug of the rendered Secret is not how we log: only names are ever logged.
        assert!(format!("{:?}", s.metadata).find("dockerconfigjson").is_none());
    }
}
