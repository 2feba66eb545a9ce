//! Pure: the pull Secret's desired content, and whether a stored one already has it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;
use secrecy::{ExposeSecret, SecretString};

use super::MANAGED_BY;
use crate::api::OPERATOR_NAME;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::pull_secret::PULL_SECRET_LABEL;

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
