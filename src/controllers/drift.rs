//! The drift-check budget per Registry: which objects are re-checked periodically, what their
//! checks cost in ECR calls per second, and how far their intervals must stretch so the checks
//! fit the background share of the ECR rate limit (`--ecr-background-share`). The pure parts are
//! in [`crate::decide::drift`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::api::interval::Interval;
use crate::decide::drift::{next_slot, stretch};
use crate::metrics::Metrics;

/// What one drift check of an object costs, and where.
pub struct Drift {
    /// The Registry its ECR calls go to.
    pub registry: String,
    /// ECR calls per check.
    pub calls: u32,
    /// `spec.interval`.
    pub interval: Option<Interval>,
}

/// The drift checks of every Registry (see the module documentation).
pub struct DriftBudget {
    rate: u32,
    share: f64,
    default_interval: Duration,
    metrics: Arc<Metrics>,
    registries: Mutex<HashMap<String, Load>>,
}

/// One Registry's periodic checks.
#[derive(Default)]
struct Load {
    /// Calls per second each object's checks need at its asked interval, by object key.
    objects: HashMap<String, f64>,
    /// Their sum.
    demand: f64,
    /// The effective default interval last logged.
    logged: Option<Duration>,
}

impl DriftBudget {
    pub fn new(rate: u32, share: f64, default_interval: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            rate,
            share,
            default_interval,
            metrics,
            registries: Mutex::default(),
        }
    }

    /// Records that object `key` on `registry` is checked every `interval` at `calls` ECR calls a
    /// check, and returns the delay until its next check: its slot in the (stretched) interval,
    /// at least `min_gap` away.
    pub fn schedule(
        &self,
        registry: &str,
        key: &str,
        interval: Duration,
        calls: u32,
        min_gap: Duration,
    ) -> Duration {
        let factor = self.register(registry, key, interval, calls);
        let stretched = interval.mul_f64(factor);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        next_slot(now, stretched, crate::jitter::unit_fraction(key), min_gap)
    }

    /// Records that object `key` on `registry` is checked every `interval` at `calls` ECR calls a
    /// check, without scheduling it.
    pub fn expect(&self, registry: &str, key: &str, interval: Duration, calls: u32) {
        self.register(registry, key, interval, calls);
    }

    /// The interval objects on the default interval get on `registry` now.
    pub fn effective_interval(&self, registry: &str) -> Duration {
        let map = self.registries.lock().unwrap_or_else(PoisonError::into_inner);
        let demand = map.get(registry).map_or(0.0, |l| l.demand);
        self.default_interval
            .mul_f64(stretch(demand, self.rate, self.share))
    }

    /// Forgets a deleted object.
    pub fn forget(&self, key: &str) {
        let mut map = self.registries.lock().unwrap_or_else(PoisonError::into_inner);
        for load in map.values_mut() {
            if let Some(old) = load.objects.remove(key) {
                load.demand -= old;
            }
        }
    }

    /// Records the object's checks; returns the stretch factor of its Registry.
    fn register(&self, registry: &str, key: &str, interval: Duration, calls: u32) -> f64 {
        let per_second = f64::from(calls) / interval.as_secs_f64().max(1.0);
        let mut map = self.registries.lock().unwrap_or_else(PoisonError::into_inner);
        // An object that moved to another Registry leaves the old one.
        for (name, load) in map.iter_mut() {
            if name != registry
                && let Some(old) = load.objects.remove(key)
            {
                load.demand -= old;
            }
        }
        let load = map.entry(registry.to_owned()).or_default();
        if let Some(old) = load.objects.insert(key.to_owned(), per_second) {
            load.demand -= old;
        }
        load.demand = (load.demand + per_second).max(0.0);
        let factor = stretch(load.demand, self.rate, self.share);
        let effective = Duration::from_secs(self.default_interval.mul_f64(factor).as_secs());
        self.metrics
            .drift_schedule(registry, effective, load.objects.len());
        let changed = load.logged.is_none_or(|last| {
            let (a, b) = (last.as_secs_f64(), effective.as_secs_f64());
            (a - b).abs() >= 0.1 * a.max(1.0)
        });
        if changed {
            load.logged = Some(effective);
            tracing::info!(
                registry,
                objects = load.objects.len(),
                calls_per_second = format!("{:.2}", load.demand),
                background_share = self.share,
                effective_interval = %humantime(effective),
                default_interval = %humantime(self.default_interval),
                "drift-check schedule: {}",
                if factor > 1.0 {
                    "the background share of the ECR rate limit cannot check every object once per interval, so the interval stretches"
                } else {
                    "every object is checked once per interval"
                }
            );
        }
        factor
    }
}

/// `1h2m3s`: whole seconds in the `spec.interval` grammar.
pub fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, 0) => format!("{h}h{m}m"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_stretches_with_the_objects_of_a_registry() {
        let budget = DriftBudget::new(20, 0.5, Duration::from_secs(600), Arc::new(Metrics::default()));
        let ten_minutes = Duration::from_secs(600);
        for i in 0..6000 {
            budget.schedule("a", &format!("uid-{i}"), ten_minutes, 1, Duration::ZERO);
        }
        // 6,000 checks in 10 minutes is exactly the 10 calls/s of half of 20.
        assert_eq!(budget.effective_interval("a"), ten_minutes);
        for i in 6000..12_000 {
            budget.schedule("a", &format!("uid-{i}"), ten_minutes, 1, Duration::ZERO);
        }
        assert_eq!(budget.effective_interval("a"), Duration::from_secs(1200));
        // Another Registry has its own budget; one moved there leaves the first.
        budget.schedule("b", "uid-0", ten_minutes, 1, Duration::ZERO);
        assert_eq!(budget.effective_interval("b"), ten_minutes);
        assert_eq!(budget.effective_interval("a"), Duration::from_millis(1_199_900));
        for i in 1..6000 {
            budget.forget(&format!("uid-{i}"));
        }
        assert_eq!(budget.effective_interval("a"), ten_minutes);
        // A check costing two calls counts twice, and the delay is within the stretched interval.
        let delay = budget.schedule("c", "x", ten_minutes, 2, Duration::ZERO);
        assert!(delay < ten_minutes, "{delay:?}");
    }

    #[test]
    fn objects_counted_before_the_first_reconcile_stretch_the_first_slots() {
        let budget = DriftBudget::new(20, 0.5, Duration::from_secs(600), Arc::new(Metrics::default()));
        let ten_minutes = Duration::from_secs(600);
        for i in 0..12_000 {
            budget.expect("a", &format!("uid-{i}"), ten_minutes, 1);
        }
        assert_eq!(budget.effective_interval("a"), Duration::from_secs(1200));
        // The first object scheduled (already counted) is not counted twice, and its slot may lie
        // anywhere in the stretched 20 minutes.
        let delays: Vec<Duration> = (0..200)
            .map(|i| budget.schedule("a", &format!("uid-{i}"), ten_minutes, 1, Duration::ZERO))
            .collect();
        assert_eq!(budget.effective_interval("a"), Duration::from_secs(1200));
        assert!(delays.iter().all(|d| *d < Duration::from_secs(1200)));
        assert!(
            delays.iter().any(|d| *d > ten_minutes),
            "some slots lie beyond the unstretched interval"
        );
    }

    #[test]
    fn humantime_table() {
        for (secs, text) in [
            (10, "10s"),
            (600, "10m"),
            (1000, "16m40s"),
            (3600, "1h"),
            (5400, "1h30m"),
            (3661, "1h1m1s"),
        ] {
            assert_eq!(humantime(Duration::from_secs(secs)), text);
        }
    }
}
