//! Reconciles `PullSecret` (one namespace) and `ClusterPullSecret` (every matching namespace):
//! `kubernetes.io/dockerconfigjson` Secrets with ECR credentials, refreshed before the 12-hour
//! tokens expire. One token per (region, endpoint, identity) is shared by every consumer.
//!
//! The two controllers share their steps: [`credentials`] (tokens → dockerconfigjson),
//! [`secret`] (the Secret, written only when it differs and never over someone else's), and
//! [`service_accounts`] (our entry in `imagePullSecrets`, and only ours).

pub mod cluster;
pub mod credentials;
pub mod namespaced;
pub mod secret;
pub mod service_accounts;

use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::Resource;

pub use cluster::{ClusterPullSecretController, namespace_matches};
pub use namespaced::PullSecretController;
pub use secret::desired_secret;
pub use service_accounts::service_account_patch;

use crate::api::OPERATOR_NAME;

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const PULL_SECRET_LABEL: &str = "ecr-operator.dev/pullsecret";
pub const CLUSTER_PULL_SECRET_LABEL: &str = "ecr-operator.dev/clusterpullsecret";

/// Only Secrets with this label are watched and cached.
pub fn managed_secrets_selector() -> String {
    format!("{MANAGED_BY}={OPERATOR_NAME}")
}

/// Pure: `1 registry`, `2 registries`.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn owner_reference<K: Resource<DynamicType = ()>>(obj: &K) -> Option<OwnerReference> {
    obj.controller_owner_ref(&())
}

fn time(t: SystemTime) -> Option<Time> {
    crate::status::stored_time(t)
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_read_naturally() {
        for (n, expected) in [(0, "0 registries"), (1, "1 registry"), (2, "2 registries")] {
            assert_eq!(super::counted(n, "registry", "registries"), expected);
        }
    }
}
