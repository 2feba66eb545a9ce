//! Version `v1alpha1` of the `ecr-operator.dev` API.

mod lifecycle_policy;
mod pull_secret;
mod registry;
mod replication_rule;
mod repository;

pub use lifecycle_policy::*;
pub use pull_secret::*;
pub use registry::*;
pub use replication_rule::*;
pub use repository::*;
