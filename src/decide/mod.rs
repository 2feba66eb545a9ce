//! The controllers' pure decisions: from what was read (the object, its dependencies, what ECR
//! holds) to what to do and what the status says. Nothing here does I/O: no Kubernetes client, no
//! ECR backend, no clock beyond a `now` passed in (a test in `tests/architecture.rs` keeps it so).
//! Each module is table-tested beside it; the controllers in [`crate::controllers`] read, call
//! these, and act.

pub mod applied;
pub mod claims;
pub mod creation_template;
pub mod drift;
pub mod in_use;
pub mod insight;
pub mod insight_gate;
pub mod lane;
pub mod lifecycle_policy;
pub mod owners;
pub mod protection;
pub mod public_repository;
pub mod pull_secret;
pub mod pull_through_cache_rule;
pub mod quarantine;
pub mod registry;
pub mod registry_settings;
pub mod replication;
pub mod replication_rule;
pub mod repository;

/// A Normal event: reason and note.
pub type Note = (&'static str, String);
