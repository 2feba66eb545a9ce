//! What every controller shares: clients, backend, metrics, tunables, backoff, caches, events.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};

use crate::api::interval::Interval;
use crate::api::v1alpha1::Registry;
use crate::backend::RegistryBackend;
use crate::decide::drift::next_slot;
use crate::jitter::unit_fraction;
use crate::metrics::Metrics;

/// Tunables fixed at start-up.
#[derive(Clone, Debug)]
pub struct Tunables {
    /// Identifies this cluster in the ECR owner tag `<cluster-id>/<namespace>/<name>`.
    pub cluster_id: String,
    /// Drift re-check interval for objects without `spec.interval`.
    pub default_interval: Duration,
    /// Maximum concurrent reconciles per controller.
    pub concurrency: u16,
    /// Requeue while waiting for a dependency.
    pub waiting_requeue: Duration,
    /// Re-check of a Stalled object (a spec change triggers at once anyway).
    pub stalled_recheck: Duration,
    /// How long one listing of a registry's repositories serves reconciles.
    pub repository_cache_ttl: Duration,
    /// Namespaces this instance serves; `None`: all.
    pub watch_namespaces: Option<std::collections::BTreeSet<String>>,
    /// Which of the operator's own objects this instance serves (`--watch-label-selector`): every
    /// watch, cache and LIST of its kinds carries it.
    pub watch_selector: crate::shard::WatchSelector,
    /// `--ecr-rate-limit`: what drift checks are budgeted against.
    pub ecr_rate_limit: u32,
    /// `--ecr-background-share`: the part of it drift checks can count on.
    pub background_share: f64,
    /// `--insight-pages-per-pass`: DescribeImages pages one Repository reconcile reads for
    /// `status.insight` (0: never read).
    pub insight_pages_per_pass: u32,
    /// `--insight-page-size`: images per DescribeImages page (1 to 1000).
    pub insight_page_size: i32,
    /// The operator's namespace (`POD_NAMESPACE`): where ImagePolicy facts ConfigMaps live.
    pub operator_namespace: String,
}

impl Tunables {
    /// Whether objects in (or Secrets written into) `namespace` are this instance's business.
    pub fn watches(&self, namespace: &str) -> bool {
        self.watch_namespaces
            .as_ref()
            .is_none_or(|set| set.contains(namespace))
    }
}

impl Default for Tunables {
    fn default() -> Self {
        Self {
            cluster_id: "cluster".into(),
            default_interval: Duration::from_secs(600),
            concurrency: 4,
            waiting_requeue: Duration::from_secs(30),
            stalled_recheck: Duration::from_secs(3600),
            repository_cache_ttl: Duration::from_secs(60),
            watch_namespaces: None,
            watch_selector: crate::shard::WatchSelector::default(),
            ecr_rate_limit: 20,
            background_share: 0.5,
            insight_pages_per_pass: 5,
            insight_page_size: 1000,
            operator_namespace: "default".into(),
        }
    }
}

/// Everything a reconcile needs.
pub struct Context<B> {
    pub client: Client,
    pub backend: Arc<B>,
    pub metrics: Arc<Metrics>,
    pub tunables: Tunables,
    pub backoff: super::backoff::ErrorBackoff,
    pub registries: Store<Registry>,
    /// Moves after each change of `registries` (see `triggers::registry_changes`).
    pub registry_changes: tokio::sync::watch::Receiver<u64>,
    /// The backend's cached reads: repository listings and ECR tokens.
    pub cache: crate::cache::Cached<B>,
    /// Only the Secrets this operator manages (label-selected watch).
    pub managed_secrets: Store<Secret>,
    /// Every Namespace's metadata, fed by the ClusterPullSecret controller's Namespace watch
    /// (never ready when that controller does not run, and then never read).
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// One event recorder per controller.
    pub events: super::events::Events,
    /// `/readyz`: each controller marks whether its watch has listed its kind.
    pub readiness: crate::server::Readiness,
    /// The undecodable objects already reported.
    pub quarantine: super::quarantine::Quarantine,
    /// Static AWS keys read from Registries' Secrets, shared for a short while
    /// (`cache::static_keys::STATIC_KEYS_TTL`).
    pub static_keys: crate::cache::static_keys::KeyCache,
    /// Tenant sessions: the STS credentials each ServiceAccount got for its role.
    pub sessions: crate::cache::sessions::Sessions,
    /// Drift checks per Registry, and the interval they stretch to.
    pub drift: super::drift::DriftBudget,
    /// The objects this process has reconciled (by controller and key): a Background reconcile
    /// of one it has not is resumed at its slot instead of checked at once.
    pub seen: std::sync::Mutex<std::collections::HashSet<(&'static str, String)>>,
    /// Protection of images in use: the inventory and the grace periods running.
    pub protection: super::protection::State,
}

impl<B: RegistryBackend> Context<B> {
    /// `ecr-operator/<controller>`.
    pub fn field_manager(&self, controller: &str) -> String {
        format!("{}/{controller}", crate::api::OPERATOR_NAME)
    }

    /// The drift re-check delay after a check: until the object's next slot of `spec.interval`
    /// or the default (`decide::drift::next_slot`: evenly spread, the same in every process),
    /// at least half an interval away.
    pub fn interval(&self, spec_interval: Option<&Interval>, key: &str) -> Duration {
        // Admission and the decoder hold every interval within its documented range, so nothing
        // is clamped here.
        let base = spec_interval.map_or(self.tunables.default_interval, Interval::duration);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        next_slot(now, base, unit_fraction(key), base / 2)
    }

    /// Like [`Context::interval`] for an object whose drift checks cost `calls` ECR calls on
    /// `registry`: the interval stretches when the Registry's checks do not fit the background
    /// share of the ECR budget ([`super::drift::DriftBudget`]). `min_gap` is half the interval
    /// after a check, zero when resuming a schedule.
    pub fn drift_delay(
        &self,
        spec_interval: Option<&Interval>,
        registry: &str,
        key: &str,
        calls: u32,
        min_gap: bool,
    ) -> Duration {
        let base = spec_interval.map_or(self.tunables.default_interval, Interval::duration);
        let gap = if min_gap { base / 2 } else { Duration::ZERO };
        self.drift.schedule(registry, key, base, calls, gap)
    }

    /// Counts the drift checks of an object in its Registry's budget without scheduling it
    /// (the whole store, before the first reconcile of a controller with drift checks).
    pub fn drift_expect(&self, spec_interval: Option<&Interval>, registry: &str, key: &str, calls: u32) {
        let base = spec_interval.map_or(self.tunables.default_interval, Interval::duration);
        self.drift.expect(registry, key, base, calls);
    }

    /// Whether this process reconciles the object for the first time (and records that it has).
    pub fn first_sight(&self, controller: &'static str, key: &str) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((controller, key.to_owned()))
    }

    /// Forgets a deleted object.
    pub fn forget(&self, controller: &'static str, key: &str) {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(controller, key.to_owned()));
        self.drift.forget(key);
    }
}

/// The stable key of an object for backoff and jitter: its UID, else its name.
pub fn object_key<K: kube::Resource>(obj: &K) -> String {
    obj.meta().uid.clone().unwrap_or_else(|| obj.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_namespaces_limit_what_is_served() {
        let all = Tunables::default();
        let some = Tunables {
            watch_namespaces: Some(["team-a".to_owned(), "team-b".to_owned()].into()),
            ..Tunables::default()
        };
        for (tunables, namespace, expected) in [
            (&all, "anything", true),
            (&some, "team-a", true),
            (&some, "team-b", true),
            (&some, "team-c", false),
            (&some, "", false),
        ] {
            assert_eq!(tunables.watches(namespace), expected, "{namespace}");
        }
    }
}
