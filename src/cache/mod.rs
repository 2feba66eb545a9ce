//! Caches in front of the backend: the repository listing and the ECR tokens. Stateful, so they
//! live apart from the pure modules.

mod repositories;
mod tokens;

pub use repositories::RepositoryCache;
pub use tokens::{CachedToken, TokenCache};
