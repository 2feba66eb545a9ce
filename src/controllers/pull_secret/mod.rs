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

pub use cluster::{ClusterPullSecretController, namespace_matches};
pub use namespaced::PullSecretController;
pub use secret::desired_secret;
pub use service_accounts::service_account_patch;

pub use crate::decide::pull_secret::{
    CLUSTER_PULL_SECRET_LABEL, MANAGED_BY, PULL_SECRET_LABEL, counted, managed_secrets_selector,
    owner_reference, secret_owner, stored_owner, time,
};
