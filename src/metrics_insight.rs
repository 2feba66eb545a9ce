//! The gauges of what repositories hold (`Repository.status.insight`). Unlike the rest of the
//! metrics these carry object names: `namespace` and `repository` (the Repository object) are
//! bounded by the Repositories the user created, and `severity` by ECR's six severities. A
//! deleted Repository's series are removed.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::api::v1alpha1::RepositoryInsight;
use crate::decide::insight::SEVERITIES;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepositoryLabels {
    namespace: String,
    repository: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SeverityLabels {
    namespace: String,
    repository: String,
    severity: &'static str,
}

/// `ecr_operator_repository_{images,stored_bytes,archived_images,archived_bytes,newest_image_findings}`.
#[derive(Default)]
pub struct InsightMetrics {
    images: Family<RepositoryLabels, Gauge>,
    bytes: Family<RepositoryLabels, Gauge>,
    archived_images: Family<RepositoryLabels, Gauge>,
    archived_bytes: Family<RepositoryLabels, Gauge>,
    findings: Family<SeverityLabels, Gauge>,
}

impl InsightMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let sub = registry.sub_registry_with_prefix("repository");
        sub.register(
            "images",
            "Images in the repository at its last complete listing",
            m.images.clone(),
        );
        sub.register(
            "stored_bytes",
            "Sum of imageSizeInBytes of the repository's images (shared layers counted per image)",
            m.bytes.clone(),
        );
        sub.register(
            "archived_images",
            "Images in the archive storage class",
            m.archived_images.clone(),
        );
        sub.register(
            "archived_bytes",
            "Sum of imageSizeInBytes of archived images",
            m.archived_bytes.clone(),
        );
        sub.register(
            "newest_image_findings",
            "Scan findings of the repository's newest image, by severity",
            m.findings.clone(),
        );
        m
    }

    /// Sets the gauges of one Repository from its status.
    pub fn set(&self, namespace: &str, repository: &str, insight: &RepositoryInsight) {
        let l = RepositoryLabels {
            namespace: namespace.to_owned(),
            repository: repository.to_owned(),
        };
        self.images.get_or_create(&l).set(insight.image_count);
        self.bytes.get_or_create(&l).set(insight.size_bytes);
        self.archived_images.get_or_create(&l).set(insight.archived_count);
        self.archived_bytes
            .get_or_create(&l)
            .set(insight.archived_size_bytes);
        for severity in SEVERITIES {
            let count = insight
                .newest_image
                .as_ref()
                .and_then(|i| i.finding_counts.get(severity).copied())
                .unwrap_or(0);
            self.findings
                .get_or_create(&severity_labels(&l, severity))
                .set(count);
        }
    }

    /// Removes the series of a deleted Repository.
    pub fn forget(&self, namespace: &str, repository: &str) {
        let l = RepositoryLabels {
            namespace: namespace.to_owned(),
            repository: repository.to_owned(),
        };
        for family in [
            &self.images,
            &self.bytes,
            &self.archived_images,
            &self.archived_bytes,
        ] {
            family.remove(&l);
        }
        for severity in SEVERITIES {
            self.findings.remove(&severity_labels(&l, severity));
        }
    }
}

fn severity_labels(l: &RepositoryLabels, severity: &'static str) -> SeverityLabels {
    SeverityLabels {
        namespace: l.namespace.clone(),
        repository: l.repository.clone(),
        severity,
    }
}
