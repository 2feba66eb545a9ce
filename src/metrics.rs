//! Prometheus metrics (prometheus-client). Every label value comes from a closed set: controller
//! names, ECR operation names, outcome and reason identifiers. Never object names or messages.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    controller: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLabels {
    lane: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    operation: &'static str,
    outcome: &'static str,
}

/// The operator's metrics, registered under the `ecr_operator` prefix.
pub struct Metrics {
    registry: Registry,
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ReasonLabels, Counter>,
    reconcile_duration: Family<ControllerLabels, Histogram>,
    backend_requests: Family<OutcomeLabels, Counter>,
    backend_duration: Family<OperationLabels, Histogram>,
    lane_calls: Family<LaneLabels, Counter>,
    lane_wait: Family<LaneLabels, Histogram>,
    drift_interval: Family<RegistryLabels, Gauge>,
    drift_objects: Family<RegistryLabels, Gauge>,
    leader: Gauge,
    token_fetches: Counter,
    secret_writes: Family<ControllerLabels, Counter>,
    token_expiry: Family<RegistryLabels, Gauge>,
    cached_secrets: Gauge,
    protected_images: Family<RepositoryLabels, Gauge>,
    inventory_objects: Gauge,
    inventory_references: Gauge,
    insight: crate::metrics_insight::InsightMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepositoryLabels {
    registry: String,
    repository: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistryLabels {
    registry: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ecr_operator");
        let reconcile_total = Family::<ResultLabels, Counter>::default();
        let reconcile_errors = Family::<ReasonLabels, Counter>::default();
        let reconcile_duration = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let backend_requests = Family::<OutcomeLabels, Counter>::default();
        let backend_duration = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 12))
        });
        let lane_calls = Family::<LaneLabels, Counter>::default();
        let lane_wait = Family::<LaneLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 4.0, 10))
        });
        let drift_interval = Family::<RegistryLabels, Gauge>::default();
        let drift_objects = Family::<RegistryLabels, Gauge>::default();
        let leader = Gauge::default();
        let token_fetches = Counter::default();
        let secret_writes = Family::<ControllerLabels, Counter>::default();
        let token_expiry = Family::<RegistryLabels, Gauge>::default();
        let cached_secrets = Gauge::default();
        let protected_images = Family::<RepositoryLabels, Gauge>::default();
        let inventory_objects = Gauge::default();
        let inventory_references = Gauge::default();
        let protection = registry.sub_registry_with_prefix("protection");
        protection.register(
            "images",
            "Images protected from lifecycle expiry because this cluster uses them (or did within the grace period), by Registry and ECR repository",
            protected_images.clone(),
        );
        protection.register(
            "inventory_objects",
            "Objects (Pods and workloads) in the inventory of images in use",
            inventory_objects.clone(),
        );
        protection.register(
            "inventory_references",
            "Image references held by the inventory of images in use",
            inventory_references.clone(),
        );
        let pull = registry.sub_registry_with_prefix("pull_secret");
        pull.register(
            "token_fetches",
            "ECR GetAuthorizationToken calls made for pull secrets",
            token_fetches.clone(),
        );
        pull.register(
            "secret_writes",
            "Secret writes by controller",
            secret_writes.clone(),
        );
        pull.register(
            "expiry_timestamp_seconds",
            "When the token served for a Registry expires (Unix seconds)",
            token_expiry.clone(),
        );
        pull.register(
            "cached_secrets",
            "Secrets in the operator's cache (only Secrets it manages)",
            cached_secrets.clone(),
        );
        registry.register(
            "reconcile",
            "Reconciles by controller and result",
            reconcile_total.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles by controller and reason",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration by controller",
            reconcile_duration.clone(),
        );
        let backend = registry.sub_registry_with_prefix("backend");
        backend.register(
            "requests",
            "ECR API calls by operation and outcome",
            backend_requests.clone(),
        );
        backend.register(
            "request_duration_seconds",
            "ECR API call duration by operation",
            backend_duration.clone(),
        );
        backend.register(
            "lane_calls",
            "ECR API calls by lane (user: new objects, spec changes, deletions, requested reconciles; background: drift checks)",
            lane_calls.clone(),
        );
        backend.register(
            "lane_wait_seconds",
            "Time an ECR call waited for the rate limit, by lane",
            lane_wait.clone(),
        );
        let drift = registry.sub_registry_with_prefix("drift");
        drift.register(
            "interval_seconds",
            "Effective drift-check interval of objects on the default interval, per Registry (stretched when the background share of the ECR budget cannot check each object once per interval)",
            drift_interval.clone(),
        );
        drift.register(
            "objects",
            "Objects with periodic drift checks, per Registry",
            drift_objects.clone(),
        );
        registry.register(
            "leader",
            "1 while this process holds the leader lease",
            leader.clone(),
        );
        let build_info = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        build_info
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        registry.register("build_info", "Build information", build_info);
        let insight = crate::metrics_insight::InsightMetrics::register(&mut registry);
        Self {
            registry,
            reconcile_total,
            reconcile_errors,
            reconcile_duration,
            backend_requests,
            backend_duration,
            lane_calls,
            lane_wait,
            drift_interval,
            drift_objects,
            leader,
            token_fetches,
            secret_writes,
            token_expiry,
            cached_secrets,
            protected_images,
            inventory_objects,
            inventory_references,
            insight,
        }
    }
}

impl Metrics {
    /// The per-Repository gauges of `status.insight` (docs/metrics.md).
    pub fn insight(&self) -> &crate::metrics_insight::InsightMetrics {
        &self.insight
    }

    /// One finished reconcile.
    pub fn reconciled(
        &self,
        controller: &'static str,
        duration: Duration,
        error_reason: Option<&'static str>,
    ) {
        let result = if error_reason.is_some() {
            "error"
        } else {
            "success"
        };
        self.reconcile_total
            .get_or_create(&ResultLabels { controller, result })
            .inc();
        self.reconcile_duration
            .get_or_create(&ControllerLabels { controller })
            .observe(duration.as_secs_f64());
        if let Some(reason) = error_reason {
            self.reconcile_errors
                .get_or_create(&ReasonLabels { controller, reason })
                .inc();
        }
    }

    /// One ECR call. `outcome` is `ok` or an error reason.
    pub fn backend_call(&self, operation: &'static str, outcome: &'static str, duration: Duration) {
        self.backend_requests
            .get_or_create(&OutcomeLabels { operation, outcome })
            .inc();
        self.backend_duration
            .get_or_create(&OperationLabels { operation })
            .observe(duration.as_secs_f64());
    }

    /// One ECR call let through the rate limit in `lane` after waiting `waited`.
    pub fn lane_call(&self, lane: &'static str, waited: Duration) {
        let labels = LaneLabels { lane };
        self.lane_calls.get_or_create(&labels).inc();
        self.lane_wait
            .get_or_create(&labels)
            .observe(waited.as_secs_f64());
    }

    /// The drift-check schedule of a Registry (label bounded by the number of Registries):
    /// the effective interval of its objects on the default interval, and how many it checks.
    pub fn drift_schedule(&self, registry: &str, interval: Duration, objects: usize) {
        let labels = RegistryLabels {
            registry: registry.to_owned(),
        };
        self.drift_interval
            .get_or_create(&labels)
            .set(i64::try_from(interval.as_secs()).unwrap_or(i64::MAX));
        self.drift_objects
            .get_or_create(&labels)
            .set(i64::try_from(objects).unwrap_or(i64::MAX));
    }

    /// One GetAuthorizationToken call for pull secrets.
    pub fn token_fetched(&self) {
        self.token_fetches.inc();
    }

    /// One Secret write.
    pub fn secret_written(&self, controller: &'static str) {
        self.secret_writes
            .get_or_create(&ControllerLabels { controller })
            .inc();
    }

    /// The expiry of the token served for a Registry (label bounded by the number of Registries).
    pub fn token_expiry(&self, registry: &str, unix_seconds: i64) {
        self.token_expiry
            .get_or_create(&RegistryLabels {
                registry: registry.to_owned(),
            })
            .set(unix_seconds);
    }

    /// Images protected in one ECR repository (label bounded by the repositories the
    /// LifecyclePolicies serve).
    pub fn protected_images(&self, registry: &str, repository: &str, n: usize) {
        self.protected_images
            .get_or_create(&RepositoryLabels {
                registry: registry.to_owned(),
                repository: repository.to_owned(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The size of the inventory of images in use.
    pub fn inventory(&self, objects: usize, references: usize) {
        self.inventory_objects
            .set(i64::try_from(objects).unwrap_or(i64::MAX));
        self.inventory_references
            .set(i64::try_from(references).unwrap_or(i64::MAX));
    }

    /// How many Secrets the operator caches.
    pub fn cached_secrets(&self, n: usize) {
        self.cached_secrets.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets the leader gauge.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_use_bounded_labels_and_the_prefix() {
        let m = Metrics::default();
        m.reconciled("repository", Duration::from_millis(20), None);
        m.reconciled("repository", Duration::from_millis(20), Some("Throttled"));
        m.backend_call("CreateRepository", "ok", Duration::from_millis(5));
        let text = m.encode();
        assert!(
            text.contains(r#"ecr_operator_reconcile_total{controller="repository",result="success"} 1"#),
            "{text}"
        );
        assert!(text.contains(
            r#"ecr_operator_reconcile_errors_total{controller="repository",reason="Throttled"} 1"#
        ));
        assert!(
            text.contains(
                r#"ecr_operator_backend_requests_total{operation="CreateRepository",outcome="ok"} 1"#
            )
        );
        assert!(text.contains("ecr_operator_build_info"));
    }
}
