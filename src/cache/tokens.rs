//! The ECR token cache: one GetAuthorizationToken per region and identity, shared by every
//! consumer, concurrent requests coalesced.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use secrecy::SecretString;

use crate::backend::{BackendResult, RegistryBackend, Target};
use crate::secrets::schedule;

/// A cached ECR token.
#[derive(Clone)]
pub struct CachedToken {
    /// base64 of `AWS:<password>`.
    pub token: SecretString,
    pub fetched_at: SystemTime,
    /// ECR's `expiresAt`, or the documented 12 h from `fetched_at` when ECR's value is missing or
    /// already past (moto always says 2015).
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("fetched_at", &self.fetched_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Tokens by (region, endpoint, identity).
pub struct TokenCache {
    lifetime_override: Option<Duration>,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<CachedToken>>>>>,
    warned: Mutex<HashSet<String>>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl TokenCache {
    /// `lifetime_override` (the `--assume-token-lifetime` flag, for tests only) treats every
    /// token as living that long.
    pub fn new(lifetime_override: Option<Duration>, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Self {
            lifetime_override,
            slots: Mutex::default(),
            warned: Mutex::default(),
            metrics,
        }
    }

    /// The token for `target`, fetched again once `fraction` of its lifetime has passed (with a
    /// little jitter). Callers asking at the same time share one fetch.
    pub async fn get<B: RegistryBackend>(
        &self,
        backend: &B,
        target: &Target,
        fraction: f64,
        now: SystemTime,
    ) -> BackendResult<CachedToken> {
        self.get_kind(
            target.key(),
            target,
            fraction,
            now,
            backend.authorization_token(target),
        )
        .await
    }

    /// The ECR Public token (`public.ecr.aws`) for `target` (a public target: us-east-1 and an
    /// identity), cached apart from the private tokens of the same key, on the same schedule.
    pub async fn get_public<B: RegistryBackend>(
        &self,
        backend: &B,
        target: &Target,
        fraction: f64,
        now: SystemTime,
    ) -> BackendResult<CachedToken> {
        let key = format!("ecr-public|{}", target.key());
        self.get_kind(
            key,
            target,
            fraction,
            now,
            backend.public_authorization_token(target),
        )
        .await
    }

    async fn get_kind(
        &self,
        key: String,
        target: &Target,
        fraction: f64,
        now: SystemTime,
        fetch: impl Future<Output = BackendResult<crate::backend::AuthToken>>,
    ) -> BackendResult<CachedToken> {
        let slot = match self.slots.lock() {
            Ok(mut map) => map.entry(key.clone()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        let mut guard = slot.lock().await;
        if let Some(t) = guard.as_ref()
            && now < schedule::refresh_at(t.fetched_at, t.expires_at, fraction, &key)
        {
            return Ok(t.clone());
        }
        let fetched = fetch.await?;
        self.metrics.token_fetched();
        let (expires_at, assumed) =
            schedule::effective_expiry(now, fetched.expires_at, self.lifetime_override);
        if assumed
            && self
                .warned
                .lock()
                .map(|mut w| w.insert(key.clone()))
                .unwrap_or(false)
        {
            tracing::warn!(
                region = %target.region,
                "ECR returned no usable token expiry (missing or in the past); assuming the documented 12 hours"
            );
        }
        let token = CachedToken {
            token: fetched.token,
            fetched_at: now,
            expires_at,
        };
        *guard = Some(token.clone());
        Ok(token)
    }
}
