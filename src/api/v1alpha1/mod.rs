//! Version `v1alpha1` of the `ecr-operator.dev` API.

// kube's `printcolumn(name = .., type_ = "string", ..)` repeats keys across columns, which clippy
// mistakes for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

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
