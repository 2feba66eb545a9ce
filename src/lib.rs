//! ecr-operator: manage Amazon ECR with Kubernetes resources.
//!
//! - [`api`]: the `ecr-operator.dev/v1alpha1` CRD types (no I/O).
//! - [`cli`]: the command line.

pub mod api;
pub mod backend;
pub mod cache;
pub mod cli;
pub mod controllers;
pub mod decide;
pub mod error;
pub mod inventory;
pub mod jitter;
pub mod leader;
pub mod lifecycle;
pub mod metrics;
pub mod metrics_insight;
pub mod policy;
pub mod replication;
pub mod runtime;
pub mod secrets;
pub mod server;
pub mod shard;
pub mod status;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod text;
