//! What a repository holds (`Repository.status.insight`): when to read it, how the pages of a
//! DescribeImages listing add up across passes, the estimated monthly cost, and the worst
//! severity of the newest image's findings. No I/O (see [`crate::decide`]); the reads are in
//! `controllers/repository/insight.rs`. The meaning of each number: docs/insight.md.

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::v1alpha1::{
    ImageFindings, InsightProgress, LifecycleRule, RepositoryInsight, RulePreview, StoragePricing,
};
use crate::backend::ImageInfo;
use crate::backend::lanes::Lane;
use crate::lifecycle::evaluate;

/// Severities as ECR names them, worst first. `worst_severity` is one of these, `NONE` or
/// `UNSCANNED`.
pub const SEVERITIES: [&str; 6] = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"];

/// Bytes in a GB as ECR storage is priced here (2^30).
pub const GB: u128 = 1 << 30;

/// Tags kept per image in status.
const MAX_TAGS: usize = 10;

/// Storage prices in micro-dollars (10^-6 USD) per GB-month.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prices {
    pub standard: u64,
    pub archive: u64,
}

/// The prices the operator defaults to, in micro-dollars per GB-month: $0.10 for standard and
/// for archive storage, the published price in the regions checked (archive storage costs the
/// same as standard up to 150 TB a month, $0.07 above, which this estimate ignores). The
/// operator knows no region with another price; set `spec.pricing` where yours differs.
/// docs/insight.md holds the same statement.
pub fn default_prices(_region: &str) -> Prices {
    Prices {
        standard: 100_000,
        archive: 100_000,
    }
}

/// Pure: a price (`"0.10"`) in micro-dollars; refused when it is negative, not a decimal or has
/// more than 6 fractional digits (the CRD's pattern refuses the same at admission).
pub fn parse_price(text: &str) -> Result<u64, String> {
    let bad = || format!("price {text:?} is not a non-negative decimal with at most 6 fractional digits");
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || whole.len() > 6
        || frac.len() > 6
        || (text.contains('.') && frac.is_empty())
        || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().map_err(|_| bad())?
    };
    Ok(whole * 1_000_000 + frac)
}

/// Pure: the prices for a Registry: its `spec.pricing` where set, else the region's default.
pub fn prices(region: &str, pricing: Option<&StoragePricing>) -> Result<Prices, String> {
    let defaults = default_prices(region);
    let pick = |set: Option<&String>, default: u64| set.map_or(Ok(default), |p| parse_price(p));
    Ok(Prices {
        standard: pick(
            pricing.and_then(|p| p.standard_per_gb_month.as_ref()),
            defaults.standard,
        )?,
        archive: pick(
            pricing.and_then(|p| p.archive_per_gb_month.as_ref()),
            defaults.archive,
        )?,
    })
}

/// Pure: the estimated monthly cost in micro-dollars of `standard` bytes in standard storage and
/// `archived` bytes in archive storage: bytes / 2^30 × price, each rounded down to a micro-dollar.
pub fn monthly_cost(standard: u64, archived: u64, prices: Prices) -> u64 {
    let part = |bytes: u64, price: u64| (u128::from(bytes) * u128::from(price) / GB) as u64;
    part(standard, prices.standard) + part(archived, prices.archive)
}

/// Pure: micro-dollars as US dollars with 4 decimals, rounded half up (`"0.0123"`).
pub fn usd(micro: u64) -> String {
    let cents100 = (micro + 50) / 100; // 10^-4 USD
    format!("{}.{:04}", cents100 / 10_000, cents100 % 10_000)
}

/// Pure: bytes in a readable binary unit with one decimal (`"1.5 GiB"`, `"512 B"`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Pure: whether this reconcile reads the repository's images: on its drift re-check (the
/// background lane), when status has none yet, while a listing is in progress only on those
/// same occasions, and on a reconcile-now request not yet handled. Never because of a spec
/// change alone or any other user-lane reconcile.
pub fn due(lane: Lane, insight: Option<&RepositoryInsight>, requested: bool) -> bool {
    lane == Lane::Background || insight.is_none() || requested
}

/// Pure: where this pass starts: the listing in progress, or a new one.
pub fn start(prev: Option<&RepositoryInsight>) -> InsightProgress {
    prev.and_then(|i| i.progress.clone()).unwrap_or_default()
}

fn time(t: Option<SystemTime>) -> Option<Time> {
    t.and_then(crate::status::stored_time)
}

/// Pure: one image's findings as status shows them.
pub fn findings(image: &ImageInfo) -> ImageFindings {
    let scan = image.scan.as_ref();
    ImageFindings {
        digest: image.digest.clone(),
        tags: image.tags.iter().take(MAX_TAGS).cloned().collect(),
        pushed_at: time(image.pushed_at),
        scan_status: scan.and_then(|s| s.status.clone()),
        scan_completed_at: time(scan.and_then(|s| s.completed_at)),
        finding_counts: scan.map(|s| s.counts.clone()).unwrap_or_default(),
    }
}

/// Pure: a page of DescribeImages added to the listing in progress; `next` is ECR's
/// `nextToken` after it (`None`: this was the last page).
pub fn fold(mut progress: InsightProgress, page: &[ImageInfo], next: Option<String>) -> InsightProgress {
    progress.pages += 1;
    for image in page {
        let size = i64::try_from(image.size_bytes.unwrap_or(0)).unwrap_or(i64::MAX);
        progress.image_count += 1;
        progress.size_bytes = progress.size_bytes.saturating_add(size);
        if image.archived {
            progress.archived_count += 1;
            progress.archived_size_bytes = progress.archived_size_bytes.saturating_add(size);
        }
        let newer = match &progress.newest_image {
            None => true,
            Some(n) => {
                let pushed = time(image.pushed_at);
                // Newest by push time; equal times: the greater digest, so the pick is stable.
                (pushed.as_ref().map(|t| t.0), &image.digest) > (n.pushed_at.as_ref().map(|t| t.0), &n.digest)
            }
        };
        if newer && !image.archived {
            progress.newest_image = Some(findings(image));
        }
    }
    progress.next_token = next.unwrap_or_default();
    progress
}

/// Pure: the worst severity with a finding, `NONE` for a completed scan without findings,
/// `UNSCANNED` when there is no completed scan.
pub fn worst_severity(image: &ImageFindings) -> String {
    if let Some(s) = SEVERITIES
        .iter()
        .find(|s| image.finding_counts.get(**s).is_some_and(|n| *n > 0))
    {
        return (*s).to_owned();
    }
    match image.scan_status.as_deref() {
        Some("COMPLETE" | "ACTIVE") => "NONE".to_owned(),
        _ => "UNSCANNED".to_owned(),
    }
}

/// Pure: the insight after this pass. A finished listing (`progress.next_token` empty) replaces
/// the numbers; `refreshedAt` moves only when they change, so a steady repository's status is
/// not rewritten. An unfinished one keeps the last complete numbers and records the progress.
pub fn after_pass(
    prev: Option<&RepositoryInsight>,
    progress: InsightProgress,
    prices: Prices,
    now: &Time,
) -> RepositoryInsight {
    let mut base = prev.cloned().unwrap_or_default();
    if !progress.next_token.is_empty() {
        base.progress = Some(progress);
        return base;
    }
    let standard = (progress.size_bytes - progress.archived_size_bytes).max(0) as u64;
    let archived = progress.archived_size_bytes.max(0) as u64;
    let mut next = RepositoryInsight {
        image_count: progress.image_count,
        size_bytes: progress.size_bytes,
        archived_count: progress.archived_count,
        archived_size_bytes: progress.archived_size_bytes,
        size: Some(human_size(progress.size_bytes.max(0) as u64)),
        estimated_monthly_cost_usd: Some(usd(monthly_cost(standard, archived, prices))),
        refreshed_at: None,
        pages: progress.pages,
        worst_severity: progress.newest_image.as_ref().map(worst_severity),
        newest_image: progress.newest_image,
        progress: None,
    };
    let same = prev.is_some_and(|p| {
        RepositoryInsight {
            refreshed_at: None,
            progress: None,
            ..p.clone()
        } == next
    });
    next.refreshed_at = match (same, prev.and_then(|p| p.refreshed_at.clone())) {
        (true, Some(at)) => Some(at),
        _ => Some(now.clone()),
    };
    next
}

/// Pure: adds to each rule of a LifecyclePolicy preview (`out`, from
/// [`crate::decide::lifecycle_policy::preview`] over the same rules and images) the bytes its
/// expired and transitioned images hold and the estimated monthly saving: expired bytes at the
/// price of the storage class each image is in, plus transitioned bytes at the standard price less
/// the archive price, with the prices of each repository's Registry (by ECR name; one not in
/// `prices` at the defaults). Evaluated repository by repository, as the preview is.
pub fn reclaim(
    rules: &[LifecycleRule],
    images: &[(String, evaluate::Image)],
    now: SystemTime,
    prices: &BTreeMap<String, Prices>,
    out: &mut [RulePreview],
) {
    let mut by_repo: BTreeMap<&str, Vec<evaluate::Image>> = BTreeMap::new();
    for (repo, img) in images {
        by_repo.entry(repo.as_str()).or_default().push(img.clone());
    }
    let mut savings = vec![0u64; out.len()];
    for p in out.iter_mut() {
        (p.expiring_bytes, p.transitioning_bytes) = (0, 0);
    }
    for (repo, imgs) in by_repo {
        let price = prices.get(repo).copied().unwrap_or_else(|| default_prices(""));
        let keep = Prices {
            standard: price.standard.saturating_sub(price.archive),
            archive: 0,
        };
        for (i, o) in evaluate::evaluate(rules, &imgs, now).into_iter().enumerate() {
            let (Some(p), Some(saved)) = (out.get_mut(i), savings.get_mut(i)) else {
                continue;
            };
            for img in o.expired.iter().filter_map(|idx| imgs.get(*idx)) {
                p.expiring_bytes = p.expiring_bytes.saturating_add(img.size_bytes as i64);
                *saved += if img.archived {
                    monthly_cost(0, img.size_bytes, price)
                } else {
                    monthly_cost(img.size_bytes, 0, price)
                };
            }
            for img in o.transitioned.iter().filter_map(|idx| imgs.get(*idx)) {
                p.transitioning_bytes = p.transitioning_bytes.saturating_add(img.size_bytes as i64);
                *saved += monthly_cost(img.size_bytes, 0, keep);
            }
        }
    }
    for (p, micro) in out.iter_mut().zip(savings) {
        p.estimated_monthly_savings_usd = Some(usd(micro));
    }
}

#[cfg(test)]
mod tests;
