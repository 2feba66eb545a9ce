//! Deletion protection: a Registry stays (behind its finalizer) while any object still uses it,
//! because their own cleanup needs it: a Repository with `deletionPolicy: Delete` deletes its ECR
//! repository through it, a LifecyclePolicy removes the policies it put there, a ReplicationRule's
//! entry leaves the replication configuration through it, and a pull secret would be left naming
//! nothing. Without this, deleting a Registry in use left a Repository Terminating (and its
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
use crate::error::{Error, Result};

/// At most this many users are named in the message.
const NAMED: usize = 5;

/// Everything that may use a Registry, as listed.
#[derive(Default)]
pub struct Listed {
    pub repositories: Vec<Repository>,
    pub policies: Vec<LifecyclePolicy>,
    pub rules: Vec<ReplicationRule>,
    pub pull_secrets: Vec<PullSecret>,
    pub cluster_pull_secrets: Vec<ClusterPullSecret>,
}

/// Pure: the objects that use the Registry `name`, as `Kind namespace/name`, sorted.
pub fn users(name: &str, listed: &Listed) -> Vec<String> {
    let scoped = |kind: &str, obj: &dyn Named| match obj.namespace() {
        Some(ns) => format!("{kind} {ns}/{}", obj.name()),
        None => format!("{kind} {}", obj.name()),
    };
    let mut users: Vec<String> = Vec::new();
    users.extend(
        listed
            .repositories
            .iter()
            .filter(|r| r.spec.registry_ref.name == name)
            .map(|r| scoped("Repository", r)),
    );
    users.extend(
        listed
            .policies
            .iter()
            .filter(|p| {
                p.status
                    .iter()
                    .flat_map(|s| &s.repositories)
                    .any(|t| t.registry.as_deref() == Some(name))
            })
            .map(|p| scoped("LifecyclePolicy", p)),
    );
    users.extend(
        listed
            .rules
            .iter()
            .filter(|r| r.spec.registry_ref.name == name)
            .map(|r| scoped("ReplicationRule", r)),
    );
    users.extend(
        listed
            .pull_secrets
            .iter()
            .filter(|p| p.spec.registries.iter().any(|r| r == name))
            .map(|p| scoped("PullSecret", p)),
    );
    users.extend(
        listed
            .cluster_pull_secrets
            .iter()
            .filter(|p| p.spec.registries.iter().any(|r| r == name))
            .map(|p| scoped("ClusterPullSecret", p)),
    );
    users.sort();
    users
}

/// Pure: adds the rules whose entries the replication controller recorded in ECR and has not
/// removed yet (a rule deleted a moment ago): the Registry stays until the merge, which keeps
/// running while the Registry is being deleted, has taken them out of ECR.
pub fn with_recorded_rules(mut users: Vec<String>, registry: &Registry) -> Vec<String> {
    let recorded = registry
        .status
        .iter()
        .filter_map(|s| s.replication.as_ref())
        .flat_map(|r| &r.rules);
    for rule in recorded {
        let user = format!("ReplicationRule {}", rule.name);
        if !users.contains(&user) {
            users.push(format!("{user} (its entry in ECR's replication configuration)"));
        }
    }
    users.sort();
    users
}

/// Pure: what the Registry's status says while users hold it.
pub fn message(name: &str, users: &[String]) -> String {
    let mut named = users.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
    if users.len() > NAMED {
        named.push_str(&format!(" and {} more", users.len() - NAMED));
    }
    format!(
        "Registry {name} is still used by {} object(s): {named}. It is deleted once they are gone: delete them first (their cleanup needs this Registry), or point them at another Registry",
        users.len()
    )
}

/// A kind's name and namespace, for [`users`].
trait Named {
    fn name(&self) -> String;
    fn namespace(&self) -> Option<String>;
}

impl<K: ResourceExt> Named for K {
    fn name(&self) -> String {
        self.name_any()
    }
    fn namespace(&self) -> Option<String> {
        ResourceExt::namespace(self)
    }
}

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
    };
    let name = registry.name_any();
    let users = with_recorded_rules(users(&name, &listed), registry);
    if users.is_empty() {
        Ok(())
    } else {
        Err(Error::InUse(message(&name, &users)))
    }
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
            deleting_registry(&c3, &p.spec.registries)
        })
        .watches_stream(
            triggers::dependency::<ClusterPullSecret, B>(ctx, gone),
            move |p| deleting_registry(&c4, &p.spec.registries),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse<K: DeserializeOwned>(v: serde_json::Value) -> K {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn every_kind_that_names_the_registry_holds_it_and_the_message_names_them() {
        let listed = Listed {
            repositories: vec![
                parse(
                    json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": {"registryRef": {"name": "prod"}}}),
                ),
                parse(
                    json!({"metadata": {"name": "api", "namespace": "shop"}, "spec": {"registryRef": {"name": "other"}}}),
                ),
            ],
            policies: vec![
                parse(
                    json!({"metadata": {"name": "keep", "namespace": "shop"}, "spec": {"rules": []},
                    "status": {"repositories": [{"name": "web", "ecrName": "shop/web", "registry": "prod", "state": "Applied"}]}}),
                ),
                parse(json!({"metadata": {"name": "fresh", "namespace": "shop"}, "spec": {"rules": []}})),
            ],
            rules: vec![parse(
                json!({"metadata": {"name": "to-eu"}, "spec": {"registryRef": {"name": "prod"},
                "destinations": [{"region": "eu-west-1", "registryId": "123456789012"}]}}),
            )],
            pull_secrets: vec![parse(
                json!({"metadata": {"name": "pull", "namespace": "shop"}, "spec": {"registries": ["other", "prod"]}}),
            )],
            cluster_pull_secrets: vec![parse(
                json!({"metadata": {"name": "all"}, "spec": {"registries": ["other"],
                "namespaceSelector": {}}}),
            )],
        };
        let users = users("prod", &listed);
        assert_eq!(
            users,
            [
                "LifecyclePolicy shop/keep",
                "PullSecret shop/pull",
                "ReplicationRule to-eu",
                "Repository shop/web"
            ]
        );
        assert!(super::users("unused", &listed).is_empty());
        let m = message("prod", &users);
        assert!(
            m.contains("4 object(s): LifecyclePolicy shop/keep, PullSecret shop/pull"),
            "{m}"
        );
        // A rule deleted a moment ago still has its entry recorded: it holds the Registry too.
        let registry: Registry = parse(
            json!({"metadata": {"name": "prod"}, "spec": {"region": "eu-west-1"},
            "status": {"replication": {"rules": [{"name": "to-eu", "fingerprint": "a"}, {"name": "gone", "fingerprint": "b"}]}}}),
        );
        let held = with_recorded_rules(users.clone(), &registry);
        assert_eq!(held.len(), 5, "{held:?}");
        assert!(
            held.contains(&"ReplicationRule gone (its entry in ECR's replication configuration)".to_owned())
        );
        assert!(
            with_recorded_rules(
                vec![],
                &parse(json!({"metadata": {"name": "x"}, "spec": {"region": "eu-west-1"}}))
            )
            .is_empty()
        );
        let many: Vec<String> = (0..8).map(|i| format!("Repository ns/r{i}")).collect();
        assert!(message("prod", &many).contains("r4 and 3 more"));
    }
}
