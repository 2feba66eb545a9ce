//! The preview with protection: what each of the user's rules would do, less the images this
//! cluster uses, which are counted as kept, with the workloads that use them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use crate::api::v1alpha1::{LifecycleRule, RulePreview};
use crate::lifecycle::evaluate::{self, Image};

/// Digests in use per ECR repository, with the workloads using each.
pub type InUse = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// How many workloads a rule's preview names.
pub const NAMED: usize = 3;

fn example(repo: &str, image: &Image) -> String {
    match image.tags.first() {
        Some(tag) => format!("{repo}:{tag}"),
        None => format!("{repo}@{}", image.digest),
    }
}

/// Pure: `preview` is [`crate::decide::lifecycle_policy::preview`] of `rules` over `images`;
/// per rule, the images it would expire or archive that are in use move from `expiring` /
/// `transitioning` (and the examples) to `keptInUse`, and up to [`NAMED`] of their workloads are
/// named in `inUseBy`.
pub fn annotate(
    preview: &mut [RulePreview],
    rules: &[LifecycleRule],
    images: &[(String, Image)],
    in_use: &InUse,
    now: SystemTime,
) {
    let mut by_repo: BTreeMap<&str, Vec<Image>> = BTreeMap::new();
    for (repo, img) in images {
        by_repo.entry(repo.as_str()).or_default().push(img.clone());
    }
    let mut workloads: Vec<BTreeSet<String>> = vec![BTreeSet::new(); preview.len()];
    for (repo, imgs) in by_repo {
        let Some(used) = in_use.get(repo) else {
            continue;
        };
        for (i, o) in evaluate::evaluate(rules, &imgs, now).into_iter().enumerate() {
            let Some(p) = preview.get_mut(i) else {
                continue;
            };
            for (idx, expired) in o
                .expired
                .iter()
                .map(|i| (i, true))
                .chain(o.transitioned.iter().map(|i| (i, false)))
            {
                let Some(names) = used.get(&imgs[*idx].digest) else {
                    continue;
                };
                p.kept_in_use += 1;
                if expired {
                    p.expiring -= 1;
                } else {
                    p.transitioning -= 1;
                }
                let shown = example(repo, &imgs[*idx]);
                p.examples.retain(|e| *e != shown);
                workloads[i].extend(names.iter().cloned());
            }
        }
    }
    for (p, names) in preview.iter_mut().zip(workloads) {
        p.in_use_by = names.into_iter().take(NAMED).collect();
    }
}

/// Pure: `images` as protection leaves them: each image in use carries a protection tag (the one
/// it has or will get), so evaluating the protected policy over them keeps it, as ECR will.
pub fn as_protected(images: &[(String, Image)], in_use: &InUse) -> Vec<(String, Image)> {
    images
        .iter()
        .map(|(repo, img)| {
            let mut img = img.clone();
            let used = in_use.get(repo).is_some_and(|u| u.contains_key(&img.digest));
            if used && !img.tags.iter().any(|t| super::is_mark(t)) {
                img.tags.push(format!("{}preview", super::MARK_PREFIX));
            }
            (repo.clone(), img)
        })
        .collect()
}

/// Pure: the preview's bytes and savings (`crate::decide::insight::reclaim`) of the protected
/// policy `protected` (the user's `rules` after the protection rules), over the images as
/// protection leaves them: an image kept because it is in use reclaims nothing.
pub fn reclaim(
    preview: &mut [RulePreview],
    protected: &[LifecycleRule],
    images: &[(String, Image)],
    in_use: &InUse,
    now: SystemTime,
    prices: &BTreeMap<String, crate::decide::insight::Prices>,
) {
    let extra = protected.len().saturating_sub(preview.len());
    let mut scratch = vec![RulePreview::default(); protected.len()];
    crate::decide::insight::reclaim(
        protected,
        &as_protected(images, in_use),
        now,
        prices,
        &mut scratch,
    );
    for (p, s) in preview.iter_mut().zip(scratch.into_iter().skip(extra)) {
        p.expiring_bytes = s.expiring_bytes;
        p.transitioning_bytes = s.transitioning_bytes;
        p.estimated_monthly_savings_usd = s.estimated_monthly_savings_usd;
    }
}
