//! Pure decisions of lifecycle protection: images this cluster uses are never expired or
//! archived by a lifecycle policy the operator puts (docs/lifecycle-policies.md, "Images in
//! use").
//!
//! The mechanism is ECR's own: every image in use gets a protection tag of this cluster
//! ([`mark`]: `ecr-operator-keep-<cluster>-<digest hex>`, the existing manifest put again under
//! an extra tag), and every policy the operator puts starts with [`protection_rules`]: a rule of
//! the highest priority that selects the tag prefix [`MARK_PREFIX`] (every cluster's marks) and
//! expires nothing. ECR never lets a lower-priority rule expire or archive an image a higher one
//! matched, whatever the user's rules say.
//!
//! [`plan`] decides which marks to add and which to release: a mark of another cluster is never
//! touched; ours is released only after the grace period, only once the inventory is complete,
//! and, when it is the image's last tag (removing it deletes the image), only when the user's
//! rules would expire the image now anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::api::interval::Interval;
use crate::api::v1alpha1::{
    ActionType, CountType, CountUnit, LifecycleAction, LifecyclePolicySpec, LifecycleRule,
    LifecycleSelection, StorageClass, TagStatus,
};
use crate::inventory::Use;
use crate::lifecycle::evaluate::{self, Image};

/// The prefix of every protection tag, of every cluster: what the protection rule selects.
pub const MARK_PREFIX: &str = "ecr-operator-keep-";
/// The protection rule's age limit: it matches marked images and expires none of them.
pub const NEVER_DAYS: i32 = 36_500;
/// The description the protection rules carry in ECR.
pub const DESCRIPTION: &str = "ecr-operator: images in use by a cluster (protection tags); never expires";

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The default grace period after an image leaves use.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
/// The default number of previous Deployment revisions kept for a rollback.
pub const DEFAULT_ROLLBACK: usize = 2;

/// Pure: `spec.protection` with its defaults, as (grace period, rollback revisions); `None` when
/// protection is off (`enabled: false`).
pub fn settings(spec: &LifecyclePolicySpec) -> Option<(Duration, usize)> {
    let p = spec.protection.clone().unwrap_or_default();
    if p.enabled == Some(false) {
        return None;
    }
    let grace = p.grace_period.as_ref().map_or(DEFAULT_GRACE, Interval::duration);
    let rollback = p
        .rollback_revisions
        .map_or(DEFAULT_ROLLBACK, |n| usize::try_from(n).unwrap_or(0));
    Some((grace, rollback))
}

/// This cluster's part of the tag: 12 hex characters of the SHA-256 of `--cluster-id`.
pub fn cluster_token(cluster_id: &str) -> String {
    sha256_hex(cluster_id)[..12].to_owned()
}

/// This cluster's prefix: `ecr-operator-keep-<token>-`.
pub fn our_prefix(token: &str) -> String {
    format!("{MARK_PREFIX}{token}-")
}

/// The protection tag of `digest` for this cluster (at most 95 characters, ECR's tag charset).
pub fn mark(token: &str, digest: &str) -> String {
    let hex = match digest.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) => h.to_ascii_lowercase(),
        _ => sha256_hex(digest),
    };
    format!("{}{hex}", our_prefix(token))
}

/// Whether `tag` is a protection tag (of any cluster).
pub fn is_mark(tag: &str) -> bool {
    tag.starts_with(MARK_PREFIX)
}

fn protection_rule(priority: i32, class: StorageClass) -> LifecycleRule {
    let archive = class == StorageClass::Archive;
    LifecycleRule {
        rule_priority: priority,
        description: Some(DESCRIPTION.to_owned()),
        selection: LifecycleSelection {
            tag_status: TagStatus::Tagged,
            tag_prefix_list: Some(vec![MARK_PREFIX.to_owned()]),
            tag_pattern_list: None,
            storage_class: archive.then_some(StorageClass::Archive),
            count_type: if archive {
                CountType::SinceImageTransitioned
            } else {
                CountType::SinceImagePushed
            },
            count_unit: Some(CountUnit::Days),
            count_number: NEVER_DAYS,
        },
        action: LifecycleAction {
            type_: ActionType::Expire,
            target_storage_class: None,
        },
    }
}

/// The protection rules for `user`'s rules: one for the standard storage class, and one for the
/// archive class when a user rule acts there.
pub fn protection_rules(user: &[LifecycleRule]) -> Vec<LifecycleRule> {
    let archive = user
        .iter()
        .any(|r| r.selection.storage_class == Some(StorageClass::Archive));
    let mut out = vec![protection_rule(1, StorageClass::Standard)];
    if archive {
        out.push(protection_rule(2, StorageClass::Archive));
    }
    out
}

/// Whether `rule` is one of the operator's protection rules.
pub fn is_protection_rule(rule: &LifecycleRule) -> bool {
    rule.description.as_deref() == Some(DESCRIPTION)
}

/// The policy the operator puts: the protection rules at priorities 1 (and 2), then the user's
/// rules in their order, shifted up only as far as needed to make room. `Err` names why it does
/// not fit ECR's limits (50 rules, the policy length, a user rule on the same tag prefix): the
/// policy is then reported and not put, never put unprotected.
pub fn protected(user: &[LifecycleRule]) -> Result<Vec<LifecycleRule>, String> {
    let mut rules = protection_rules(user);
    let room = i32::try_from(rules.len()).unwrap_or(i32::MAX);
    let lowest = user.iter().map(|r| r.rule_priority).min().unwrap_or(room + 1);
    let shift = (room + 1 - lowest).max(0);
    rules.extend(user.iter().cloned().map(|mut r| {
        r.rule_priority = r.rule_priority.saturating_add(shift);
        r
    }));
    let problems = crate::lifecycle::validate::violations(&rules);
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(format!(
            "the protection rule for images in use does not fit in this policy ({} user rules + {room}): {}",
            user.len(),
            problems.join("; ")
        ))
    }
}

/// Pure: the images of a repository in use, by digest, with the workloads using each: a digest
/// reference (or a reported digest) counts when ECR holds that digest; a tag reference is
/// resolved through ECR to the image the tag names now (tags move). References ECR cannot
/// resolve are not in the repository and need nothing.
pub fn resolve(uses: &[Use], images: &[Image]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for u in uses {
        let found = images
            .iter()
            .find(|i| match (&u.reference.digest, &u.reference.tag) {
                (Some(d), _) => &i.digest == d,
                (None, Some(t)) => i.tags.contains(t),
                (None, None) => i.tags.iter().any(|t| t == "latest"),
            });
        if let Some(i) = found {
            out.entry(i.digest.clone())
                .or_default()
                .insert(u.workload.clone());
        }
    }
    out
}

/// What protection does to one repository.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// (digest, tag): put the image's manifest again under this tag.
    pub add: Vec<(String, String)>,
    /// (digest, tag): remove this tag of ours.
    pub release: Vec<(String, String)>,
    /// Digests whose mark is kept although no longer in use: in the grace period, or the mark is
    /// the last tag and the user's rules would not expire the image yet.
    pub held: Vec<String>,
    /// When each digest that still carries our mark left use (the grace period's start).
    pub left_use: BTreeMap<String, SystemTime>,
    /// Images marked by this cluster after the plan.
    pub protected: usize,
}

/// The inputs of [`plan`] besides the images.
#[derive(Clone, Debug)]
pub struct Settings<'a> {
    pub token: &'a str,
    /// The inventory has listed every kind: only then is anything released.
    pub complete: bool,
    pub grace: Duration,
    /// The policy as put ([`protected`]).
    pub rules: &'a [LifecycleRule],
    pub now: SystemTime,
}

/// Pure: the marks to add and release in one repository. `in_use` are the digests in use,
/// `left_use` when each marked digest was first seen out of use (kept by the caller).
pub fn plan(
    images: &[Image],
    in_use: &BTreeSet<String>,
    left_use: &BTreeMap<String, SystemTime>,
    s: &Settings<'_>,
) -> Plan {
    let prefix = our_prefix(s.token);
    let mut out = Plan::default();
    // Images whose only tags are ours, due for release: decided together below.
    let mut last_tag: Vec<usize> = Vec::new();
    for (idx, image) in images.iter().enumerate() {
        let ours: Vec<&String> = image.tags.iter().filter(|t| t.starts_with(&prefix)).collect();
        if in_use.contains(&image.digest) {
            out.protected += 1;
            // An archived image cannot be pulled (nor re-put) until it is restored, which makes
            // it standard again: it is tagged then.
            if ours.is_empty() && !image.archived {
                out.add.push((image.digest.clone(), mark(s.token, &image.digest)));
            }
            continue;
        }
        if ours.is_empty() {
            continue;
        }
        let since = left_use.get(&image.digest).copied().unwrap_or(s.now);
        let due = s.now.duration_since(since).is_ok_and(|d| d >= s.grace);
        if !s.complete || !due {
            out.left_use.insert(image.digest.clone(), since);
            out.held.push(image.digest.clone());
            out.protected += 1;
        } else if image.tags.iter().any(|t| !t.starts_with(&prefix)) {
            out.release
                .extend(ours.into_iter().map(|t| (image.digest.clone(), t.clone())));
        } else {
            last_tag.push(idx);
        }
    }
    let deleted = deletable(images, &last_tag, &out.release, s);
    for idx in last_tag {
        let image = &images[idx];
        if deleted.contains(&idx) {
            out.release
                .extend(image.tags.iter().map(|t| (image.digest.clone(), t.clone())));
        } else {
            // Removing the last tag deletes the image: not before the user's rules would.
            let since = left_use.get(&image.digest).copied().unwrap_or(s.now);
            out.left_use.insert(image.digest.clone(), since);
            out.held.push(image.digest.clone());
            out.protected += 1;
        }
    }
    out.release.sort();
    out.held.sort();
    out
}

/// The images among `candidates` (whose only tags are ours) that may lose them, which deletes
/// them: those the policy expires in the state after every release, these included. Starts
/// from all candidates and drops those not expired until the set is stable, so every image
/// deleted is one the policy itself would expire.
fn deletable(
    images: &[Image],
    candidates: &[usize],
    releases: &[(String, String)],
    s: &Settings<'_>,
) -> BTreeSet<usize> {
    let mut chosen: BTreeSet<usize> = candidates.iter().copied().collect();
    while !chosen.is_empty() {
        let mut after = images.to_vec();
        for image in &mut after {
            image
                .tags
                .retain(|t| !releases.iter().any(|(d, r)| *d == image.digest && r == t));
        }
        for &idx in &chosen {
            after[idx].tags.clear();
        }
        let expired: BTreeSet<usize> = evaluate::evaluate(s.rules, &after, s.now)
            .into_iter()
            .flat_map(|o| o.expired)
            .collect();
        let kept: BTreeSet<usize> = chosen.intersection(&expired).copied().collect();
        if kept == chosen {
            break;
        }
        chosen = kept;
    }
    chosen
}

pub mod preview;

#[cfg(test)]
mod tests;
