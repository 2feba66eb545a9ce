//! What a repository holds: its size, estimated storage cost and the scan findings of its newest
//! image (`Repository.status.insight`), and the storage prices a Registry estimates with
//! (`Registry.spec.pricing`). See docs/insight.md for the exact meaning of every number.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A price in US dollars: a non-negative decimal with at most 6 fractional digits.
pub const PRICE_PATTERN: &str = r"^[0-9]{1,6}(\.[0-9]{1,6})?$";

/// Storage prices used for the estimated monthly cost of this registry's repositories. Both
/// default to $0.10 per GB-month, the published price in the regions documented in
/// docs/insight.md. An estimate, not a bill.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StoragePricing {
    /// US dollars per GB-month (GB = 2^30 bytes) of standard storage, such as `"0.10"`: a
    /// non-negative decimal with at most 6 fractional digits. Defaults to `"0.10"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{1,6}(\.[0-9]{1,6})?$"))]
    pub standard_per_gb_month: Option<String>,

    /// US dollars per GB-month (GB = 2^30 bytes) of archive storage, such as `"0.07"`: a
    /// non-negative decimal with at most 6 fractional digits. Defaults to `"0.10"` (archive
    /// storage costs the same as standard for the first 150 TB a month).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{1,6}(\.[0-9]{1,6})?$"))]
    pub archive_per_gb_month: Option<String>,
}

/// What the repository holds, read with DescribeImages on the drift interval (never on every
/// reconcile), a bounded number of pages per pass.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryInsight {
    /// Images (manifests, one per digest) in the repository at the last complete listing,
    /// archived ones included.
    #[serde(default)]
    pub image_count: i64,

    /// Sum of DescribeImages `imageSizeInBytes` over those images. Layers shared between images
    /// are counted once per image, so this is at least what ECR bills, never less.
    #[serde(default)]
    pub size_bytes: i64,

    /// Images in the archive storage class (`imageStatus: ARCHIVED`), included in `imageCount`.
    #[serde(default)]
    pub archived_count: i64,

    /// Sum of `imageSizeInBytes` of the archived images, included in `sizeBytes`.
    #[serde(default)]
    pub archived_size_bytes: i64,

    /// `sizeBytes` in a readable unit (KiB, MiB, GiB, TiB), for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,

    /// Estimated storage cost per month in US dollars, 4 decimals: (standard bytes / 2^30) ×
    /// the standard price + (archived bytes / 2^30) × the archive price (docs/insight.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_monthly_cost_usd: Option<String>,

    /// When the last complete listing finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<Time>,

    /// DescribeImages pages the last complete listing took, over one or more passes.
    #[serde(default)]
    pub pages: i32,

    /// The newest image (by push time) and what its scan found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_image: Option<ImageFindings>,

    /// The worst severity among the newest image's findings (`CRITICAL`, `HIGH`, `MEDIUM`,
    /// `LOW`, `INFORMATIONAL`, `UNDEFINED`), `NONE` for a completed scan without findings, or
    /// `UNSCANNED`: for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_severity: Option<String>,

    /// A listing in progress (more pages than one pass reads): where the next pass resumes and
    /// what it has counted so far. The numbers above are the last complete listing's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<InsightProgress>,
}

/// A DescribeImages listing not finished in one pass.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InsightProgress {
    /// ECR's `nextToken` for the next page.
    pub next_token: String,
    /// Pages read so far.
    #[serde(default)]
    pub pages: i32,
    /// Images counted so far.
    #[serde(default)]
    pub image_count: i64,
    /// Bytes counted so far.
    #[serde(default)]
    pub size_bytes: i64,
    /// Archived images counted so far.
    #[serde(default)]
    pub archived_count: i64,
    /// Archived bytes counted so far.
    #[serde(default)]
    pub archived_size_bytes: i64,
    /// The newest image seen so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_image: Option<ImageFindings>,
}

/// One image and what its scan found, as DescribeImages reports it (`imageScanStatus`,
/// `imageScanFindingsSummary`, for basic and enhanced scanning alike).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageFindings {
    /// The image's manifest digest, `sha256:...`.
    pub digest: String,
    /// Its tags (at most 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// When it was pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_at: Option<Time>,
    /// ECR's scan status (`COMPLETE`, `IN_PROGRESS`, `FAILED`, `ACTIVE`, ...); absent when the
    /// image was never scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_status: Option<String>,
    /// When the scan completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_completed_at: Option<Time>,
    /// Finding counts by severity, as ECR names them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub finding_counts: BTreeMap<String, i64>,
}
