//! Pure decisions of the Repository controller: what ECR should hold ([`desired`]), what to do
//! when the repository is missing ([`first_step`]), whose it is ([`check_owner`]), and what to
//! change ([`decide`], [`plan`]). No I/O: table-tested in `repository/tests.rs` and `repository/decide_tests.rs`. Also the status
//! ([`next_status`]) and the event ([`event`]) of a sync.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Resource, ResourceExt};
use serde_json::Value;

use super::Note;
use crate::api::v1alpha1::{
    Adoption, EncryptionType, ManagementPolicy, Repository, RepositoryStatus, TagMutability,
};
use crate::api::{OWNER_TAG, RECONCILE_REQUESTED_AT};
use crate::backend::{EncryptionSettings, Mutability, NewRepository, RemoteRepository, RepositoryChange};
use crate::error::{Error, Result};
use crate::status::{Outcome, domain_condition, set_condition, summarize};

/// Domain condition of `ObserveOnly` repositories: True while ECR differs from the spec.
pub const DRIFTED: &str = "Drifted";

/// The owner tag value: `<cluster-id>/<namespace>/<name>`.
pub fn owner_id(cluster_id: &str, namespace: &str, name: &str) -> String {
    format!("{cluster_id}/{namespace}/{name}")
}

/// What ECR should hold for a Repository.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub name: String,
    pub owner: String,
    pub mutability: Mutability,
    /// Sorted; empty unless the mutability has exclusions.
    pub exclusion_filters: Vec<String>,
    pub scan_on_push: bool,
    pub encryption: Option<EncryptionSettings>,
    /// `spec.tags` plus the owner tag.
    pub tags: BTreeMap<String, String>,
    pub policy: Option<Value>,
    /// The owner id `spec.takeOverFrom` names, if any.
    pub previous_owner: Option<String>,
}

/// Pure: the owner id `spec.takeOverFrom` names: `namespace/name` is of this cluster.
pub fn previous_owner(take_over_from: Option<&str>, cluster_id: &str) -> Option<String> {
    let from = take_over_from?;
    Some(if from.matches('/').count() >= 2 {
        from.to_owned()
    } else {
        format!("{cluster_id}/{from}")
    })
}

/// Pure: the desired ECR state.
pub fn desired(repo: &Repository, cluster_id: &str) -> Result<Desired> {
    let namespace = repo.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let owner = owner_id(cluster_id, &namespace, &repo.name_any());
    let spec = &repo.spec;
    let mutability = match spec.image_tag_mutability {
        TagMutability::Mutable => Mutability::Mutable,
        TagMutability::Immutable => Mutability::Immutable,
        TagMutability::MutableWithExclusion => Mutability::MutableWithExclusion,
        TagMutability::ImmutableWithExclusion => Mutability::ImmutableWithExclusion,
    };
    let mut exclusion_filters = if has_exclusions(mutability) {
        spec.exclusion_filters.clone().unwrap_or_default()
    } else {
        vec![]
    };
    exclusion_filters.sort();
    exclusion_filters.dedup();
    let encryption = spec.encryption.as_ref().map(|e| EncryptionSettings {
        encryption_type: match e.type_ {
            EncryptionType::Aes256 => "AES256",
            EncryptionType::Kms => "KMS",
            EncryptionType::KmsDsse => "KMS_DSSE",
        }
        .to_owned(),
        kms_key: e.kms_key.clone(),
    });
    let mut tags = spec.tags.clone();
    tags.insert(OWNER_TAG.to_owned(), owner.clone());
    Ok(Desired {
        name: repo.ecr_name(),
        owner,
        mutability,
        exclusion_filters,
        scan_on_push: spec.scan_on_push,
        encryption,
        tags,
        policy: spec.policy.as_ref().map(|p| Value::Object(p.0.clone())),
        previous_owner: previous_owner(spec.take_over_from.as_deref(), cluster_id),
    })
}

/// Pure: what ECR would refuse in the desired state that admission could not measure: the
/// repository policy's length (`InvalidPolicy`). Checked before any ECR call.
pub fn check_desired(desired: &Desired) -> Result<()> {
    match desired.policy.as_ref().and_then(crate::policy::length_violation) {
        Some(v) => Err(Error::InvalidPolicy(format!(
            "invalid repository policy (spec.policy): {v}"
        ))),
        None => Ok(()),
    }
}

fn has_exclusions(m: Mutability) -> bool {
    matches!(
        m,
        Mutability::MutableWithExclusion | Mutability::ImmutableWithExclusion
    )
}

/// Who holds a repository according to its owner tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Our owner tag.
    Ours,
    /// No owner tag: adoptable.
    Unowned,
    /// The owner `spec.takeOverFrom` names: handed over to this object.
    HandedOver(String),
}

/// Pure: refuses repositories owned by another object, unless `spec.takeOverFrom` names it.
pub fn check_owner(desired: &Desired, tags: &BTreeMap<String, String>) -> Result<Ownership> {
    ownership(
        &desired.name,
        &desired.owner,
        desired.previous_owner.as_deref(),
        tags,
    )
}

/// Pure: who holds the repository `name` by its owner tag, for the object whose owner id is
/// `owner` (and that may take it over from `previous_owner`). Shared by every kind that owns a
/// repository through the owner tag (Repository, PublicRepository).
pub fn ownership(
    name: &str,
    owner: &str,
    previous_owner: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> Result<Ownership> {
    match tags.get(OWNER_TAG) {
        Some(found) if found == owner => Ok(Ownership::Ours),
        Some(found) if previous_owner == Some(found.as_str()) => Ok(Ownership::HandedOver(found.clone())),
        Some(found) => Err(Error::OwnedElsewhere {
            name: name.to_owned(),
            owner: found.clone(),
        }),
        None => Ok(Ownership::Unowned),
    }
}

/// Pure: the tags to set (desired values ECR does not hold) and the keys to remove (set by this
/// operator before, per `managed_keys`, and no longer desired; never the owner tag). Shared by
/// Repository and PublicRepository.
pub fn tag_changes(
    desired: &BTreeMap<String, String>,
    tags: &BTreeMap<String, String>,
    managed_keys: &[String],
) -> (BTreeMap<String, String>, Vec<String>) {
    let to_set = desired
        .iter()
        .filter(|(k, v)| tags.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let to_remove = managed_keys
        .iter()
        .filter(|k| tags.contains_key(*k) && !desired.contains_key(*k) && k.as_str() != OWNER_TAG)
        .cloned()
        .collect();
    (to_set, to_remove)
}

/// Pure: the changes that bring `observed` to `desired`. `managed_keys` are the tag keys this
/// operator set before (from status): only those may be removed.
pub fn plan(
    desired: &Desired,
    observed: &RemoteRepository,
    tags: &BTreeMap<String, String>,
    policy: Option<&str>,
    managed_keys: &[String],
) -> Result<Vec<RepositoryChange>> {
    if let Some(enc) = &desired.encryption {
        let type_differs = enc.encryption_type != observed.encryption.encryption_type;
        // Aliases and key IDs cannot be compared with the ARN ECR reports; compare ARNs only.
        let key_differs = enc.kms_key.as_deref().is_some_and(|k| k.starts_with("arn:"))
            && enc.kms_key != observed.encryption.kms_key;
        if type_differs || key_differs {
            return Err(Error::EncryptionMismatch(format!(
                "ECR repository {} is encrypted with {}{}, the spec asks for {}{}; ECR cannot change encryption, so recreate the repository or change the spec",
                desired.name,
                observed.encryption.encryption_type,
                observed
                    .encryption
                    .kms_key
                    .as_deref()
                    .map(|k| format!(" ({k})"))
                    .unwrap_or_default(),
                enc.encryption_type,
                enc.kms_key
                    .as_deref()
                    .map(|k| format!(" ({k})"))
                    .unwrap_or_default(),
            )));
        }
    }
    let mut changes = Vec::new();
    let filters_differ =
        has_exclusions(desired.mutability) && desired.exclusion_filters != observed.exclusion_filters;
    if desired.mutability != observed.mutability || filters_differ {
        changes.push(RepositoryChange::PutTagMutability {
            mutability: desired.mutability,
            exclusion_filters: desired.exclusion_filters.clone(),
        });
    }
    if desired.scan_on_push != observed.scan_on_push {
        changes.push(RepositoryChange::PutScanOnPush(desired.scan_on_push));
    }
    let (to_set, to_remove) = tag_changes(&desired.tags, tags, managed_keys);
    if !to_set.is_empty() {
        changes.push(RepositoryChange::TagResource(to_set));
    }
    if !to_remove.is_empty() {
        changes.push(RepositoryChange::UntagResource(to_remove));
    }
    if let Some(p) = &desired.policy
        && !policy.is_some_and(|text| crate::policy::same_policy(text, p))
    {
        changes.push(RepositoryChange::SetPolicy(p.to_string()));
    }
    Ok(changes)
}

/// How the spec lets the controller act on ECR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// `managementPolicy: ObserveOnly`: read and report, never write.
    pub observe_only: bool,
    /// `adoption`: whether an existing repository without an owner tag may be taken.
    pub adoption: Adoption,
}

impl Mode {
    pub fn of(repo: &Repository) -> Self {
        Self {
            observe_only: repo.spec.management_policy == ManagementPolicy::ObserveOnly,
            adoption: repo.spec.adoption,
        }
    }
}

/// What to do once the registry's listing has been read.
#[derive(Clone, Debug, PartialEq)]
pub enum First {
    /// The repository exists: observe its tags and policy, then [`decide`].
    Exists(RemoteRepository),
    /// It does not: create it with every setting and the owner tag in one call.
    Create(NewRepository),
}

/// Pure: an existing repository is observed; a missing one is created, unless the spec only
/// observes (then it is an error the user must act on).
pub fn first_step(desired: &Desired, listed: Option<RemoteRepository>, mode: Mode) -> Result<First> {
    match listed {
        Some(r) => Ok(First::Exists(r)),
        None if mode.observe_only => Err(Error::RepositoryNotFound(desired.name.clone())),
        None => Ok(First::Create(NewRepository {
            name: desired.name.clone(),
            mutability: desired.mutability,
            exclusion_filters: desired.exclusion_filters.clone(),
            scan_on_push: desired.scan_on_push,
            encryption: desired.encryption.clone(),
            // The owner tag goes in with the create: a crash right after leaves no unowned repository.
            tags: desired.tags.clone(),
        })),
    }
}

/// What ECR holds besides the repository itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub tags: BTreeMap<String, String>,
    /// The repository policy text; `None` when there is none or the spec sets none.
    pub policy: Option<String>,
    /// This reconcile created the repository (so tags and policy are what it sent).
    pub created: bool,
}

/// The decision for an existing (or just created) repository.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Make these calls (none when in sync); `adopt` when the repository had no owner tag, or
    /// the owner `from` handed it over (`spec.takeOverFrom`).
    Apply {
        adopt: bool,
        from: Option<String>,
        changes: Vec<RepositoryChange>,
    },
    /// ObserveOnly: write nothing; `drift` names the calls Full management would make.
    Observe { drift: Vec<&'static str> },
}

/// Pure: ownership, `CreateOnly` and the changes. `managed_keys` are the tag keys this operator
/// set before (from status): only those may be removed.
pub fn decide(
    desired: &Desired,
    remote: &RemoteRepository,
    observed: &Observed,
    mode: Mode,
    managed_keys: &[String],
) -> Result<Step> {
    // An observer never writes, so it may watch a repository another object owns; a writer
    // checks ownership (and CreateOnly) before anything else.
    let ownership = if mode.observe_only {
        Ownership::Ours
    } else {
        check_owner(desired, &observed.tags)?
    };
    let unowned = ownership == Ownership::Unowned;
    if unowned && !observed.created && mode.adoption == Adoption::CreateOnly {
        return Err(Error::AlreadyExists(desired.name.clone()));
    }
    let changes = plan(
        desired,
        remote,
        &observed.tags,
        observed.policy.as_deref(),
        managed_keys,
    )?;
    Ok(if mode.observe_only {
        Step::Observe {
            drift: changes.iter().map(RepositoryChange::operation).collect(),
        }
    } else {
        Step::Apply {
            adopt: unowned && !observed.created,
            from: match ownership {
                Ownership::HandedOver(from) => Some(from),
                _ => None,
            },
            changes,
        }
    })
}

/// What a successful sync did and found.
#[derive(Clone, Debug)]
pub struct Synced {
    pub repo: RemoteRepository,
    pub created: bool,
    pub adopted: bool,
    /// Operations applied (Full) or that would be applied (ObserveOnly).
    pub changes: Vec<&'static str>,
    pub observe_only: bool,
    pub insight: Option<crate::api::v1alpha1::RepositoryInsight>, // status.insight
}

/// Pure: the status this controller owns, as stored.
pub fn stored_status(repo: &Repository) -> Option<RepositoryStatus> {
    // `lifecyclePolicy` is the lifecycle controller's field: never sent, never compared.
    repo.status.clone().map(|s| RepositoryStatus {
        lifecycle_policy: None,
        ..s
    })
}

/// Pure: the next status.
pub fn next_status(repo: &Repository, outcome: &Result<Synced>, now: &Time) -> RepositoryStatus {
    let prev = stored_status(repo).unwrap_or_default();
    let generation = repo.meta().generation;
    let mut status = RepositoryStatus {
        observed_generation: generation,
        last_handled_reconcile_at: repo.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        ..prev.clone()
    };
    let summary = match outcome {
        Ok(synced) => {
            let r = &synced.repo;
            status.repository_uri = Some(r.uri.clone());
            status.repository_arn = Some(r.arn.clone());
            status.registry_id = Some(r.registry_id.clone());
            status.created_at = r.created_at.and_then(crate::status::stored_time);
            if !synced.observe_only {
                status.managed_tag_keys = repo.spec.tags.keys().cloned().collect();
            }
            let message = if synced.observe_only {
                format!("Observing ECR repository {}", r.name)
            } else {
                format!("ECR repository {} is in sync", r.name)
            };
            Outcome::InSync(message)
        }
        Err(e) => Outcome::Failed(e),
    };
    let mut conditions = summarize(&prev.conditions, generation, &summary, now);
    if let Ok(synced) = outcome
        && synced.observe_only
    {
        let drifted = !synced.changes.is_empty();
        let message = if drifted {
            format!(
                "ECR differs from the spec; Full management would call {}",
                synced.changes.join(", ")
            )
        } else {
            "ECR matches the spec".to_owned()
        };
        let reason = if drifted { "DriftDetected" } else { "NoDrift" };
        set_condition(
            &mut conditions,
            &prev.conditions,
            domain_condition(DRIFTED, drifted, reason, message, generation, now),
        );
    }
    status.conditions = conditions;
    status
}

/// Pure: the Normal event of a sync that changed something.
pub fn event(s: &Synced) -> Option<Note> {
    if s.created {
        Some(("Created", format!("Created ECR repository {}", s.repo.name)))
    } else if s.adopted {
        Some((
            "Adopted",
            format!("Adopted existing ECR repository {}", s.repo.name),
        ))
    } else if !s.observe_only && !s.changes.is_empty() {
        Some((
            "Updated",
            format!("Updated ECR repository {}: {}", s.repo.name, s.changes.join(", ")),
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod decide_tests;
#[cfg(test)]
mod tests;
