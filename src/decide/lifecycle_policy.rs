//! Pure decisions of the LifecyclePolicy controller: which Repositories a policy selects, which
//! of them it holds (the oldest policy wins), which wait, which records must be released, the
//! preview, and the status. No I/O (see [`crate::decide`]).

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::{Selector, SelectorExt};
use kube::{Resource, ResourceExt};

use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::v1alpha1::{
    LifecyclePolicy, LifecyclePolicyStatus, LifecyclePolicyTarget, LifecyclePreview, LifecycleRule,
    Repository, RulePreview, TargetState,
};
use crate::error::{Error, Result};
use crate::lifecycle::evaluate;
use crate::status::{Outcome, summarize};

/// Pure: `spec.repositorySelector` as the selector Repositories are matched with (`None`: unset).
/// A selector stored before the admission rules existed is refused here, naming the requirement,
/// its value and the allowed operators (`InvalidSpec`).
pub fn repository_selector(policy: &LifecyclePolicy) -> Result<Option<Selector>> {
    policy
        .spec
        .repository_selector
        .as_ref()
        .map(crate::api::selector::parse)
        .transpose()
        .map_err(|e| Error::InvalidSpec(format!("invalid repositorySelector: {e}")))
}

/// Pure: whether `policy` selects `repo` (same namespace, by label selector or name).
pub fn selects(policy: &LifecyclePolicy, repo: &Repository) -> Result<bool> {
    if policy.namespace() != repo.namespace() {
        return Ok(false);
    }
    if let Some(names) = &policy.spec.repositories {
        return Ok(names.contains(&repo.name_any()));
    }
    Ok(repository_selector(policy)?.is_some_and(|s| s.matches(repo.labels())))
}

/// Pure: the LifecyclePolicy that holds `repo`: the oldest (creationTimestamp, then name) of the
/// policies selecting it. Deterministic, so two policies never flap.
pub fn winner<'a>(policies: &'a [LifecyclePolicy], repo: &Repository) -> Option<&'a LifecyclePolicy> {
    policies
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && selects(p, repo).unwrap_or(false))
        .min_by_key(|p| super::claims::seniority(*p))
}

/// What to do for one selected Repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Put (or preview) the policy on this ECR repository of this Registry.
    Serve { ecr_name: String, registry: String },
    /// The Repository is not Ready yet.
    Pending,
    /// An older LifecyclePolicy holds it.
    Conflict { holder: String },
    /// `spec.repositories` names it, and no Repository of that name exists in the namespace.
    Missing,
}

/// Pure: one plan per selected Repository, in the order of `repos`, then one
/// [`Plan::Missing`] per name in `spec.repositories` that no Repository has, in the spec's order.
pub fn targets(
    lp: &LifecyclePolicy,
    repos: &[Repository],
    policies: &[LifecyclePolicy],
) -> Result<Vec<(String, Plan)>> {
    // Refused even when the namespace holds no Repository the selector would be tried on.
    repository_selector(lp)?;
    let mut out = Vec::new();
    for repo in repos {
        if !selects(lp, repo)? {
            continue;
        }
        let plan = match winner(policies, repo) {
            Some(w) if w.name_any() != lp.name_any() => Plan::Conflict { holder: w.name_any() },
            _ if repo.status.as_ref().is_none_or(|s| s.repository_arn.is_none()) => Plan::Pending,
            _ => Plan::Serve {
                ecr_name: repo.ecr_name(),
                registry: repo.spec.registry_ref.name.clone(),
            },
        };
        out.push((repo.name_any(), plan));
    }
    for name in lp.spec.repositories.iter().flatten() {
        let exists = repos
            .iter()
            .any(|r| r.name_any() == *name && r.namespace() == lp.namespace());
        if !exists && !out.iter().any(|(n, _)| n == name) {
            out.push((name.clone(), Plan::Missing));
        }
    }
    Ok(out)
}

/// Pure: the records of this policy's earlier puts (from its own status) that the current plan
/// no longer covers: the policy must be removed from those ECR repositories. `serving` are the
/// (registry, ECR name) pairs this reconcile puts the policy on.
pub fn to_release<'a>(
    previous: &'a [LifecyclePolicyTarget],
    serving: &[(String, String)],
) -> Vec<&'a LifecyclePolicyTarget> {
    previous
        .iter()
        .filter(|t| t.hash.is_some())
        .filter(|t| match (&t.registry, &t.ecr_name) {
            (Some(r), Some(e)) => !serving.iter().any(|(sr, se)| sr == r && se == e),
            _ => false,
        })
        .collect()
}

/// Pure: an entry that records no put this time (the read or the put failed, its Registry is not
/// Ready, `dryRun`) keeps the record of what an earlier reconcile put on that ECR repository
/// (`registry`, `ecr_name`): dropping it would leave the policy in ECR with nothing left to remove
/// it when the LifecyclePolicy is deleted or stops selecting the repository.
pub fn keep_record(
    entry: &mut LifecyclePolicyTarget,
    previous: &[LifecyclePolicyTarget],
    registry: &str,
    ecr_name: &str,
) {
    if entry.hash.is_some() {
        return;
    }
    let earlier = previous.iter().find(|p| {
        p.hash.is_some() && p.registry.as_deref() == Some(registry) && p.ecr_name.as_deref() == Some(ecr_name)
    });
    if let Some(p) = earlier {
        entry.registry = p.registry.clone();
        entry.ecr_name = p.ecr_name.clone();
        entry.hash = p.hash.clone();
    }
}

/// A `status.repositories[]` entry.
pub fn entry(name: &str, state: TargetState, message: Option<String>) -> LifecyclePolicyTarget {
    LifecyclePolicyTarget {
        name: name.to_owned(),
        state,
        message,
        ..Default::default()
    }
}

/// Pure: per rule, over every selected repository (evaluated repository by repository).
pub fn preview(
    rules: &[LifecycleRule],
    images: &[(String, evaluate::Image)],
    now: SystemTime,
) -> Vec<RulePreview> {
    let mut by_repo: BTreeMap<&str, Vec<evaluate::Image>> = BTreeMap::new();
    for (repo, img) in images {
        by_repo.entry(repo.as_str()).or_default().push(img.clone());
    }
    let mut sorted = rules.to_vec();
    sorted.sort_by_key(|r| r.rule_priority);
    let mut out: Vec<RulePreview> = sorted
        .iter()
        .map(|r| RulePreview {
            rule_priority: r.rule_priority,
            ..Default::default()
        })
        .collect();
    for (repo, imgs) in by_repo {
        for (i, o) in evaluate::evaluate(rules, &imgs, now).into_iter().enumerate() {
            let p = &mut out[i];
            p.matched += o.matched.len() as i64;
            p.expiring += o.expired.len() as i64;
            p.transitioning += o.transitioned.len() as i64;
            for idx in o.expired.iter().chain(&o.transitioned) {
                if p.examples.len() < 3 {
                    let img = &imgs[*idx];
                    p.examples.push(match img.tags.first() {
                        Some(tag) => format!("{repo}:{tag}"),
                        None => format!("{repo}@{}", img.digest),
                    });
                }
            }
        }
    }
    out
}

/// What one reconcile found and did.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub targets: Vec<LifecyclePolicyTarget>,
    pub preview: Vec<RulePreview>,
    pub put: Vec<String>,
    pub removed: usize,
    /// Names in `spec.repositories` that no Repository has (their targets are `Pending`).
    pub missing: Vec<String>,
}

/// Pure: what the policy reports without failing: named Repositories that do not exist
/// (`NamedRepositoryNotFound`: the policy is not Ready, it waits for them), or a selector that
/// matches no Repository (`NoRepositorySelected`: Ready, since there is nothing left to do, but
/// said so). `None` when something else decides the status (a conflict outranks a missing
/// name; anything selected, pending or being released outranks an empty selection), so the
/// driver's Warning, which fires when this reason differs from the stored Ready reason, always
/// names the reason the status shows.
pub fn notice(lp: &LifecyclePolicy, applied: &Applied) -> Option<Error> {
    let ns = lp.namespace().unwrap_or_default();
    if applied.targets.iter().any(|t| t.state == TargetState::Conflict) {
        return None;
    }
    match applied.missing.as_slice() {
        [] => {}
        [one] => {
            return Some(Error::NamedRepositoryNotFound(format!(
                "spec.repositories names {one}, but no Repository {one} exists in namespace {ns}: the policy is put on it once it exists and is Ready"
            )));
        }
        many => {
            return Some(Error::NamedRepositoryNotFound(format!(
                "spec.repositories names {}, but no Repositories of those names exist in namespace {ns}: the policy is put on each once it exists and is Ready",
                crate::text::listed(many, 10)
            )));
        }
    }
    (lp.spec.repositories.is_none() && applied.targets.is_empty()).then(|| {
        let verb = if lp.spec.dry_run { "previewed on" } else { "applied to" };
        Error::NoRepositorySelected(format!(
            "repositorySelector matches no Repository in namespace {ns}: {verb} none, and a Repository that gets matching labels gets the policy"
        ))
    })
}

/// Pure: the next status from what the sync did (`None` when it failed before doing anything) and
/// its failure, if any. The preview's `evaluatedAt` moves only when the preview changes, so an
/// in-sync reconcile writes nothing. A failure keeps the records of what was put (they are what
/// cleanup needs), updated with whatever this reconcile did before it failed.
pub fn next_status(
    lp: &LifecyclePolicy,
    applied: Option<&Applied>,
    failure: Option<&Error>,
    now: &Time,
) -> LifecyclePolicyStatus {
    let prev = lp.status.clone().unwrap_or_default();
    let generation = lp.meta().generation;
    let mut status = LifecyclePolicyStatus {
        observed_generation: generation,
        last_handled_reconcile_at: lp.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        ..prev.clone()
    };
    if let Some(a) = applied {
        status.repositories = a.targets.clone();
        let same = prev.preview.as_ref().is_some_and(|p| p.rules == a.preview);
        status.preview = Some(LifecyclePreview {
            evaluated_at: if same {
                prev.preview.as_ref().and_then(|p| p.evaluated_at.clone())
            } else {
                Some(now.clone())
            },
            rules: a.preview.clone(),
        });
    }
    let notice = applied.and_then(|a| notice(lp, a));
    let summary = match (failure, applied) {
        (Some(e), _) => Outcome::Failed(e),
        (None, Some(a)) => summary(lp, &a.targets, notice.as_ref()),
        (None, None) => Outcome::InSync(String::new()),
    };
    status.conditions = summarize(&prev.conditions, generation, &summary, now);
    // Ready, and says why there is nothing to apply: the reason the driver's Warning compares
    // with, so the Warning fires once, when the selection becomes empty.
    if failure.is_none()
        && let Some(e @ Error::NoRepositorySelected(_)) = &notice
    {
        for c in status
            .conditions
            .iter_mut()
            .filter(|c| c.type_ == crate::status::READY)
        {
            e.reason().clone_into(&mut c.reason);
        }
    }
    status
}

fn names(targets: &[LifecyclePolicyTarget], state: TargetState) -> Vec<&str> {
    targets
        .iter()
        .filter(|t| t.state == state)
        .map(|t| t.name.as_str())
        .collect()
}

/// Pure: Ready when every selected repository is served; otherwise waiting or stalled, with the
/// names. `notice` is [`notice`]'s verdict on the same targets.
fn summary(
    lp: &LifecyclePolicy,
    targets: &[LifecyclePolicyTarget],
    notice: Option<&Error>,
) -> Outcome<'static> {
    let conflicts = names(targets, TargetState::Conflict);
    let pending = names(targets, TargetState::Pending);
    let releasing = names(targets, TargetState::Releasing);
    let applied = targets
        .iter()
        .filter(|t| matches!(t.state, TargetState::Applied | TargetState::Previewed))
        .count();
    if !conflicts.is_empty() {
        Outcome::Stalled {
            reason: "Conflict",
            message: format!(
                "Repositories {} are held by an older LifecyclePolicy; applied to {applied}",
                conflicts.join(", ")
            ),
        }
    } else if let Some(e @ Error::NamedRepositoryNotFound(_)) = notice {
        // Not Ready until every named repository exists and is served.
        Outcome::Waiting {
            reason: e.reason(),
            message: format!("{e}; applied to {applied}"),
        }
    } else if !pending.is_empty() {
        // Not Ready until every selected repository is served.
        Outcome::Waiting {
            reason: "DependencyNotReady",
            message: format!(
                "Repository {} is not Ready yet; applied to {applied}",
                pending.join(", ")
            ),
        }
    } else if !releasing.is_empty() {
        Outcome::Waiting {
            reason: "DependencyNotReady",
            message: format!(
                "The policy is still to be removed from {} (waiting for their Registry); applied to {applied}",
                releasing.join(", ")
            ),
        }
    } else if let Some(e @ Error::NoRepositorySelected(_)) = notice {
        Outcome::InSync(e.to_string())
    } else if lp.spec.dry_run {
        Outcome::InSync(format!(
            "Previewed on {applied} repositories (dryRun: nothing put)"
        ))
    } else {
        Outcome::InSync(format!("Applied to {applied} repositories"))
    }
}

/// Pure: the records of this policy's puts: its own status, plus (for objects written before the
/// records moved here) the `status.lifecyclePolicy` of the namespace's Repositories.
pub fn recorded(lp: &LifecyclePolicy, repos: &[Repository]) -> Vec<LifecyclePolicyTarget> {
    let mut records = lp
        .status
        .as_ref()
        .map(|s| s.repositories.clone())
        .unwrap_or_default();
    for repo in repos {
        let Some(applied) = repo.status.as_ref().and_then(|s| s.lifecycle_policy.clone()) else {
            continue;
        };
        let known = records
            .iter()
            .any(|r| r.name == repo.name_any() && r.hash.is_some());
        if applied.name == lp.name_any() && !known {
            records.push(LifecyclePolicyTarget {
                name: repo.name_any(),
                state: TargetState::Applied,
                ecr_name: Some(repo.ecr_name()),
                registry: Some(repo.spec.registry_ref.name.clone()),
                hash: Some(applied.hash),
                ..Default::default()
            });
        }
    }
    records
}

pub fn image(i: crate::backend::ImageInfo, now: SystemTime) -> evaluate::Image {
    evaluate::Image {
        digest: i.digest,
        tags: i.tags,
        pushed_at: i.pushed_at.unwrap_or(now),
        last_pulled_at: i.last_pulled_at,
        archived: i.archived,
        archived_at: i.archived_at,
        last_activated_at: i.last_activated_at,
        size_bytes: i.size_bytes.unwrap_or(0),
    }
}

#[cfg(test)]
mod missing_tests;
#[cfg(test)]
mod tests;
