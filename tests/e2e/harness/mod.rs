//! The end-to-end harness: the operator environment most scenarios start from.

pub mod env;
