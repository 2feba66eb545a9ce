//! Pure decisions of the PublicRepository controller: what ECR Public should hold ([`desired`]),
//! whether a logo is one ([`check_logo`]), what to do when the repository is missing
//! ([`first_step`]), what to change ([`plan`], [`decide`]), the status ([`next_status`]) and the
//! event ([`event`]). Ownership, adoption and the tag changes are the Repository's own
//! ([`crate::decide::repository::ownership`], [`crate::decide::repository::tag_changes`]); the
//! policy comparison is [`crate::policy::same_policy`]. Table tests in `public_repository/tests.rs`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Resource, ResourceExt};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Note;
use super::repository::{Mode, Ownership, owner_id, ownership, tag_changes};
use crate::api::v1alpha1::{
    Adoption, ManagementPolicy, PUBLIC_LOGO_MAX_BYTES, PublicRepository, PublicRepositoryStatus,
};
use crate::api::{OWNER_TAG, RECONCILE_REQUESTED_AT};
use crate::backend::ecr_public::{
    NewPublicRepository, PublicCatalog, PublicChange, PublicRegistryInfo, RemotePublicCatalog,
    RemotePublicRepository,
};
use crate::error::{Error, Result};
use crate::status::{Outcome, domain_condition, set_condition, summarize};

pub use super::repository::DRIFTED;

/// What ECR Public should hold for a PublicRepository.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub name: String,
    pub owner: String,
    /// `None`: the spec sets no catalog data, which is left alone.
    pub catalog: Option<PublicCatalog>,
    /// `spec.tags` plus the owner tag.
    pub tags: BTreeMap<String, String>,
    pub policy: Option<Value>,
}

/// A logo read from its ConfigMap or Secret, checked ([`check_logo`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logo {
    pub bytes: Vec<u8>,
    /// SHA-256, hex.
    pub sha256: String,
}

/// Pure: the desired state.
pub fn desired(repo: &PublicRepository, cluster_id: &str) -> Result<Desired> {
    let namespace = repo.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let spec = &repo.spec;
    let catalog = spec.catalog_data.as_ref().map(|c| PublicCatalog {
        description: c.description.clone().unwrap_or_default(),
        about_text: c.about_text.clone().unwrap_or_default(),
        usage_text: c.usage_text.clone().unwrap_or_default(),
        architectures: c.architectures.iter().map(|a| a.as_str().to_owned()).collect(),
        operating_systems: c
            .operating_systems
            .iter()
            .map(|o| o.as_str().to_owned())
            .collect(),
    });
    let owner = owner_id(cluster_id, &namespace, &repo.name_any());
    let mut tags = spec.tags.clone();
    tags.insert(OWNER_TAG.to_owned(), owner.clone());
    Ok(Desired {
        name: repo.ecr_name(),
        owner,
        catalog,
        tags,
        policy: spec.policy.as_ref().map(|p| Value::Object(p.0.clone())),
    })
}

/// Pure: what ECR Public would refuse that admission could not measure: the policy's length
/// (`InvalidPolicy`). Checked before any call.
pub fn check_desired(desired: &Desired) -> Result<()> {
    match desired.policy.as_ref().and_then(crate::policy::length_violation) {
        Some(v) => Err(Error::InvalidPolicy(format!(
            "invalid repository policy (spec.policy): {v}"
        ))),
        None => Ok(()),
    }
}

/// Pure: the logo read from `source` (named in the message), if it is a PNG or JPEG image within
/// ECR Public's size limit; `InvalidSpec` (Stalled) otherwise.
pub fn check_logo(source: &str, bytes: Vec<u8>) -> Result<Logo> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    const JPEG: &[u8] = b"\xff\xd8\xff";
    if !(bytes.starts_with(PNG) || bytes.starts_with(JPEG)) {
        return Err(Error::InvalidSpec(format!(
            "the logo in {source} (spec.catalogData.logo) is not a PNG or JPEG image"
        )));
    }
    if bytes.len() > PUBLIC_LOGO_MAX_BYTES {
        return Err(Error::InvalidSpec(format!(
            "the logo in {source} (spec.catalogData.logo) is {} bytes; ECR Public takes at most {PUBLIC_LOGO_MAX_BYTES}",
            bytes.len()
        )));
    }
    let sha256 = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Logo { bytes, sha256 })
}

/// Pure: whether ECR Public's catalog says what the desired one says (architectures and
/// operating systems as sets: their order is not shown).
pub fn same_catalog(desired: &PublicCatalog, remote: &PublicCatalog) -> bool {
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    desired.description == remote.description
        && desired.about_text == remote.about_text
        && desired.usage_text == remote.usage_text
        && set(&desired.architectures) == set(&remote.architectures)
        && set(&desired.operating_systems) == set(&remote.operating_systems)
}

/// What to do once the repository was described.
#[derive(Clone, Debug, PartialEq)]
pub enum First {
    /// It exists: observe its catalog, tags and policy, then [`decide`].
    Exists(RemotePublicRepository),
    /// It does not: create it with its catalog, logo and tags (the owner tag included) in one call.
    Create(NewPublicRepository),
}

/// Pure: an existing repository is observed; a missing one is created, unless the spec only
/// observes (an error the user must act on).
pub fn first_step(
    desired: &Desired,
    listed: Option<RemotePublicRepository>,
    mode: Mode,
    logo: Option<&Logo>,
) -> Result<First> {
    match listed {
        Some(r) => Ok(First::Exists(r)),
        None if mode.observe_only => Err(Error::RepositoryNotFound(desired.name.clone())),
        None => Ok(First::Create(NewPublicRepository {
            name: desired.name.clone(),
            catalog: desired.catalog.clone().unwrap_or_default(),
            logo: logo.map(|l| l.bytes.clone()),
            tags: desired.tags.clone(),
        })),
    }
}

/// What ECR Public holds besides the repository itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub catalog: RemotePublicCatalog,
    pub tags: BTreeMap<String, String>,
    /// The policy text; `None` when there is none or the spec sets none.
    pub policy: Option<String>,
    /// This reconcile created the repository (so it holds what was sent).
    pub created: bool,
}

/// Pure: the changes that bring ECR Public to the desired state. The logo is (re)sent when ECR
/// Public shows none, or when it differs from the one last sent (`sent_logo`, from status: ECR
/// Public answers a URL, never the image).
pub fn plan(
    desired: &Desired,
    observed: &Observed,
    logo: Option<&Logo>,
    sent_logo: Option<&str>,
    managed_keys: &[String],
) -> Vec<PublicChange> {
    let mut changes = Vec::new();
    if let Some(catalog) = &desired.catalog {
        let logo_stale =
            logo.filter(|l| observed.catalog.logo_url.is_none() || sent_logo != Some(l.sha256.as_str()));
        if logo_stale.is_some() || !same_catalog(catalog, &observed.catalog.catalog) {
            changes.push(PublicChange::PutCatalog {
                catalog: catalog.clone(),
                logo: logo_stale.map(|l| l.bytes.clone()),
            });
        }
    }
    let (to_set, to_remove) = tag_changes(&desired.tags, &observed.tags, managed_keys);
    if !to_set.is_empty() {
        changes.push(PublicChange::TagResource(to_set));
    }
    if !to_remove.is_empty() {
        changes.push(PublicChange::UntagResource(to_remove));
    }
    if let Some(p) = &desired.policy
        && !observed
            .policy
            .as_deref()
            .is_some_and(|text| crate::policy::same_policy(text, p))
    {
        changes.push(PublicChange::SetPolicy(p.to_string()));
    }
    changes
}

/// The decision for an existing (or just created) repository.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Make these calls (none when in sync); `adopt` when it had no owner tag.
    Apply { adopt: bool, changes: Vec<PublicChange> },
    /// ObserveOnly: write nothing; `drift` names the calls Full management would make.
    Observe { drift: Vec<&'static str> },
}

/// Pure: the mode of a PublicRepository (the Repository's).
pub fn mode(repo: &PublicRepository) -> Mode {
    Mode {
        observe_only: repo.spec.management_policy == ManagementPolicy::ObserveOnly,
        adoption: repo.spec.adoption,
    }
}

/// Pure: ownership (the owner tag), `CreateOnly` and the changes.
pub fn decide(
    desired: &Desired,
    observed: &Observed,
    mode: Mode,
    logo: Option<&Logo>,
    sent_logo: Option<&str>,
    managed_keys: &[String],
) -> Result<Step> {
    if mode.observe_only {
        // An observer never sends a logo, so only a missing one counts as drift.
        let sent = observed
            .catalog
            .logo_url
            .as_ref()
            .and(logo)
            .map(|l| l.sha256.as_str());
        let changes = plan(desired, observed, logo, sent, managed_keys);
        return Ok(Step::Observe {
            drift: changes.iter().map(PublicChange::operation).collect(),
        });
    }
    let unowned = ownership(&desired.name, &desired.owner, None, &observed.tags)? == Ownership::Unowned;
    if unowned && !observed.created && mode.adoption == Adoption::CreateOnly {
        return Err(Error::AlreadyExists(desired.name.clone()));
    }
    Ok(Step::Apply {
        adopt: unowned && !observed.created,
        changes: plan(desired, observed, logo, sent_logo, managed_keys),
    })
}

/// What a successful sync did and found.
#[derive(Clone, Debug)]
pub struct Synced {
    pub repo: RemotePublicRepository,
    pub registry: PublicRegistryInfo,
    pub created: bool,
    pub adopted: bool,
    /// Operations applied (Full) or that would be applied (ObserveOnly).
    pub changes: Vec<&'static str>,
    pub observe_only: bool,
    /// SHA-256 of the spec's logo, when it has one (sent now or before).
    pub logo_sha256: Option<String>,
}

/// Pure: the next status.
pub fn next_status(repo: &PublicRepository, outcome: &Result<Synced>, now: &Time) -> PublicRepositoryStatus {
    let prev = repo.status.clone().unwrap_or_default();
    let generation = repo.meta().generation;
    let mut status = PublicRepositoryStatus {
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
            status.registry_alias = synced.registry.alias.clone();
            status.registry_display_name = synced.registry.display_name.clone();
            status.created_at = r.created_at.and_then(crate::status::stored_time);
            if !synced.observe_only {
                status.managed_tag_keys = repo.spec.tags.keys().cloned().collect();
                status.logo_sha256 = synced.logo_sha256.clone();
            }
            Outcome::InSync(if synced.observe_only {
                format!("Observing {}", r.uri)
            } else {
                format!("{} is in sync", r.uri)
            })
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
                "ECR Public differs from the spec; Full management would call {}",
                synced.changes.join(", ")
            )
        } else {
            "ECR Public matches the spec".to_owned()
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
        Some(("Created", format!("Created public repository {}", s.repo.uri)))
    } else if s.adopted {
        Some((
            "Adopted",
            format!("Adopted existing public repository {}", s.repo.uri),
        ))
    } else if !s.observe_only && !s.changes.is_empty() {
        Some((
            "Updated",
            format!(
                "Updated public repository {}: {}",
                s.repo.uri,
                s.changes.join(", ")
            ),
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
