//! Pure decisions of the pull-secret controllers (PullSecret and ClusterPullSecret): the Secret
//! they write, whose it is, which namespaces and ServiceAccounts get it, and their status. No I/O
//! (see [`crate::decide`]).

pub mod cluster;
pub mod format;
pub mod identity;
pub mod namespaced;
pub mod secret;
pub mod service_accounts;

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use secrecy::SecretString;

use crate::api::OPERATOR_NAME;
use crate::api::v1alpha1::PullSecretRegistry;

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

pub const PULL_SECRET_LABEL: &str = "ecr-operator.dev/pullsecret";

pub const CLUSTER_PULL_SECRET_LABEL: &str = "ecr-operator.dev/clusterpullsecret";

/// Only Secrets with this label are watched and cached.
pub fn managed_secrets_selector() -> String {
    format!("{MANAGED_BY}={OPERATOR_NAME}")
}

/// Pure: `1 registry`, `2 registries`.
pub fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Pure: the owner of kind `K` that a Secret names, as `K`'s store keys it: in the Secret's
/// namespace when `K` is namespaced, without a namespace when it is cluster-scoped. kube's
/// `Controller::owns` always puts the child's namespace in the reference, so for a
/// ClusterPullSecret it names an object no store holds and every event on its Secrets (their
/// garbage collection included) was logged as a controller error.
pub fn secret_owner<K: Resource<DynamicType = ()>>(
    secret: &Secret,
    namespaced: bool,
) -> Option<ObjectRef<K>> {
    let owner = secret
        .owner_references()
        .iter()
        .find(|o| o.kind == K::kind(&()) && o.api_version == K::api_version(&()))?;
    let reference = ObjectRef::<K>::new(&owner.name);
    Some(match (namespaced, secret.namespace()) {
        (true, Some(ns)) => reference.within(&ns),
        _ => reference,
    })
}

/// The owner to re-queue for an event on one of our Secrets: only while it is still in the
/// store (the Secrets of a deleted owner are garbage-collected after it is gone, and a reference
/// to an object no longer stored is logged as a controller error).
pub fn stored_owner<K>(store: &Store<K>, secret: &Secret, namespaced: bool) -> Option<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    secret_owner::<K>(secret, namespaced).filter(|r| store.get(r).is_some())
}

pub fn owner_reference<K: Resource<DynamicType = ()>>(obj: &K) -> Option<OwnerReference> {
    obj.controller_owner_ref(&())
}

pub fn time(t: SystemTime) -> Option<Time> {
    crate::status::stored_time(t)
}

/// Pull credentials for a set of registries, ready to write (not `backend::Credentials`, which
/// is how the operator reaches ECR).
pub struct PullCredentials {
    /// Registry host → its ECR token (base64 of `AWS:<password>`), rendered into the Secret by
    /// [`format::secret_body`].
    pub logins: BTreeMap<String, SecretString>,
    /// The IAM role the tokens were minted with (`spec.identity`), else `None`.
    pub role_arn: Option<String>,
    pub registries: Vec<PullSecretRegistry>,
    pub expires_at: SystemTime,
    pub refreshed_at: SystemTime,
    pub refresh_at: SystemTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1alpha1::{ClusterPullSecret, PullSecret};
    use serde_json::json;

    #[test]
    fn counts_read_naturally() {
        for (n, expected) in [(0, "0 registries"), (1, "1 registry"), (2, "2 registries")] {
            assert_eq!(super::counted(n, "registry", "registries"), expected);
        }
    }

    /// The owner of a Secret as each controller's store keys it: a ClusterPullSecret without the
    /// Secret's namespace (the reference kube's `owns` builds names no stored object), a
    /// PullSecret within it; an owner of another kind is none of ours.
    #[test]
    fn a_secrets_owner_is_keyed_by_its_own_scope() {
        let secret = |kind: &str, api_version: &str| -> Secret {
            serde_json::from_value(json!({"metadata": {"name": "ecr", "namespace": "team-a",
                "ownerReferences": [{"apiVersion": api_version, "kind": kind, "name": "owner", "uid": "u1"}]}}))
            .unwrap()
        };
        let ours = "ecr-operator.dev/v1alpha1";
        let cluster = secret("ClusterPullSecret", ours);
        assert_eq!(
            secret_owner::<ClusterPullSecret>(&cluster, false),
            Some(ObjectRef::new("owner"))
        );
        assert_eq!(secret_owner::<PullSecret>(&cluster, true), None);
        let namespaced = secret("PullSecret", ours);
        assert_eq!(
            secret_owner::<PullSecret>(&namespaced, true),
            Some(ObjectRef::new("owner").within("team-a"))
        );
        assert_eq!(secret_owner::<ClusterPullSecret>(&namespaced, false), None);
        assert_eq!(
            secret_owner::<ClusterPullSecret>(&secret("ClusterPullSecret", "other.dev/v1"), false),
            None
        );
        // Only stored owners are re-queued: a deleted owner's garbage-collected Secrets are not.
        let (store, mut writer) = kube::runtime::reflector::store::<ClusterPullSecret>();
        assert_eq!(stored_owner(&store, &cluster, false), None);
        let owner: ClusterPullSecret = serde_json::from_value(json!({
            "apiVersion": ours, "kind": "ClusterPullSecret", "metadata": {"name": "owner", "uid": "u1"},
            "spec": {"namespaceSelector": {}}}))
        .unwrap();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(owner));
        assert_eq!(
            stored_owner(&store, &cluster, false),
            Some(ObjectRef::new("owner"))
        );
    }
}
