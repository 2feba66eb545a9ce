//! `Repository.status.insight`: reads the repository's images with DescribeImages, at most
//! `--insight-pages-per-pass` pages per reconcile, resuming where the last pass stopped. Only on
//! the drift re-check (background lane), the first time, and on a reconcile-now request
//! ([`insight::due`]); every decision is pure in [`crate::decide::insight`].

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::Context;
use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::v1alpha1::{Registry, Repository, RepositoryInsight};
use crate::backend::{RegistryBackend, Target, lanes};
use crate::decide::insight;
use crate::error::{Error, Result};

/// The insight this reconcile publishes: read anew when due, else the stored one. A failed read
/// fails the reconcile like any other ECR read (classified: throttling retries, access denied
/// stalls); the next pass starts again from the last recorded progress.
pub async fn refresh<B: RegistryBackend>(
    repo: &Repository,
    registry: &Registry,
    ctx: &Context<B>,
    target: &Target,
    ecr_name: &str,
) -> Result<Option<RepositoryInsight>> {
    let prev = repo.status.as_ref().and_then(|s| s.insight.as_ref());
    let pages = ctx.tunables.insight_pages_per_pass;
    if pages == 0 {
        return Ok(None);
    }
    let requested = repo.annotations().get(RECONCILE_REQUESTED_AT).map(String::as_str)
        != repo
            .status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref());
    let namespace = repo.namespace().unwrap_or_default();
    if !insight::due(lanes::current(), prev, requested) {
        // The gauges follow the stored numbers too (a new process has none until it reads).
        if let Some(p) = prev.filter(|p| p.refreshed_at.is_some()) {
            ctx.metrics.insight().set(&namespace, &repo.name_any(), p);
        }
        return Ok(prev.cloned());
    }
    let prices = insight::prices(&registry.spec.region, registry.spec.pricing.as_ref())
        .map_err(|message| Error::InvalidSpec(format!("Registry spec.pricing: {message}")))?;
    let mut progress = insight::start(prev);
    for _ in 0..pages {
        let token = Some(progress.next_token.clone()).filter(|t| !t.is_empty());
        let (page, next) = ctx
            .backend
            .describe_images_page(target, ecr_name, token, ctx.tunables.insight_page_size)
            .await
            .map_err(Error::backend("DescribeImages"))?;
        progress = insight::fold(progress, &page, next);
        if progress.next_token.is_empty() {
            break;
        }
    }
    let now = crate::status::stored_time(std::time::SystemTime::now())
        .unwrap_or(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    let next = insight::after_pass(prev, progress, prices, &now);
    if next.refreshed_at.is_some() {
        ctx.metrics.insight().set(&namespace, &repo.name_any(), &next);
    }
    Ok(Some(next))
}
