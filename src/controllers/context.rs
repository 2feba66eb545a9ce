//! What every controller shares: clients, backend, metrics, tunables, backoff, caches.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::Api;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use secrecy::SecretString;

use crate::api::interval::Interval;
use crate::api::v1alpha1::Registry;
use crate::backend::{Credentials, RegistryBackend, StaticKeys, Target};
use crate::error::{Error, Result};
use crate::jitter::jittered;
use crate::metrics::Metrics;
use crate::status::READY;

/// Tunables fixed at start-up.
#[derive(Clone, Debug)]
pub struct Tunables {
    /// Identifies this cluster in the ECR owner tag `<cluster-id>/<namespace>/<name>`.
    pub cluster_id: String,
    /// Drift re-check interval for objects without `spec.interval`.
    pub default_interval: Duration,
    /// Maximum concurrent reconciles per controller.
    pub concurrency: u16,
    /// Requeue while waiting for a dependency.
    pub waiting_requeue: Duration,
    /// Re-check of a Stalled object (a spec change triggers at once anyway).
    pub stalled_recheck: Duration,
    /// How long one listing of a registry's repositories serves reconciles.
    pub repository_cache_ttl: Duration,
    /// Namespaces this instance serves; `None`: all.
    pub watch_namespaces: Option<std::collections::BTreeSet<String>>,
}

impl Tunables {
    /// Whether objects in (or Secrets written into) `namespace` are this instance's business.
    pub fn watches(&self, namespace: &str) -> bool {
        self.watch_namespaces
            .as_ref()
            .is_none_or(|set| set.contains(namespace))
    }
}

impl Default for Tunables {
    fn default() -> Self {
        Self {
            cluster_id: "cluster".into(),
            default_interval: Duration::from_secs(600),
            concurrency: 4,
            waiting_requeue: Duration::from_secs(30),
            stalled_recheck: Duration::from_secs(3600),
            repository_cache_ttl: Duration::from_secs(60),
            watch_namespaces: None,
        }
    }
}

/// Everything a reconcile needs.
pub struct Context<B> {
    pub client: Client,
    pub backend: Arc<B>,
    pub metrics: Arc<Metrics>,
    pub tunables: Tunables,
    pub backoff: super::backoff::ErrorBackoff,
    pub registries: Store<Registry>,
    pub repositories: crate::cache::RepositoryCache,
    /// ECR tokens for pull secrets, one per (region, endpoint, identity).
    pub tokens: crate::cache::TokenCache,
    /// Only the Secrets this operator manages (label-selected watch).
    pub managed_secrets: Store<Secret>,
    /// The Pod name (events' reporting instance).
    pub instance: Option<String>,
}

impl<B: RegistryBackend> Context<B> {
    /// The namespace of a namespaced object, or `None` when this instance does not serve it
    /// (`--watch-namespaces`: another instance does, so it is left alone).
    pub fn served_namespace<K: ResourceExt>(&self, obj: &K) -> Result<Option<String>> {
        let ns = obj.namespace().ok_or(Error::MissingMetadata("namespace"))?;
        Ok(self.tunables.watches(&ns).then_some(ns))
    }

    /// The labels of a namespace, read fresh (tenancy rules select on them).
    pub async fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        Ok(
            Api::<k8s_openapi::api::core::v1::Namespace>::all(self.client.clone())
                .get_opt(namespace)
                .await
                .map_err(Error::kube("read the namespace"))?
                .map(|n| n.labels().clone())
                .unwrap_or_default(),
        )
    }

    /// `ecr-operator/<controller>`.
    pub fn field_manager(&self, controller: &str) -> String {
        format!("{}/{controller}", crate::api::OPERATOR_NAME)
    }

    /// An event recorder for one controller.
    pub fn recorder(&self, controller: &str) -> Recorder {
        Recorder::new(
            self.client.clone(),
            Reporter {
                controller: format!("{}/{controller}-controller", crate::api::GROUP),
                instance: self.instance.clone(),
            },
        )
    }

    /// The drift re-check delay: `spec.interval` or the default, ± 10 % per object.
    pub fn interval(&self, spec_interval: Option<&Interval>, key: &str) -> Duration {
        // Admission and the decoder hold every interval within its documented range, so nothing
        // is clamped here.
        let base = spec_interval.map_or(self.tunables.default_interval, Interval::duration);
        jittered(base, key)
    }

    /// The Registry called `name`, if it exists and is Ready.
    pub fn ready_registry(&self, name: &str) -> Result<Arc<Registry>> {
        let registry =
            self.registries
                .get(&ObjectRef::new(name))
                .ok_or_else(|| Error::DependencyNotFound {
                    kind: "Registry",
                    name: name.to_owned(),
                })?;
        let ready = registry.status.as_ref().is_some_and(|s| {
            s.registry_id.is_some()
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == READY && c.status == "True")
        });
        if ready {
            Ok(registry)
        } else {
            Err(Error::DependencyNotReady {
                kind: "Registry",
                name: name.to_owned(),
            })
        }
    }

    /// How to reach a registry: region, endpoint, and credentials (static keys read from their
    /// Secret on each call, so a rotated Secret takes effect at the next reconcile).
    pub async fn target(&self, registry: &Registry) -> Result<Target> {
        let spec = &registry.spec;
        let auth = spec.auth.clone().unwrap_or_default();
        let credentials = if let Some(role) = auth.assume_role {
            Credentials::AssumeRole {
                role_arn: role.role_arn,
                external_id: role.external_id,
                session_name: role.session_name,
            }
        } else if let Some(r) = auth.secret_ref {
            let secret = Api::<Secret>::namespaced(self.client.clone(), &r.namespace)
                .get_opt(&r.name)
                .await
                .map_err(Error::kube("read the Registry's credentials Secret"))?
                .ok_or_else(|| Error::DependencyNotFound {
                    kind: "Secret",
                    name: format!("{}/{}", r.namespace, r.name),
                })?;
            let data = secret.data.unwrap_or_default();
            let text = |key: &str| {
                data.get(key)
                    .map(|b| String::from_utf8_lossy(&b.0).trim().to_owned())
                    .filter(|v| !v.is_empty())
            };
            let missing =
                |key: &str| Error::InvalidSpec(format!("Secret {}/{} has no {key} key", r.namespace, r.name));
            Credentials::Static(StaticKeys {
                access_key_id: text("accessKeyId").ok_or_else(|| missing("accessKeyId"))?,
                secret_access_key: SecretString::from(
                    text("secretAccessKey").ok_or_else(|| missing("secretAccessKey"))?,
                ),
                session_token: text("sessionToken").map(SecretString::from),
            })
        } else {
            Credentials::Default
        };
        Ok(Target {
            region: spec.region.clone(),
            endpoint: spec.endpoint.clone(),
            credentials,
        })
    }
}

/// Publishes an event; a failure is logged, never fails the reconcile.
pub async fn publish(
    recorder: &Recorder,
    reference: &ObjectReference,
    type_: EventType,
    reason: &str,
    note: String,
    action: &str,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(crate::error::truncate(note, 1024)),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, reference).await {
        tracing::warn!(
            error = &e as &dyn std::error::Error,
            reason,
            "failed to publish an event"
        );
    }
}

/// Publishes the event of one reconcile: `Normal` with `success` (reason, note) when the
/// reconcile changed something, or `Warning` with the error's reason when it differs from the
/// previous Ready reason. Transitions only: a repeated failure or a no-op publishes nothing.
pub async fn publish_outcome(
    recorder: &Recorder,
    reference: &ObjectReference,
    previous_ready_reason: Option<&str>,
    outcome: std::result::Result<Option<(&'static str, String)>, &Error>,
    action: &str,
) {
    match outcome {
        Ok(Some((reason, note))) => {
            publish(recorder, reference, EventType::Normal, reason, note, action).await
        }
        Ok(None) => {}
        Err(e) if previous_ready_reason != Some(e.reason()) => {
            let note = crate::error::error_chain(e);
            publish(recorder, reference, EventType::Warning, e.reason(), note, action).await;
        }
        Err(_) => {}
    }
}

/// The reason of an object's Ready condition.
pub fn ready_reason(
    status_conditions: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>,
) -> Option<String> {
    status_conditions?
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| c.reason.clone())
}

/// The stable key of an object for backoff and jitter: its UID, else its name.
pub fn object_key<K: kube::Resource>(obj: &K) -> String {
    obj.meta().uid.clone().unwrap_or_else(|| obj.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_namespaces_limit_what_is_served() {
        let all = Tunables::default();
        let some = Tunables {
            watch_namespaces: Some(["team-a".to_owned(), "team-b".to_owned()].into()),
            ..Tunables::default()
        };
        for (tunables, namespace, expected) in [
            (&all, "anything", true),
            (&some, "team-a", true),
            (&some, "team-b", true),
            (&some, "team-c", false),
            (&some, "", false),
        ] {
            assert_eq!(tunables.watches(namespace), expected, "{namespace}");
        }
    }
}
