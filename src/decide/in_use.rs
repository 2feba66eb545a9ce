//! Pure parts of a Registry's deletion protection (the I/O is `controllers::registry::in_use`):
//! who still uses a Registry, from what was listed, and what its status says. No I/O (see
//! [`crate::decide`]).

use kube::ResourceExt;

use crate::api::v1alpha1::{
    ClusterPullSecret, LifecyclePolicy, PullSecret, Registry, ReplicationRule, Repository,
};

/// At most this many users are named in the message.
pub const NAMED: usize = 5;

/// Everything that may use a Registry, as listed.
#[derive(Default)]
pub struct Listed {
    pub repositories: Vec<Repository>,
    pub policies: Vec<LifecyclePolicy>,
    pub rules: Vec<ReplicationRule>,
    pub pull_secrets: Vec<PullSecret>,
    pub cluster_pull_secrets: Vec<ClusterPullSecret>,
    pub public_repositories: Vec<crate::api::v1alpha1::PublicRepository>,
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
            .filter(|p| {
                p.spec.registries.iter().any(|r| r == name)
                    || p.spec.ecr_public.as_ref().is_some_and(|e| e.registry == name)
            })
            .map(|p| scoped("PullSecret", p)),
    );
    users.extend(
        listed
            .cluster_pull_secrets
            .iter()
            .filter(|p| {
                p.spec.registries.iter().any(|r| r == name)
                    || p.spec.ecr_public.as_ref().is_some_and(|e| e.registry == name)
            })
            .map(|p| scoped("ClusterPullSecret", p)),
    );
    users.extend(
        listed
            .public_repositories
            .iter()
            .filter(|r| r.spec.registry_ref.name == name)
            .map(|r| scoped("PublicRepository", r)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
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
            public_repositories: vec![],
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
        // A PublicRepository on it, and a pull secret naming it only for public.ecr.aws.
        let public = Listed {
            public_repositories: vec![parse(
                json!({"metadata": {"name": "web", "namespace": "oss"}, "spec": {"registryRef": {"name": "pub"}}}),
            )],
            cluster_pull_secrets: vec![parse(
                json!({"metadata": {"name": "all"}, "spec": {"registries": ["other"], "ecrPublic": {"registry": "pub"},
                "namespaceSelector": {}}}),
            )],
            ..Listed::default()
        };
        assert_eq!(
            super::users("pub", &public),
            ["ClusterPullSecret all", "PublicRepository oss/web"]
        );
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
