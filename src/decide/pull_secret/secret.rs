//! Pure: the pull Secret's desired content, and whether a stored one already has it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;
use secrecy::ExposeSecret;

use super::MANAGED_BY;
use super::format::SecretBody;
use crate::api::OPERATOR_NAME;

pub const DOCKERCONFIGJSON: &str = ".dockerconfigjson";

/// Pure: the Secret to write: the operator's labels, the owner, and the format's `type`,
/// labels and data keys ([`SecretBody`]). Nothing else: under server-side apply the fields the
/// operator does not send are left to whoever wrote them.
pub fn desired_secret(
    namespace: &str,
    name: &str,
    owner: OwnerReference,
    owner_label: (&str, &str),
    body: &SecretBody,
) -> Secret {
    let mut labels = BTreeMap::from([
        (MANAGED_BY.to_owned(), OPERATOR_NAME.to_owned()),
        (owner_label.0.to_owned(), owner_label.1.to_owned()),
    ]);
    labels.extend(body.labels.clone());
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        type_: Some(body.type_.to_owned()),
        data: Some(
            body.data
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.expose_secret().as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// Pure: whether `existing` already is `desired`: same type, our labels, owner and data keys
/// with our values. Keys and labels someone else added do not count (they are theirs, and
/// applying would not remove them anyway).
pub fn secret_in_sync(existing: &Secret, desired: &Secret) -> bool {
    let labels_ok = desired
        .labels()
        .iter()
        .all(|(k, v)| existing.labels().get(k) == Some(v));
    let owner_ok = desired
        .owner_references()
        .iter()
        .all(|o| existing.owner_references().contains(o));
    let empty = BTreeMap::new();
    let have = existing.data.as_ref().unwrap_or(&empty);
    let data_ok = desired
        .data
        .as_ref()
        .unwrap_or(&empty)
        .iter()
        .all(|(k, v)| have.get(k) == Some(v));
    labels_ok && owner_ok && existing.type_ == desired.type_ && data_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::pull_secret::PULL_SECRET_LABEL;
    use secrecy::SecretString;

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
        let body = SecretBody {
            type_: "kubernetes.io/dockerconfigjson",
            data: BTreeMap::from([(DOCKERCONFIGJSON.to_owned(), SecretString::from("{}"))]),
            labels: BTreeMap::new(),
        };
        let s = desired_secret("ns", "ecr", owner.clone(), (PULL_SECRET_LABEL, "ps"), &body);
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
        // A key (or label) another writer added is theirs: still in sync, nothing to apply.
        let mut added = s.clone();
        added
            .data
            .as_mut()
            .unwrap()
            .insert("theirs".into(), ByteString(b"v".to_vec()));
        added.labels_mut().insert("theirs".into(), "v".into());
        assert!(secret_in_sync(&added, &s));
        // Another type is not (a Secret's type is immutable: that one is not ours to fix).
        let mut typed = s.clone();
        typed.type_ = Some("Opaque".into());
        assert!(!secret_in_sync(&typed, &s));
        // Debug of the rendered Secret is not how we log: only names are ever logged.
        assert!(format!("{:?}", s.metadata).find("dockerconfigjson").is_none());
    }
}
