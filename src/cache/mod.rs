//! The caching layer in front of the backend: the repository listing (one DescribeRepositories
//! listing per registry, shared for `--repository-cache-ttl`) and the ECR tokens (one per region,
//! endpoint and identity). Controllers call [`Cached`], which wraps the backend, so no call site
//! has to remember which cache goes with which call.

mod repositories;
pub mod sessions;
pub mod static_keys;
mod tokens;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use repositories::RepositoryCache;
pub use tokens::{CachedToken, TokenCache};

use crate::backend::{BackendResult, RegistryBackend, RemoteRepository, Target};

/// The backend's cached reads.
pub struct Cached<B> {
    backend: Arc<B>,
    repositories: RepositoryCache,
    tokens: TokenCache,
}

impl<B: RegistryBackend> Cached<B> {
    /// `repository_ttl`: how long one listing serves; `token_lifetime`: the testing override of
    /// every token's lifetime (`--assume-token-lifetime`).
    pub fn new(
        backend: Arc<B>,
        repository_ttl: Duration,
        token_lifetime: Option<Duration>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            backend,
            repositories: RepositoryCache::new(repository_ttl),
            tokens: TokenCache::new(token_lifetime, metrics),
        }
    }

    /// A repository as of a recent listing; a name missing from a listing that is not new is
    /// described directly when `confirm_missing`.
    pub async fn repository(
        &self,
        target: &Target,
        name: &str,
        confirm_missing: bool,
    ) -> BackendResult<Option<RemoteRepository>> {
        self.repositories
            .get(self.backend.as_ref(), target, name, confirm_missing)
            .await
    }

    /// Records what a write returned or a fresh describe showed.
    pub async fn remember(&self, target: &Target, repo: RemoteRepository) {
        self.repositories.put(target, repo).await;
    }

    /// Forgets a repository (deleted, or found missing).
    pub async fn forget(&self, target: &Target, name: &str) {
        self.repositories.remove(target, name).await;
    }

    /// The ECR Public token (`public.ecr.aws`) for a public target, one per identity.
    pub async fn public_token(
        &self,
        target: &Target,
        fraction: f64,
        now: SystemTime,
    ) -> BackendResult<CachedToken> {
        self.tokens
            .get_public(self.backend.as_ref(), target, fraction, now)
            .await
    }

    /// The ECR token for `target`, fetched again once `fraction` of its lifetime has passed.
    pub async fn token(&self, target: &Target, fraction: f64, now: SystemTime) -> BackendResult<CachedToken> {
        self.tokens
            .get(self.backend.as_ref(), target, fraction, now)
            .await
    }
}
