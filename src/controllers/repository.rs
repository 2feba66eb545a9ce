//! Reconciles `Repository` objects against ECR.
//!
//! dereference (Registry from the store, Namespace for tenancy) → desired (pure) → observe
//! (one listing per registry, cached briefly; tags; policy) → ownership (pure) → plan (pure)
//! → act → next_status (pure) → one status write, skipped when unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::core::SelectorExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::Value;

use super::context::{Context, object_key, publish, publish_outcome, ready_reason};
use super::error_policy;
use crate::api::v1alpha1::{
    Adoption, DeletionPolicy, EncryptionType, ManagementPolicy, Registry, Repository, RepositoryStatus,
    TagMutability,
};
use crate::api::{FINALIZER, OWNER_TAG, RECONCILE_REQUESTED_AT};
use crate::backend::{
    BackendError, EncryptionSettings, Mutability, NewRepository, RegistryBackend, RemoteRepository,
    RepositoryChange, Target,
};
use crate::error::{Error, Result};
use crate::status::{Outcome, domain_condition, set_condition, summarize, write_fields};

pub const CONTROLLER: &str = "repository";
/// Domain condition of `ObserveOnly` repositories: True while ECR differs from the spec.
pub const DRIFTED: &str = "Drifted";

/// Runs the Repository controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api = Api::<Repository>::all(ctx.client.clone());
    let controller = Controller::new(api, watcher::Config::default().any_semantic());
    let store = controller.store();
    controller
        // A Registry change (e.g. it became Ready) re-queues every Repository on it.
        .watches(Api::<Registry>::all(ctx.client.clone()), watcher::Config::default(), move |registry| {
            let name = registry.name_any();
            store
                .state()
                .into_iter()
                .filter(|r| r.spec.registry_ref.name == name)
                .map(|r| ObjectRef::from_obj(r.as_ref()))
                .collect::<Vec<_>>()
        })
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.tunables.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<B>, error_policy::<Repository, B>, ctx.clone())
        .for_each(|r| super::report(CONTROLLER, r))
        .await;
}

/// The ECR repository name: `spec.name`, else `metadata.name`.
pub fn ecr_name(repo: &Repository) -> String {
    repo.spec.name.clone().unwrap_or_else(|| repo.name_any())
}

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
        name: ecr_name(repo),
        owner,
        mutability,
        exclusion_filters,
        scan_on_push: spec.scan_on_push,
        encryption,
        tags,
        policy: spec.policy.as_ref().map(|p| Value::Object(p.0.clone())),
    })
}

fn has_exclusions(m: Mutability) -> bool {
    matches!(
        m,
        Mutability::MutableWithExclusion | Mutability::ImmutableWithExclusion
    )
}

/// Pure: whether the Registry lets this namespace place this repository.
pub fn check_tenancy(
    registry: &Registry,
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    name: &str,
) -> Result<()> {
    if let Some(selector) = &registry.spec.allowed_namespaces {
        let selector = kube::core::Selector::try_from(selector.clone()).map_err(|e| {
            Error::InvalidSpec(format!(
                "Registry {} has an invalid allowedNamespaces: {e}",
                registry.name_any()
            ))
        })?;
        if !selector.matches(namespace_labels) {
            return Err(Error::NotAllowed(format!(
                "Registry {} does not allow namespace {namespace} (allowedNamespaces)",
                registry.name_any()
            )));
        }
    }
    if registry
        .spec
        .repository_name_policy
        .as_ref()
        .is_some_and(|p| p.require_namespace_prefix)
        && !name.starts_with(&format!("{namespace}/"))
    {
        return Err(Error::NotAllowed(format!(
            "Registry {} requires repository names in namespace {namespace} to start with {namespace}/ (got {name})",
            registry.name_any()
        )));
    }
    Ok(())
}

/// Who holds a repository according to its owner tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Our owner tag.
    Ours,
    /// No owner tag: adoptable.
    Unowned,
}

/// Pure: refuses repositories owned by another object.
pub fn check_owner(desired: &Desired, tags: &BTreeMap<String, String>) -> Result<Ownership> {
    match tags.get(OWNER_TAG) {
        Some(owner) if owner == &desired.owner => Ok(Ownership::Ours),
        Some(owner) => Err(Error::OwnedElsewhere {
            name: desired.name.clone(),
            owner: owner.clone(),
        }),
        None => Ok(Ownership::Unowned),
    }
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
    let to_set: BTreeMap<String, String> = desired
        .tags
        .iter()
        .filter(|(k, v)| tags.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !to_set.is_empty() {
        changes.push(RepositoryChange::TagResource(to_set));
    }
    let to_remove: Vec<String> = managed_keys
        .iter()
        .filter(|k| tags.contains_key(*k) && !desired.tags.contains_key(*k) && k.as_str() != OWNER_TAG)
        .cloned()
        .collect();
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

/// What a successful sync did and found.
#[derive(Clone, Debug)]
struct Synced {
    repo: RemoteRepository,
    created: bool,
    adopted: bool,
    /// Operations applied (Full) or that would be applied (ObserveOnly).
    changes: Vec<&'static str>,
    observe_only: bool,
}

async fn reconcile<B: RegistryBackend>(repo: Arc<Repository>, ctx: Arc<Context<B>>) -> Result<Action> {
    let start = Instant::now();
    let Some(ns) = ctx.served_namespace(repo.as_ref())? else {
        return Ok(Action::await_change());
    };
    let api = Api::<Repository>::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, repo.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(repo) => apply(&repo, &api, &ctx).await,
            FinalizerEvent::Cleanup(repo) => cleanup(&repo, &api, &ctx).await,
        }
    })
    .await
    .map_err(Error::from);
    super::finish(&ctx, CONTROLLER, repo.as_ref(), start, result)
}

async fn apply<B: RegistryBackend>(
    repo: &Repository,
    api: &Api<Repository>,
    ctx: &Context<B>,
) -> Result<Action> {
    if repo.spec.suspend {
        return Ok(Action::await_change());
    }
    let outcome = sync(repo, ctx).await;
    let status = next_status(repo, &outcome, &Time(k8s_openapi::jiff::Timestamp::now()));
    let previous = ready_reason(repo.status.as_ref().map(|s| s.conditions.as_slice()));
    let written = write_fields(api, repo, &status, &ctx.field_manager(CONTROLLER), &|k| {
        k != "lifecyclePolicy"
    })
    .await;
    let recorder = ctx.recorder(CONTROLLER);
    publish_outcome(
        &recorder,
        &repo.object_ref(&()),
        previous.as_deref(),
        event(&outcome),
        "Reconcile",
    )
    .await;
    if let Err(e) = &written
        && outcome.is_err()
    {
        // The root cause drives the error class and backoff.
        tracing::warn!(error = e as &dyn std::error::Error, "status write failed");
    }
    outcome?;
    written?;
    Ok(Action::requeue(
        ctx.interval(repo.spec.interval.as_ref(), &object_key(repo)),
    ))
}

/// Resolves the Registry, checks tenancy, and returns the target.
async fn dereference<B: RegistryBackend>(
    repo: &Repository,
    ctx: &Context<B>,
) -> Result<(Arc<Registry>, Target)> {
    let registry = ctx.ready_registry(&repo.spec.registry_ref.name)?;
    let ns = repo.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let labels = if registry.spec.allowed_namespaces.is_some() {
        ctx.namespace_labels(&ns).await?
    } else {
        BTreeMap::new()
    };
    check_tenancy(&registry, &ns, &labels, &ecr_name(repo))?;
    let target = ctx.target(&registry).await?;
    Ok((registry, target))
}

/// Removes a repository from the cache when ECR says it is gone, so the retry describes it anew.
async fn forget_if_gone<B: RegistryBackend>(ctx: &Context<B>, target: &Target, name: &str, e: &BackendError) {
    if matches!(e, BackendError::NotFound(_)) {
        ctx.repositories.remove(target, name).await;
    }
}

async fn sync<B: RegistryBackend>(repo: &Repository, ctx: &Context<B>) -> Result<Synced> {
    let (_, target) = dereference(repo, ctx).await?;
    let desired = desired(repo, &ctx.tunables.cluster_id)?;
    let observe_only = repo.spec.management_policy == ManagementPolicy::ObserveOnly;
    let backend = ctx.backend.as_ref();
    let observed = ctx
        .repositories
        // Only an observer must be sure a repository is missing; a create finds out anyway.
        .get(backend, &target, &desired.name, observe_only)
        .await
        .map_err(Error::backend("DescribeRepositories"))?;

    let (observed, created) = match observed {
        Some(r) => (r, false),
        None if observe_only => return Err(Error::RepositoryNotFound(desired.name.clone())),
        None => {
            let new = NewRepository {
                name: desired.name.clone(),
                mutability: desired.mutability,
                exclusion_filters: desired.exclusion_filters.clone(),
                scan_on_push: desired.scan_on_push,
                encryption: desired.encryption.clone(),
                // The owner tag goes in with the create: a crash right after leaves no unowned repository.
                tags: desired.tags.clone(),
            };
            match backend.create_repository(&target, &new).await {
                Ok(r) => {
                    ctx.repositories.put(&target, r.clone()).await;
                    (r, true)
                }
                // Created meanwhile (by us before a crash, or by someone else): check ownership below.
                Err(BackendError::AlreadyExists(_)) => {
                    let r = backend
                        .describe_repository(&target, &desired.name)
                        .await
                        .map_err(Error::backend("DescribeRepositories"))?
                        .ok_or_else(|| {
                            Error::backend("CreateRepository")(BackendError::NotFound(desired.name.clone()))
                        })?;
                    (r, false)
                }
                Err(e) => return Err(Error::backend("CreateRepository")(e)),
            }
        }
    };

    let tags = if created {
        desired.tags.clone()
    } else {
        match backend.list_tags(&target, &observed.arn).await {
            Ok(t) => t,
            Err(e) => {
                forget_if_gone(ctx, &target, &desired.name, &e).await;
                return Err(Error::backend("ListTagsForResource")(e));
            }
        }
    };
    // An observer never writes, so it may watch a repository another object owns.
    let ownership = if observe_only {
        Ownership::Unowned
    } else {
        check_owner(&desired, &tags)?
    };
    if ownership == Ownership::Unowned
        && !created
        && !observe_only
        && repo.spec.adoption == Adoption::CreateOnly
    {
        return Err(Error::AlreadyExists(desired.name.clone()));
    }
    let policy = match (&desired.policy, created) {
        (Some(_), false) => backend
            .get_repository_policy(&target, &desired.name)
            .await
            .map_err(Error::backend("GetRepositoryPolicy"))?,
        _ => None,
    };
    let managed: Vec<String> = repo
        .status
        .as_ref()
        .map(|s| s.managed_tag_keys.clone())
        .unwrap_or_default();
    let changes = plan(&desired, &observed, &tags, policy.as_deref(), &managed)?;
    let names: Vec<&'static str> = changes.iter().map(RepositoryChange::operation).collect();
    let adopted = ownership == Ownership::Unowned && !created && !observe_only;
    if observe_only || changes.is_empty() {
        return Ok(Synced {
            repo: observed,
            created,
            adopted: false,
            changes: names,
            observe_only,
        });
    }
    for change in &changes {
        if let Err(e) = backend.apply_change(&target, &observed, change).await {
            forget_if_gone(ctx, &target, &desired.name, &e).await;
            return Err(Error::backend(change.operation())(e));
        }
    }
    // Re-read what the writes produced so the cache does not serve the old state.
    let refreshed = backend
        .describe_repository(&target, &desired.name)
        .await
        .map_err(Error::backend("DescribeRepositories"))?
        .unwrap_or(observed);
    ctx.repositories.put(&target, refreshed.clone()).await;
    Ok(Synced {
        repo: refreshed,
        created,
        adopted,
        changes: names,
        observe_only,
    })
}

async fn cleanup<B: RegistryBackend>(
    repo: &Repository,
    api: &Api<Repository>,
    ctx: &Context<B>,
) -> Result<Action> {
    ctx.backoff.reset(&object_key(repo));
    let keep = repo.spec.deletion_policy == DeletionPolicy::Retain
        || repo.spec.management_policy == ManagementPolicy::ObserveOnly;
    if keep {
        return Ok(Action::await_change());
    }
    let result = delete(repo, ctx).await;
    if let Err(e) = &result {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let mut status = repo.status.clone().unwrap_or_default();
        let prev = status.conditions.clone();
        status.observed_generation = repo.meta().generation;
        status.conditions = summarize(&prev, repo.meta().generation, &Outcome::Failed(e), &now);
        let previous = ready_reason(repo.status.as_ref().map(|s| s.conditions.as_slice()));
        if let Err(w) = write_fields(api, repo, &status, &ctx.field_manager(CONTROLLER), &|k| {
            k != "lifecyclePolicy"
        })
        .await
        {
            tracing::warn!(error = &w as &dyn std::error::Error, "status write failed");
        }
        let recorder = ctx.recorder(CONTROLLER);
        publish_outcome(
            &recorder,
            &repo.object_ref(&()),
            previous.as_deref(),
            Err(e),
            "Cleanup",
        )
        .await;
    }
    result.map(|()| Action::await_change())
}

async fn delete<B: RegistryBackend>(repo: &Repository, ctx: &Context<B>) -> Result<()> {
    let (_, target) = dereference(repo, ctx).await?;
    let desired = desired(repo, &ctx.tunables.cluster_id)?;
    let backend = ctx.backend.as_ref();
    let Some(observed) = backend
        .describe_repository(&target, &desired.name)
        .await
        .map_err(Error::backend("DescribeRepositories"))?
    else {
        return Ok(()); // already gone
    };
    let tags = match backend.list_tags(&target, &observed.arn).await {
        Ok(t) => t,
        Err(BackendError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(Error::backend("ListTagsForResource")(e)),
    };
    if check_owner(&desired, &tags)? == Ownership::Unowned {
        // Never ours (an adoption that did not complete): leave it.
        return Ok(());
    }
    if !repo.spec.force_delete {
        let images = backend
            .count_images(&target, &desired.name)
            .await
            .map_err(Error::backend("ListImages"))?;
        if images > 0 {
            return Err(Error::RepositoryNotEmpty {
                name: desired.name,
                images,
            });
        }
    }
    match backend
        .delete_repository(&target, &desired.name, repo.spec.force_delete)
        .await
    {
        Ok(_) => {}
        Err(BackendError::NotEmpty(_)) => {
            let images = backend.count_images(&target, &desired.name).await.unwrap_or(1);
            return Err(Error::RepositoryNotEmpty {
                name: desired.name,
                images,
            });
        }
        Err(e) => return Err(Error::backend("DeleteRepository")(e)),
    }
    ctx.repositories.remove(&target, &desired.name).await;
    let recorder = ctx.recorder(CONTROLLER);
    let note = format!("Deleted ECR repository {}", desired.name);
    publish(
        &recorder,
        &repo.object_ref(&()),
        EventType::Normal,
        "Deleted",
        note,
        "Cleanup",
    )
    .await;
    Ok(())
}

/// Pure: the next status.
fn next_status(repo: &Repository, outcome: &Result<Synced>, now: &Time) -> RepositoryStatus {
    let prev = repo.status.clone().unwrap_or_default();
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
            status.created_at = r
                .created_at
                .and_then(|t| k8s_openapi::jiff::Timestamp::try_from(t).ok())
                .map(Time);
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

/// The event of a reconcile: created, adopted, updated (naming the calls), or a new error.
fn event(outcome: &Result<Synced>) -> std::result::Result<Option<(&'static str, String)>, &Error> {
    outcome.as_ref().map(|s| {
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
    })
}

#[cfg(test)]
mod tests;
