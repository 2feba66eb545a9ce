//! Deletion protection: a Registry stays (behind its finalizer) while any object still uses it,
//! because their own cleanup needs it: a Repository with `deletionPolicy: Delete` deletes its ECR
//! repository through it, a LifecyclePolicy removes the policies it put there, a ReplicationRule's
//! entry leaves the replication configuration through it, a PublicRepository deletes its ECR
//! Public repository with its identity, and a pull secret would be left naming nothing. Without this, deleting a Registry in use left a Repository Terminating (and its
//! namespace with it) until a Registry of that name reappeared. While protected, the Registry keeps
//! serving its users (their cleanup included) and says who holds it.

use std::sync::Arc;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use serde::de::DeserializeOwned;

use crate::api::v1alpha1::{
    ClusterPullSecret, LifecyclePolicy, PullSecret, Registry, ReplicationRule, Repository,
};
use crate::backend::RegistryBackend;
use crate::controllers::context::Context;
use crate::controllers::triggers;
pub use crate::decide::in_use::{Listed, message, users, with_recorded_rules};
use crate::error::{Error, Result};

async fn list<K>(ctx: &Context<impl RegistryBackend>) -> Result<Vec<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    // Consistent LISTs: a user created a moment ago must not be missed. Only this shard's: a
    // user in another shard cannot name this Registry (to its own instance, it does not exist).
    Ok(Api::<K>::all(ctx.client.clone())
        .list(&ctx.tunables.watch_selector.list_params())
        .await
        .map_err(Error::kube("list the Registry's users"))?
        .items)
}

/// I/O: refuses to let the Registry go while anything uses it.
pub async fn check<B: RegistryBackend>(registry: &Registry, ctx: &Context<B>) -> Result<()> {
    let listed = Listed {
        repositories: list(ctx).await?,
        policies: list(ctx).await?,
        rules: list(ctx).await?,
        pull_secrets: list(ctx).await?,
        cluster_pull_secrets: list(ctx).await?,
        public_repositories: list(ctx).await?,
    };
    let name = registry.name_any();
    let users = with_recorded_rules(users(&name, &listed), registry);
    if users.is_empty() {
        Ok(())
    } else {
        Err(Error::InUse(message(&name, &users)))
    }
}

/// The Registries a pull secret names: `registries`, and `ecrPublic.registry`.
fn with_public(registries: &[String], public: Option<&crate::api::v1alpha1::EcrPublicLogin>) -> Vec<String> {
    registries
        .iter()
        .cloned()
        .chain(public.map(|p| p.registry.clone()))
        .collect()
}

/// The Registry to look at again when one of its users goes: only while that Registry is being
/// deleted, so users coming and going never cost a Registry reconcile otherwise.
fn deleting_registry<B: RegistryBackend>(ctx: &Context<B>, names: &[String]) -> Vec<ObjectRef<Registry>> {
    names
        .iter()
        .map(|n| ObjectRef::<Registry>::new(n))
        .filter(|r| {
            ctx.registries
                .get(r)
                .is_some_and(|reg| reg.metadata.deletion_timestamp.is_some())
        })
        .collect()
}

/// Adds the watches that wake a Registry being deleted when its users go (and the Registries of
/// one registry when a ReplicationRule of one of them comes or goes).
pub fn watch_users<B: RegistryBackend>(
    controller: kube::runtime::Controller<Registry>,
    ctx: &Arc<Context<B>>,
) -> kube::runtime::Controller<Registry> {
    // Only deletions matter: the key of every object is constant, so only first sight and
    // deletion pass.
    fn gone<K>(_: &K) -> u64 {
        0
    }
    let (c1, c2, c3, c4, c5) = (ctx.clone(), ctx.clone(), ctx.clone(), ctx.clone(), ctx.clone());
    let c6 = ctx.clone();
    controller
        .watches_stream(triggers::dependency::<Repository, B>(ctx, gone), move |r| {
            deleting_registry(&c1, std::slice::from_ref(&r.spec.registry_ref.name))
        })
        .watches_stream(triggers::dependency::<ReplicationRule, B>(ctx, gone), move |r| {
            let name = &r.spec.registry_ref.name;
            let mut refs = deleting_registry(&c2, std::slice::from_ref(name));
            // A rule created or deleted may move the ownership of the replication configuration
            // between Registries of one registry (see `owners`): they report it.
            let neighbours = super::owners::neighbours_of(&c2.registries, name);
            if !neighbours.is_empty() {
                refs.push(ObjectRef::new(name));
                refs.extend(neighbours);
            }
            refs
        })
        .watches_stream(triggers::dependency::<PullSecret, B>(ctx, gone), move |p| {
            deleting_registry(&c3, &with_public(&p.spec.registries, p.spec.ecr_public.as_ref()))
        })
        .watches_stream(
            triggers::dependency::<ClusterPullSecret, B>(ctx, gone),
            move |p| deleting_registry(&c4, &with_public(&p.spec.registries, p.spec.ecr_public.as_ref())),
        )
        .watches_stream(triggers::dependency::<LifecyclePolicy, B>(ctx, gone), move |p| {
            let names: Vec<String> = p
                .status
                .iter()
                .flat_map(|s| &s.repositories)
                .filter_map(|t| t.registry.clone())
                .collect();
            deleting_registry(&c5, &names)
        })
        .watches_stream(
            triggers::dependency::<crate::api::v1alpha1::PublicRepository, B>(ctx, gone),
            move |r| deleting_registry(&c6, std::slice::from_ref(&r.spec.registry_ref.name)),
        )
}
