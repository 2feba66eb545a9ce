//! ecr-operator: manage Amazon ECR with Kubernetes resources.
//!
//! - [`api`]: the `ecr-operator.dev/v1alpha1` CRD types (no I/O).
//! - [`cli`]: the command line.

pub mod api;
pub mod cli;
