//! The end-to-end harness: the operator environment most scenarios start from, and the waiters.

pub mod env;
pub mod wait;
