//! Reconciles `PublicRepository` objects against ECR Public (`public.ecr.aws`).
//!
//! dereference (the Registry, tenancy, its identity in us-east-1: `ecr_public::public_target`)
//! → desired (pure) → the logo from its ConfigMap or Secret, checked (pure) → the public
//! registry (alias, display name) and the repository → [`first_step`] (pure: observe, or
//! create) → catalog data, tags and policy → [`decide`] (pure: ownership, adoption, the changes)
//! → act. The driver writes the status. Wiring and I/O only: the decisions are in
//! [`crate::decide::public_repository`].

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Controller;

use super::context::{Context, object_key};
use super::dereference::Resolved;
use super::driver::{self, Drift, Note, Reconciler};
use super::triggers;
use crate::api::v1alpha1::{DeletionPolicy, ManagementPolicy, PublicRepository, PublicRepositoryStatus};
use crate::backend::ecr_public::{PublicChange, public_target};
use crate::backend::{BackendError, RegistryBackend, Target};
use crate::decide::public_repository::{
    self as decide, First, Logo, Observed, Step, Synced, check_desired, check_logo, desired, first_step, mode,
};
use crate::decide::repository::{Ownership, ownership};
use crate::error::{Error, Result};

pub const CONTROLLER: &str = "public-repository";

/// Runs the PublicRepository controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, own) = triggers::primary::<PublicRepositoryController, B>(&ctx, triggers::own);
    let registries = triggers::registry_changes(&ctx, triggers::registry);
    let controller = Controller::for_stream(own, store.clone())
        // A Registry that becomes Ready, changes identity or goes re-queues its PublicRepositories.
        .watches_stream(registries, move |registry| {
            triggers::users_of(&store, &registry, |r: &PublicRepository, name| {
                r.spec.registry_ref.name == name
            })
        });
    driver::run::<PublicRepositoryController, B>(controller, ctx, shutdown).await;
}

/// The PublicRepository controller.
pub struct PublicRepositoryController;

impl Reconciler for PublicRepositoryController {
    type Kind = PublicRepository;
    type Status = PublicRepositoryStatus;
    type Synced = Synced;
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: bool = true;

    fn api(client: &kube::Client, repo: &PublicRepository) -> Api<PublicRepository> {
        Api::namespaced(client.clone(), &repo.namespace().unwrap_or_default())
    }

    fn suspended(repo: &PublicRepository) -> bool {
        repo.spec.suspend
    }

    fn stored_status(repo: &PublicRepository) -> Option<PublicRepositoryStatus> {
        repo.status.clone()
    }

    async fn sync<B: RegistryBackend>(repo: &PublicRepository, ctx: &Context<B>) -> Result<Synced> {
        sync(repo, ctx).await
    }

    async fn cleanup<B: RegistryBackend>(repo: &PublicRepository, ctx: &Context<B>) -> Result<Option<Note>> {
        if repo.spec.management_policy == ManagementPolicy::ObserveOnly
            || repo.spec.deletion_policy == DeletionPolicy::Retain
        {
            // Retain leaves the repository, its images and its owner tag: a new object in the
            // same namespace and name takes it back; any other is refused (OwnedElsewhere).
            return Ok(None);
        }
        delete(repo, ctx).await
    }

    fn next_status(repo: &PublicRepository, outcome: &Result<Synced>, now: &Time) -> PublicRepositoryStatus {
        decide::next_status(repo, outcome, now)
    }

    fn event(_: &PublicRepository, s: &Synced) -> Option<Note> {
        decide::event(s)
    }

    fn requeue<B: RegistryBackend>(repo: &PublicRepository, _: &Synced, ctx: &Context<B>) -> Duration {
        match Self::drift(repo) {
            Some(d) => ctx.drift_delay(d.interval.as_ref(), &d.registry, &object_key(repo), d.calls, true),
            None => ctx.interval(repo.spec.interval.as_ref(), &object_key(repo)),
        }
    }

    /// A check reads the registry (DescribeRegistries, GetRegistryCatalogData), the repository,
    /// its tags, and, when the spec sets them, its catalog data and policy.
    fn drift(repo: &PublicRepository) -> Option<Drift> {
        Some(Drift {
            registry: repo.spec.registry_ref.name.clone(),
            calls: 4 + u32::from(repo.spec.catalog_data.is_some()) + u32::from(repo.spec.policy.is_some()),
            interval: repo.spec.interval.clone(),
        })
    }
}

/// The Registry, allowed for this namespace and name, and its ECR Public target.
async fn resolve<B: RegistryBackend>(
    repo: &PublicRepository,
    ctx: &Context<B>,
    name: &str,
) -> Result<Target> {
    let namespace = repo.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let Resolved { target, .. } = ctx
        .resolve(&repo.spec.registry_ref.name, Some(&namespace), Some(name))
        .await?;
    Ok(public_target(&target))
}

/// I/O: the logo's bytes from its ConfigMap or Secret, checked; `None` without a logo.
async fn read_logo<B: RegistryBackend>(repo: &PublicRepository, ctx: &Context<B>) -> Result<Option<Logo>> {
    let Some(source) = repo.spec.catalog_data.as_ref().and_then(|c| c.logo.as_ref()) else {
        return Ok(None);
    };
    let namespace = repo.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let (kind, key_ref, bytes) = if let Some(r) = &source.config_map_key_ref {
        let found = Api::<ConfigMap>::namespaced(ctx.client.clone(), &namespace)
            .get_opt(&r.name)
            .await
            .map_err(Error::kube("read the ConfigMap of spec.catalogData.logo"))?;
        let bytes = found.map(|cm| {
            let binary = cm.binary_data.unwrap_or_default().remove(&r.key).map(|b| b.0);
            binary.or_else(|| cm.data.unwrap_or_default().remove(&r.key).map(String::into_bytes))
        });
        ("ConfigMap", r, bytes)
    } else if let Some(r) = &source.secret_key_ref {
        let found = Api::<Secret>::namespaced(ctx.client.clone(), &namespace)
            .get_opt(&r.name)
            .await
            .map_err(Error::kube("read the Secret of spec.catalogData.logo"))?;
        let bytes = found.map(|s| s.data.unwrap_or_default().remove(&r.key).map(|b| b.0));
        ("Secret", r, bytes)
    } else {
        return Ok(None); // admission requires one of them
    };
    let name = format!("{namespace}/{}", key_ref.name);
    let Some(bytes) = bytes else {
        return Err(Error::DependencyNotFound { kind, name });
    };
    let bytes = bytes.ok_or_else(|| {
        Error::InvalidSpec(format!(
            "{kind} {name} has no key {} (spec.catalogData.logo)",
            key_ref.key
        ))
    })?;
    check_logo(&format!("{kind} {name} key {}", key_ref.key), bytes).map(Some)
}

async fn sync<B: RegistryBackend>(repo: &PublicRepository, ctx: &Context<B>) -> Result<Synced> {
    let desired = desired(repo, &ctx.tunables.cluster_id)?;
    check_desired(&desired)?;
    let logo = read_logo(repo, ctx).await?;
    let target = resolve(repo, ctx, &desired.name).await?;
    let mode = mode(repo);
    let backend = ctx.backend.as_ref();
    let registry = backend
        .describe_public_registry(&target)
        .await
        .map_err(Error::backend("ecr-public:DescribeRegistries"))?;
    let listed = backend
        .describe_public_repository(&target, &desired.name)
        .await
        .map_err(Error::backend("ecr-public:DescribeRepositories"))?;
    let (remote, created) = match first_step(&desired, listed, mode, logo.as_ref())? {
        First::Exists(r) => (r, false),
        First::Create(new) => match backend.create_public_repository(&target, &new).await {
            Ok(r) => (r, true),
            // Created meanwhile (by us before a crash, or by someone else): ownership decides.
            Err(BackendError::AlreadyExists(_)) => {
                let r = backend
                    .describe_public_repository(&target, &desired.name)
                    .await
                    .map_err(Error::backend("ecr-public:DescribeRepositories"))?
                    .ok_or_else(|| {
                        Error::backend("ecr-public:CreateRepository")(BackendError::NotFound(
                            desired.name.clone(),
                        ))
                    })?;
                (r, false)
            }
            Err(e) => return Err(Error::backend("ecr-public:CreateRepository")(e)),
        },
    };
    let observed = if created {
        Observed {
            catalog: crate::backend::ecr_public::RemotePublicCatalog {
                catalog: desired.catalog.clone().unwrap_or_default(),
                logo_url: logo.as_ref().map(|l| l.sha256.clone()),
            },
            tags: desired.tags.clone(),
            policy: None,
            created,
        }
    } else {
        observe(ctx, &target, &desired, &remote).await?
    };
    let stored = repo.status.as_ref();
    let managed = stored.map(|s| s.managed_tag_keys.clone()).unwrap_or_default();
    let sent_logo = if created {
        logo.as_ref().map(|l| l.sha256.as_str())
    } else {
        stored.and_then(|s| s.logo_sha256.as_deref())
    };
    let logo_sha256 = logo.as_ref().map(|l| l.sha256.clone());
    let synced = |changes, adopted, observe_only, repo| Synced {
        repo,
        registry: registry.clone(),
        created,
        adopted,
        changes,
        observe_only,
        logo_sha256: logo_sha256.clone(),
    };
    match decide::decide(&desired, &observed, mode, logo.as_ref(), sent_logo, &managed)? {
        Step::Observe { drift } => Ok(synced(drift, false, true, remote)),
        Step::Apply { adopt, changes } => {
            for change in &changes {
                backend
                    .apply_public_change(&target, &remote, change)
                    .await
                    .map_err(Error::backend(change.operation()))?;
            }
            Ok(synced(
                changes.iter().map(PublicChange::operation).collect(),
                adopt,
                false,
                remote,
            ))
        }
    }
}

/// I/O: the catalog data (when the spec sets it), tags and policy (when the spec sets one).
async fn observe<B: RegistryBackend>(
    ctx: &Context<B>,
    target: &Target,
    desired: &decide::Desired,
    remote: &crate::backend::ecr_public::RemotePublicRepository,
) -> Result<Observed> {
    let backend = ctx.backend.as_ref();
    let catalog = match desired.catalog {
        Some(_) => backend
            .get_public_catalog(target, &desired.name)
            .await
            .map_err(Error::backend("ecr-public:GetRepositoryCatalogData"))?,
        None => Default::default(),
    };
    let tags = backend
        .list_public_tags(target, &remote.arn)
        .await
        .map_err(Error::backend("ecr-public:ListTagsForResource"))?;
    let policy = match desired.policy {
        Some(_) => backend
            .get_public_policy(target, &desired.name)
            .await
            .map_err(Error::backend("ecr-public:GetRepositoryPolicy"))?,
        None => None,
    };
    Ok(Observed {
        catalog,
        tags,
        policy,
        created: false,
    })
}

/// `deletionPolicy: Delete`: deletes the public repository when it is ours, refusing one that
/// still holds images unless `forceDelete` (the Repository's guard).
async fn delete<B: RegistryBackend>(repo: &PublicRepository, ctx: &Context<B>) -> Result<Option<Note>> {
    let desired = desired(repo, &ctx.tunables.cluster_id)?;
    let target = resolve(repo, ctx, &desired.name).await?;
    let backend = ctx.backend.as_ref();
    let Some(found) = backend
        .describe_public_repository(&target, &desired.name)
        .await
        .map_err(Error::backend("ecr-public:DescribeRepositories"))?
    else {
        return Ok(None); // already gone
    };
    let tags = match backend.list_public_tags(&target, &found.arn).await {
        Ok(t) => t,
        Err(BackendError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(Error::backend("ecr-public:ListTagsForResource")(e)),
    };
    if ownership(&desired.name, &desired.owner, None, &tags)? != Ownership::Ours {
        return Ok(None); // never ours (an adoption that did not complete): leave it
    }
    let count = || async {
        backend
            .count_public_images(&target, &desired.name)
            .await
            .map_err(Error::backend("ecr-public:DescribeImages"))
    };
    let not_empty = |images| Error::RepositoryNotEmpty {
        name: desired.name.clone(),
        images,
    };
    if !repo.spec.force_delete {
        let images = count().await?;
        if images > 0 {
            return Err(not_empty(images));
        }
    }
    match backend
        .delete_public_repository(&target, &desired.name, repo.spec.force_delete)
        .await
    {
        Ok(_) => {}
        // An image arrived between the count and the delete: count again, and say how many.
        Err(BackendError::NotEmpty(_)) => return Err(not_empty(count().await?.max(1))),
        Err(e) => return Err(Error::backend("ecr-public:DeleteRepository")(e)),
    }
    Ok(Some((
        "Deleted",
        format!("Deleted public repository {}", found.uri),
    )))
}
