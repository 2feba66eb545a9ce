//! Handing an ECR repository from one Repository to another: the release on
//! `deletionPolicy: Retain` (the owner tag goes) and the check behind `spec.takeOverFrom`.

use kube::ResourceExt;
use kube::api::Api;

use super::{Desired, Note, desired, resolve};
use crate::api::v1alpha1::Repository;
use crate::backend::{BackendError, RegistryBackend, RepositoryChange};
use crate::controllers::context::Context;
use crate::error::{Error, Result};

/// `deletionPolicy: Retain`: the repository stays, released: its owner tag (when it is this
/// object's) is removed, so another object may adopt it. A transient failure retries, and so does
/// a Registry that exists but is not Ready (the finalizer stays, `DependencyNotReady`, until it is
/// back: an outage never skips the release); anything else (the Registry does not exist, or ECR
/// refuses) leaves the tag, says so, and lets the object go: the next owner then names this one
/// in `spec.takeOverFrom`.
pub(super) async fn release<B: RegistryBackend>(repo: &Repository, ctx: &Context<B>) -> Result<Option<Note>> {
    let desired = desired(repo, &ctx.tunables.cluster_id)?;
    match untag_owner(repo, ctx, &desired).await {
        Ok(true) => Ok(Some((
            "Released",
            format!(
                "Kept ECR repository {} and removed its owner tag: another Repository may adopt it",
                desired.name
            ),
        ))),
        Ok(false) => Ok(None),
        Err(e) if e.class() == crate::error::ErrorClass::Transient => Err(e),
        Err(e @ Error::DependencyNotReady { .. }) => Err(e),
        Err(e) => Ok(Some((
            "Retained",
            format!(
                "Kept ECR repository {} but could not remove its owner tag ({}); a new owner takes it over with spec.takeOverFrom: {}",
                desired.name,
                crate::error::error_chain(&e),
                repo.namespace()
                    .map(|ns| format!("{ns}/{}", repo.name_any()))
                    .unwrap_or_default()
            ),
        ))),
    }
}

/// Removes the owner tag when it is this object's; returns whether it did.
async fn untag_owner<B: RegistryBackend>(
    repo: &Repository,
    ctx: &Context<B>,
    desired: &Desired,
) -> Result<bool> {
    let target = resolve(repo, ctx, &desired.name).await?;
    let backend = ctx.backend.as_ref();
    let Some(observed) = backend
        .describe_repository(&target, &desired.name)
        .await
        .map_err(Error::backend("DescribeRepositories"))?
    else {
        return Ok(false);
    };
    let tags = match backend.list_tags(&target, &observed.arn).await {
        Ok(t) => t,
        Err(BackendError::NotFound(_)) => return Ok(false),
        Err(e) => return Err(Error::backend("ListTagsForResource")(e)),
    };
    if tags.get(crate::api::OWNER_TAG) != Some(&desired.owner) {
        return Ok(false);
    }
    let untag = RepositoryChange::UntagResource(vec![crate::api::OWNER_TAG.to_owned()]);
    backend
        .apply_change(&target, &observed, &untag)
        .await
        .map_err(Error::backend("UntagResource"))?;
    ctx.cache.forget(&target, &desired.name).await;
    Ok(true)
}

/// `spec.takeOverFrom` names the owner: it must not be a Repository of this cluster that still
/// exists (two objects would then write one repository).
pub(super) async fn check_previous_owner_gone<B: RegistryBackend>(
    ctx: &Context<B>,
    name: &str,
    from: &str,
) -> Result<()> {
    let Some((namespace, object)) = from
        .strip_prefix(&format!("{}/", ctx.tunables.cluster_id))
        .and_then(|rest| rest.split_once('/'))
    else {
        return Ok(()); // another cluster's: the spec's word is all there is
    };
    let previous = Api::<Repository>::namespaced(ctx.client.clone(), namespace)
        .get_opt(object)
        .await
        .map_err(Error::kube("read the previous owner"))?;
    match previous {
        Some(p) if p.metadata.deletion_timestamp.is_none() => Err(Error::OwnedElsewhere {
            name: name.to_owned(),
            owner: format!("{from}, which still exists (delete it first, with deletionPolicy: Retain)"),
        }),
        _ => Ok(()),
    }
}
