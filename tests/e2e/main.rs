//! End-to-end tests against the real control plane built from the Kubernetes Go modules
//! (`tests/testcluster`) and moto's ECR server. Run by `cargo xtask test`
//! (`cargo test --features e2e --test e2e`).

// Test code: helpers may unwrap (the standard forbids unwrap outside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission;
mod argocd;
mod chart;
mod cluster;
mod conformance;
mod corpus;
mod creation_templates;
mod ecr;
mod faults;
mod harness;
mod identities;
mod in_memory;
mod insight;
mod leader;
mod lifecycle;
mod operator;
mod owners;
mod protection;
mod public;
mod pull_secrets;
mod pull_through_cache;
mod registry_settings;
mod replication;
mod runtime;
mod sharding;
mod support;
mod tenant_identity;
mod triggers;
mod workload_identity;
