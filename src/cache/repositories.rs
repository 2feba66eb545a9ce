//! The repository listing cache: one DescribeRepositories listing per registry, shared by that
//! registry's reconciles for a short while.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::{BackendResult, RegistryBackend, RemoteRepository, Target};

/// One listing of a registry's repositories, shared by the reconciles of that registry for a
/// short while: a resync of N in-sync repositories makes one DescribeRepositories call per
/// 1,000 repositories instead of N.
pub struct RepositoryCache {
    ttl: Duration,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Snapshot>>>>>,
}

struct Snapshot {
    at: Instant,
    repos: HashMap<String, RemoteRepository>,
}

impl RepositoryCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::default(),
        }
    }

    fn slot(&self, target: &Target) -> Arc<tokio::sync::Mutex<Option<Snapshot>>> {
        match self.slots.lock() {
            Ok(mut map) => map.entry(target.key()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// The repository as of a listing at most `ttl` old. A name missing from a listing that is
    /// not new is described directly when `confirm_missing` (it may have been created since);
    /// a caller about to create it passes `false`, because CreateRepository answers
    /// AlreadyExists in that case anyway, which saves one call per new repository.
    pub async fn get<B: RegistryBackend>(
        &self,
        backend: &B,
        target: &Target,
        name: &str,
        confirm_missing: bool,
    ) -> BackendResult<Option<RemoteRepository>> {
        let slot = self.slot(target);
        let mut guard = slot.lock().await;
        let fresh = guard.as_ref().is_some_and(|s| s.at.elapsed() < self.ttl);
        if !fresh {
            // The stale listing goes before the new one is read, so the two are never in memory
            // at once (at tens of thousands of repositories, megabytes of peak RSS).
            *guard = None;
            let repos = backend.list_repositories(target).await?;
            let repos = repos.into_iter().map(|r| (r.name.clone(), r)).collect();
            *guard = Some(Snapshot {
                at: Instant::now(),
                repos,
            });
            return Ok(guard.as_ref().and_then(|s| s.repos.get(name).cloned()));
        }
        if let Some(found) = guard.as_ref().and_then(|s| s.repos.get(name).cloned()) {
            return Ok(Some(found));
        }
        if !confirm_missing {
            return Ok(None);
        }
        drop(guard);
        let found = backend.describe_repository(target, name).await?;
        if let Some(repo) = &found {
            self.put(target, repo.clone()).await;
        }
        Ok(found)
    }

    /// Records what a write returned or a fresh describe showed.
    pub async fn put(&self, target: &Target, repo: RemoteRepository) {
        if let Some(s) = self.slot(target).lock().await.as_mut() {
            s.repos.insert(repo.name.clone(), repo);
        }
    }

    /// Forgets a repository (deleted, or found missing).
    pub async fn remove(&self, target: &Target, name: &str) {
        if let Some(s) = self.slot(target).lock().await.as_mut() {
            s.repos.remove(name);
        }
    }
}
