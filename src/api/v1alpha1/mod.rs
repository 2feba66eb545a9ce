//! Version `v1alpha1` of the `ecr-operator.dev` API.

// kube's `printcolumn(name = .., type_ = "string", ..)` repeats keys across columns, which clippy
// mistakes for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

mod image_policy;
mod insight;
mod lifecycle_policy;
mod public_repository;
mod pull_secret;
mod pull_through_cache_rule;
mod registry;
mod replication_rule;
mod repository;
mod repository_creation_template;

pub use image_policy::*;
pub use insight::*;
pub use lifecycle_policy::*;
pub use public_repository::*;
pub use pull_secret::*;
pub use pull_through_cache_rule::*;
pub use registry::*;
pub use replication_rule::*;
pub use repository::*;
pub use repository_creation_template::*;

/// Every status of the API is kstatus-shaped.
macro_rules! summarized {
    ($($status:ty),*) => {$(
        impl crate::status::Summarized for $status {
            fn conditions(&self) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
                &self.conditions
            }
            fn summarize_as(
                &mut self,
                generation: Option<i64>,
                conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
            ) {
                self.observed_generation = generation;
                self.conditions = conditions;
            }
            fn observed_generation(&self) -> Option<i64> {
                self.observed_generation
            }
            fn last_handled_reconcile_at(&self) -> Option<&str> {
                self.last_handled_reconcile_at.as_deref()
            }
        }
    )*};
}

summarized!(
    RegistryStatus,
    RepositoryStatus,
    LifecyclePolicyStatus,
    ReplicationRuleStatus,
    PullSecretStatus,
    ClusterPullSecretStatus,
    PullThroughCacheRuleStatus,
    RepositoryCreationTemplateStatus,
    PublicRepositoryStatus,
    ImagePolicyStatus
);
