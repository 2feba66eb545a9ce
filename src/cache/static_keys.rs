//! The static AWS keys of Registries with `spec.auth.secretRef`, read from their Secret once and
//! shared by every reconcile that reaches that Registry (its Repositories, LifecyclePolicies,
//! PullSecrets, ClusterPullSecrets, the replication controller), instead of one Secret GET per
//! reconcile: a resync of 1,000 Repositories on one Registry costs one read, not 1,000.
//!
//! **When a rotated key is used.** The operator may only `get` credential Secrets (the chart's
//! Role grants no `list`/`watch` on them, so no watch can announce a change; see
//! docs/security.md), so freshness is bounded by time and by the Registry's own reconcile:
//!
//! - an entry serves for at most [`STATIC_KEYS_TTL`] (60 s) after its read started: every
//!   reconcile that starts 60 s or more after the Secret was changed uses the new keys;
//! - the Registry controller reads the Secret on every reconcile of the Registry and replaces the
//!   entry ([`KeyCache::get`] with `fresh`), so `kubectl annotate registry <name>
//!   ecr-operator.dev/reconcile-requested-at=...` after a rotation makes every user of the
//!   Registry use the new keys at once (from their next reconcile);
//! - an entry is tied to the Registry's UID, generation and `secretRef`: recreating the Registry
//!   or editing its spec never serves keys read for the old one.
//!
//! Failures (a missing Secret, a missing key) are never cached: the next reconcile reads again.
//! The keys stay in [`StaticKeys`] (`secrecy` types, a `Debug` that prints only the access key
//! ID); nothing here logs them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::backend::StaticKeys;
use crate::error::Result;

/// How long keys read from a Registry's Secret serve other reconciles: the promised bound on how
/// late a rotated key is picked up without a Registry reconcile.
pub const STATIC_KEYS_TTL: Duration = Duration::from_secs(60);

/// What an entry was read for: the Registry (its UID, else its name), its generation (its spec:
/// `auth` lives there) and the Secret it named.
#[derive(Clone, PartialEq, Eq)]
pub struct Stamp {
    pub registry: String,
    pub generation: Option<i64>,
    pub secret: (String, String),
}

struct Entry {
    stamp: Stamp,
    read_at: Instant,
    keys: StaticKeys,
}

/// Static keys by Registry (see the module docs). Concurrent reconciles of one Registry that miss
/// share one read.
pub struct KeyCache {
    ttl: Duration,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Entry>>>>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(STATIC_KEYS_TTL)
    }
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::default(),
        }
    }

    fn slot(&self, registry: &str) -> Arc<tokio::sync::Mutex<Option<Entry>>> {
        let Ok(mut map) = self.slots.lock() else {
            return Arc::default();
        };
        // Registries deleted or no longer read: drop their expired entries (a slot in use is
        // locked and kept), so the map holds only Registries read within the TTL.
        let ttl = self.ttl;
        map.retain(|k, slot| {
            k == registry
                || slot
                    .try_lock()
                    .map_or(true, |e| e.as_ref().is_some_and(|e| e.read_at.elapsed() < ttl))
        });
        map.entry(registry.to_owned()).or_default().clone()
    }

    /// The keys for `stamp`: the entry when it was read for the same stamp less than the TTL ago
    /// and `fresh` is false; otherwise `read()` (once, whatever the number of callers waiting),
    /// remembered when it succeeds.
    pub async fn get<F, Fut>(&self, stamp: &Stamp, fresh: bool, read: F) -> Result<StaticKeys>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<StaticKeys>>,
    {
        let slot = self.slot(&stamp.registry);
        let mut entry = slot.lock().await;
        if !fresh
            && let Some(e) = entry.as_ref()
            && e.stamp == *stamp
            && e.read_at.elapsed() < self.ttl
        {
            return Ok(e.keys.clone());
        }
        // The time the read *started*: a GET sent before a rotation may answer the old keys, so
        // the entry's age counts from before it, and the TTL bound holds exactly.
        let read_at = Instant::now();
        let keys = read().await?;
        *entry = Some(Entry {
            stamp: stamp.clone(),
            read_at,
            keys: keys.clone(),
        });
        Ok(keys)
    }

    /// How many Registries have an entry (for tests).
    #[cfg(test)]
    pub fn entries(&self) -> usize {
        self.slots.lock().map(|m| m.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use secrecy::{ExposeSecret, SecretString};

    use super::*;
    use crate::error::Error;

    fn keys(secret: &str) -> StaticKeys {
        StaticKeys {
            access_key_id: "AKID".into(),
            secret_access_key: SecretString::from(secret.to_owned()),
            session_token: None,
        }
    }

    fn stamp(registry: &str, generation: i64, secret: &str) -> Stamp {
        Stamp {
            registry: registry.into(),
            generation: Some(generation),
            secret: ("ecr-operator".into(), secret.into()),
        }
    }

    /// A reader that counts its calls and returns the current value of the "Secret".
    struct Reader {
        reads: AtomicUsize,
        value: Mutex<String>,
    }

    impl Reader {
        fn new(value: &str) -> Self {
            Self {
                reads: AtomicUsize::new(0),
                value: Mutex::new(value.into()),
            }
        }
        async fn read(&self) -> Result<StaticKeys> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(keys(&self.value.lock().unwrap()))
        }
        fn rotate(&self, value: &str) {
            *self.value.lock().unwrap() = value.into();
        }
        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    async fn secret_of(cache: &KeyCache, stamp: &Stamp, fresh: bool, reader: &Reader) -> String {
        let keys = cache.get(stamp, fresh, || reader.read()).await.unwrap();
        keys.secret_access_key.expose_secret().to_owned()
    }

    #[tokio::test(start_paused = true)]
    async fn one_read_serves_until_the_ttl_and_a_rotation_is_used_after_it() {
        let cache = KeyCache::default();
        let reader = Reader::new("old");
        let s = stamp("uid-a", 1, "keys");
        for _ in 0..1000 {
            assert_eq!(secret_of(&cache, &s, false, &reader).await, "old");
        }
        assert_eq!(reader.reads(), 1, "a thousand reconciles, one Secret read");
        reader.rotate("new");
        tokio::time::advance(STATIC_KEYS_TTL - Duration::from_secs(1)).await;
        assert_eq!(
            secret_of(&cache, &s, false, &reader).await,
            "old",
            "within the TTL"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(secret_of(&cache, &s, false, &reader).await, "new", "at the TTL");
        assert_eq!(reader.reads(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_read_replaces_the_entry_for_everyone() {
        let cache = KeyCache::default();
        let reader = Reader::new("old");
        let s = stamp("uid-a", 1, "keys");
        assert_eq!(secret_of(&cache, &s, false, &reader).await, "old");
        reader.rotate("new");
        // The Registry's own reconcile reads the Secret every time...
        assert_eq!(secret_of(&cache, &s, true, &reader).await, "new");
        // ...and its users get the new keys from then on, without a read of their own.
        assert_eq!(secret_of(&cache, &s, false, &reader).await, "new");
        assert_eq!(reader.reads(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_generation_secret_or_registry_reads_again() {
        let cache = KeyCache::default();
        let reader = Reader::new("v");
        for (s, reads) in [
            (stamp("uid-a", 1, "keys"), 1),
            (stamp("uid-a", 1, "keys"), 1),
            (stamp("uid-a", 2, "keys"), 2),
            (stamp("uid-a", 2, "other"), 3),
            // The Registry deleted and created again under the same name: another UID.
            (stamp("uid-b", 2, "other"), 4),
        ] {
            secret_of(&cache, &s, false, &reader).await;
            assert_eq!(reader.reads(), reads);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_share_one_read_and_failures_are_not_kept() {
        let cache = KeyCache::default();
        let reader = Reader::new("v");
        let s = stamp("uid-a", 1, "keys");
        let all = futures::future::join_all((0..50).map(|_| secret_of(&cache, &s, false, &reader))).await;
        assert!(all.iter().all(|v| v == "v"));
        assert_eq!(reader.reads(), 1);

        let other = stamp("uid-c", 1, "keys");
        let failed = cache
            .get(&other, false, || async {
                Err::<StaticKeys, _>(Error::InvalidSpec("no accessKeyId key".into()))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(secret_of(&cache, &other, false, &reader).await, "v");
        assert_eq!(reader.reads(), 2, "the failure was not remembered");
    }

    #[tokio::test(start_paused = true)]
    async fn entries_of_registries_no_longer_read_are_dropped_after_the_ttl() {
        let cache = KeyCache::default();
        let reader = Reader::new("v");
        for i in 0..10 {
            secret_of(&cache, &stamp(&format!("uid-{i}"), 1, "keys"), false, &reader).await;
        }
        assert_eq!(cache.entries(), 10);
        tokio::time::advance(STATIC_KEYS_TTL).await;
        secret_of(&cache, &stamp("uid-0", 1, "keys"), false, &reader).await;
        assert_eq!(cache.entries(), 1);
    }
}
