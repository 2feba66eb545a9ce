//! Reconciles `Repository` objects against ECR.
//!
//! dereference (the Registry, tenancy, the target) → desired (pure) → the registry's listing
//! (cached briefly) → [`first_step`] (pure: observe, or create) → tags and policy →
//! [`decide`] (pure: ownership, adoption, the changes) → act. The driver writes the status.

mod handover;
mod insight;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Controller;

pub use crate::decide::repository::{
    Desired, First, Mode, Observed, Ownership, Step, Synced, check_desired, check_owner, decide, desired,
    first_step, owner_id, plan,
};

use super::context::{Context, object_key};
use super::dereference::Resolved;
use super::driver::{self, Drift, Note, Reconciler};
use super::triggers;
use crate::api::v1alpha1::{DeletionPolicy, ManagementPolicy, Repository, RepositoryStatus};
use crate::backend::{BackendError, RegistryBackend, RepositoryChange, Target};
use crate::decide::repository as decide;
use crate::error::{Error, Result};

pub const CONTROLLER: &str = "repository";
pub use crate::decide::repository::DRIFTED;

/// Runs the Repository controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, own) = triggers::primary::<RepositoryController, B>(&ctx, triggers::own);
    let registries = triggers::registry_changes(&ctx, triggers::registry);
    let controller = Controller::for_stream(own, store.clone())
        // A Registry that becomes Ready, changes host or spec, or goes re-queues every Repository on it.
        .watches_stream(registries, move |registry| {
            triggers::users_of(&store, &registry, |r: &Repository, name| r.spec.registry_ref.name == name)
        });
    driver::run::<RepositoryController, B>(controller, ctx, shutdown).await;
}

/// The Repository controller.
pub struct RepositoryController;

impl Reconciler for RepositoryController {
    type Kind = Repository;
    type Status = RepositoryStatus;
    type Synced = Synced;
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: bool = true;

    fn api(client: &kube::Client, repo: &Repository) -> Api<Repository> {
        Api::namespaced(client.clone(), &repo.namespace().unwrap_or_default())
    }

    fn suspended(repo: &Repository) -> bool {
        repo.spec.suspend
    }

    fn stored_status(repo: &Repository) -> Option<RepositoryStatus> {
        decide::stored_status(repo)
    }

    async fn sync<B: RegistryBackend>(repo: &Repository, ctx: &Context<B>) -> Result<Synced> {
        sync(repo, ctx).await
    }

    async fn cleanup<B: RegistryBackend>(repo: &Repository, ctx: &Context<B>) -> Result<Option<Note>> {
        ctx.metrics
            .insight()
            .forget(&repo.namespace().unwrap_or_default(), &repo.name_any());
        if repo.spec.management_policy == ManagementPolicy::ObserveOnly {
            return Ok(None); // never ours to write
        }
        if repo.spec.deletion_policy == DeletionPolicy::Retain {
            return handover::release(repo, ctx).await;
        }
        delete(repo, ctx).await
    }

    fn next_status(repo: &Repository, outcome: &Result<Synced>, now: &Time) -> RepositoryStatus {
        let mut status = decide::next_status(repo, outcome, now);
        // status.insight: what this sync read (on failure, the stored one stays).
        if let Ok(synced) = outcome {
            status.insight = synced.insight.clone();
        }
        status
    }

    fn event(_: &Repository, s: &Synced) -> Option<Note> {
        decide::event(s)
    }

    fn requeue<B: RegistryBackend>(repo: &Repository, _: &Synced, ctx: &Context<B>) -> Duration {
        let drift = Self::drift(repo);
        match &drift {
            Some(d) => ctx.drift_delay(d.interval.as_ref(), &d.registry, &object_key(repo), d.calls, true),
            None => ctx.interval(repo.spec.interval.as_ref(), &object_key(repo)),
        }
    }

    /// A check reads the repository's tags (ListTagsForResource), when the spec sets one its
    /// policy (GetRepositoryPolicy), and its images for `status.insight` (DescribeImages: one
    /// page for up to 1,000 images, more pages only for larger repositories, up to
    /// `--insight-pages-per-pass`); the registry's listing (DescribeRepositories, pages of 1,000,
    /// once per `--repository-cache-ttl`) is shared by all and not counted per object.
    fn drift(repo: &Repository) -> Option<Drift> {
        Some(Drift {
            registry: repo.spec.registry_ref.name.clone(),
            calls: 2 + u32::from(repo.spec.policy.is_some()),
            interval: repo.spec.interval.clone(),
        })
    }
}

/// The Registry, allowed for this namespace and name, and its target.
async fn resolve<B: RegistryBackend>(repo: &Repository, ctx: &Context<B>, name: &str) -> Result<Target> {
    Ok(resolved(repo, ctx, name).await?.target)
}

async fn resolved<B: RegistryBackend>(repo: &Repository, ctx: &Context<B>, name: &str) -> Result<Resolved> {
    let namespace = repo.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    ctx.resolve(&repo.spec.registry_ref.name, Some(&namespace), Some(name))
        .await
}

/// Removes a repository from the cache when ECR says it is gone, so the retry describes it anew.
async fn forget_if_gone<B: RegistryBackend>(ctx: &Context<B>, target: &Target, name: &str, e: &BackendError) {
    if matches!(e, BackendError::NotFound(_)) {
        ctx.cache.forget(target, name).await;
    }
}

/// Converges the repository, then reads what it holds when that is due (`status.insight`).
async fn sync<B: RegistryBackend>(repo: &Repository, ctx: &Context<B>) -> Result<Synced> {
    let desired = desired(repo, &ctx.tunables.cluster_id)?;
    check_desired(&desired)?;
    let Resolved { target, registry } = resolved(repo, ctx, &desired.name).await?;
    let mut synced = converge(repo, ctx, desired, &target).await?;
    synced.insight = insight::refresh(repo, &registry, ctx, &target, &synced.repo.name).await?;
    Ok(synced)
}

async fn converge<B: RegistryBackend>(
    repo: &Repository,
    ctx: &Context<B>,
    desired: Desired,
    target: &Target,
) -> Result<Synced> {
    let target = target.clone();
    let mode = Mode::of(repo);
    let backend = ctx.backend.as_ref();
    let listed = ctx
        .cache
        // Only an observer must be sure a repository is missing; a create finds out anyway.
        .repository(&target, &desired.name, mode.observe_only)
        .await
        .map_err(Error::backend("DescribeRepositories"))?;

    let (remote, created) = match first_step(&desired, listed, mode)? {
        First::Exists(r) => (r, false),
        First::Create(new) => match backend.create_repository(&target, &new).await {
            Ok(r) => {
                ctx.cache.remember(&target, r.clone()).await;
                (r, true)
            }
            // Created meanwhile (by us before a crash, or by someone else): ownership decides.
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
        },
    };

    let observed = if created {
        Observed {
            tags: desired.tags.clone(),
            policy: None,
            created,
        }
    } else {
        let tags = match backend.list_tags(&target, &remote.arn).await {
            Ok(t) => t,
            Err(e) => {
                forget_if_gone(ctx, &target, &desired.name, &e).await;
                return Err(Error::backend("ListTagsForResource")(e));
            }
        };
        let policy = match desired.policy {
            Some(_) => backend
                .get_repository_policy(&target, &desired.name)
                .await
                .map_err(Error::backend("GetRepositoryPolicy"))?,
            None => None,
        };
        Observed {
            tags,
            policy,
            created,
        }
    };
    let managed: Vec<String> = repo
        .status
        .as_ref()
        .map(|s| s.managed_tag_keys.clone())
        .unwrap_or_default();
    let (adopt, changes) = match decide(&desired, &remote, &observed, mode, &managed)? {
        Step::Observe { drift } => {
            return Ok(Synced {
                repo: remote,
                created,
                adopted: false,
                changes: drift,
                observe_only: true,
                insight: None,
            });
        }
        Step::Apply { adopt, from, changes } => {
            if let Some(from) = &from {
                handover::check_previous_owner_gone(ctx, &desired.name, from).await?;
            }
            (adopt || from.is_some(), changes)
        }
    };
    let names: Vec<&'static str> = changes.iter().map(RepositoryChange::operation).collect();
    if changes.is_empty() {
        return Ok(Synced {
            repo: remote,
            created,
            adopted: false,
            changes: names,
            observe_only: false,
            insight: None,
        });
    }
    for change in &changes {
        if let Err(e) = backend.apply_change(&target, &remote, change).await {
            forget_if_gone(ctx, &target, &desired.name, &e).await;
            return Err(Error::backend(change.operation())(e));
        }
    }
    // Re-read what the writes produced so the cache does not serve the old state.
    let refreshed = backend
        .describe_repository(&target, &desired.name)
        .await
        .map_err(Error::backend("DescribeRepositories"))?
        .unwrap_or(remote);
    ctx.cache.remember(&target, refreshed.clone()).await;
    Ok(Synced {
        repo: refreshed,
        created,
        adopted: adopt,
        changes: names,
        observe_only: false,
        insight: None,
    })
}

/// `deletionPolicy: Delete`: deletes the ECR repository when it is ours, refusing one that still
/// holds images unless `forceDelete`.
async fn delete<B: RegistryBackend>(repo: &Repository, ctx: &Context<B>) -> Result<Option<Note>> {
    let desired = desired(repo, &ctx.tunables.cluster_id)?;
    let target = resolve(repo, ctx, &desired.name).await?;
    let backend = ctx.backend.as_ref();
    let Some(observed) = backend
        .describe_repository(&target, &desired.name)
        .await
        .map_err(Error::backend("DescribeRepositories"))?
    else {
        return Ok(None); // already gone
    };
    let tags = match backend.list_tags(&target, &observed.arn).await {
        Ok(t) => t,
        Err(BackendError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(Error::backend("ListTagsForResource")(e)),
    };
    if check_owner(&desired, &tags)? != Ownership::Ours {
        // Never ours (an adoption or takeover that did not complete): leave it.
        return Ok(None);
    }
    let not_empty = |images| Error::RepositoryNotEmpty {
        name: desired.name.clone(),
        images,
    };
    if !repo.spec.force_delete {
        let images = backend
            .count_images(&target, &desired.name)
            .await
            .map_err(Error::backend("ListImages"))?;
        if images > 0 {
            return Err(not_empty(images));
        }
    }
    match backend
        .delete_repository(&target, &desired.name, repo.spec.force_delete)
        .await
    {
        Ok(_) => {}
        // An image arrived between the count and the delete: count again, and say how many.
        Err(BackendError::NotEmpty(_)) => {
            let images = backend
                .count_images(&target, &desired.name)
                .await
                .map_err(Error::backend("ListImages"))?;
            return Err(not_empty(images.max(1)));
        }
        Err(e) => return Err(Error::backend("DeleteRepository")(e)),
    }
    ctx.cache.forget(&target, &desired.name).await;
    Ok(Some((
        "Deleted",
        format!("Deleted ECR repository {}", desired.name),
    )))
}
