//! Resolving a `registryRef`: the Registry from the store (Ready or not), how to reach it
//! (region, endpoint, credentials), and whether the Registry lets a namespace use it (tenancy).
//! Repository, LifecyclePolicy, PullSecret, ClusterPullSecret and the replication controller all
//! resolve through here.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use secrecy::SecretString;

use super::context::Context;
use super::web_identity::{role_of, session_for};
use crate::api::v1alpha1::{Registry, RegistryWebIdentity, TenantIdentity};
use crate::backend::{Credentials, RegistryBackend, StaticKeys, Target};
use crate::cache::static_keys::Stamp;
use crate::decide::owners::Place;
use crate::error::{Error, Result};

/// A Ready Registry and how to reach it.
pub struct Resolved {
    pub registry: Arc<Registry>,
    pub target: Target,
}

impl<B: RegistryBackend> Context<B> {
    /// The labels of a namespace, read fresh (tenancy rules select on them).
    pub async fn namespace_labels(&self, namespace: &str) -> Result<BTreeMap<String, String>> {
        Ok(Api::<Namespace>::all(self.client.clone())
            .get_opt(namespace)
            .await
            .map_err(Error::kube("read the namespace"))?
            .map(|n| n.labels().clone())
            .unwrap_or_default())
    }

    /// Which registry the Registry `name` reaches, for telling whether two objects name the
    /// same thing in ECR (see `decide::claims`): the place it recorded (account, region,
    /// endpoint), else (before its first success, or when it is gone) its own name.
    pub fn place_of(&self, name: &str) -> String {
        self.registries
            .get(&ObjectRef::new(name))
            .and_then(|r| Place::recorded(&r))
            .map_or_else(|| format!("Registry {name}"), |p| p.to_string())
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
        if serves(&registry) {
            Ok(registry)
        } else {
            Err(Error::DependencyNotReady {
                kind: "Registry",
                name: name.to_owned(),
            })
        }
    }

    /// How to reach a registry: region, endpoint, and credentials. Static keys come from the
    /// Registry's Secret through [`Context::static_keys`]: read once and shared by every
    /// reconcile that reaches the Registry for at most
    /// [`STATIC_KEYS_TTL`](crate::cache::static_keys::STATIC_KEYS_TTL) (60 s), so a rotated Secret is
    /// used by every reconcile that starts more than 60 s after the change, and at once after
    /// the Registry's own reconcile ([`Context::fresh_target`]).
    pub async fn target(&self, registry: &Registry) -> Result<Target> {
        self.target_with(registry, false).await
    }

    /// [`Context::target`], reading the Registry's Secret now and replacing the cached keys with
    /// what it holds: the Registry controller's read, once per Registry reconcile.
    pub async fn fresh_target(&self, registry: &Registry) -> Result<Target> {
        self.target_with(registry, true).await
    }

    async fn target_with(&self, registry: &Registry, fresh: bool) -> Result<Target> {
        let spec = &registry.spec;
        let auth = spec.auth.clone().unwrap_or_default();
        let credentials = if let Some(role) = auth.assume_role {
            Credentials::AssumeRole {
                role_arn: role.role_arn,
                external_id: role.external_id,
                session_name: role.session_name,
            }
        } else if let Some(r) = auth.secret_ref {
            let stamp = Stamp {
                registry: super::context::object_key(registry),
                generation: registry.metadata.generation,
                secret: (r.namespace.clone(), r.name.clone()),
            };
            let keys = self
                .static_keys
                .get(&stamp, fresh, || self.read_static_keys(&r.namespace, &r.name))
                .await?;
            Credentials::Static(keys)
        } else if let Some(web) = auth.web_identity {
            self.registry_web_identity(&web, &spec.region, fresh).await?
        } else {
            Credentials::Default
        };
        Ok(Target {
            region: spec.region.clone(),
            endpoint: spec.endpoint.clone(),
            credentials,
        })
    }

    /// I/O: a Registry's `auth.webIdentity` credentials. The session held for its
    /// ServiceAccount serves every reconcile that reaches the Registry without reading the
    /// ServiceAccount again; the Registry's own reconcile (`fresh`) reads it, so a changed role
    /// annotation is used from then on, and a session near its expiry is renewed (a TokenRequest
    /// and an STS exchange).
    async fn registry_web_identity(
        &self,
        web: &RegistryWebIdentity,
        region: &str,
        fresh: bool,
    ) -> Result<Credentials> {
        const FIELD: &str = "spec.auth.webIdentity";
        let (namespace, name) = (&web.service_account.namespace, &web.service_account.name);
        let subject = format!("{namespace}/{name}");
        let now = std::time::SystemTime::now();
        let held = match (&web.role_arn, fresh) {
            (Some(role), _) => self.sessions.get(role, &subject, now).map(|s| (role.clone(), s)),
            (None, false) => self.sessions.latest(&subject, now),
            (None, true) => None,
        };
        let (role, session) = match held {
            Some(held) => held,
            None => {
                let identity = TenantIdentity {
                    service_account_name: name.clone(),
                    role_arn: web.role_arn.clone(),
                };
                let role = role_of(self, FIELD, namespace, &identity).await?;
                let session = session_for(self, FIELD, (namespace, name), &role, region).await?;
                (role, session)
            }
        };
        Ok(Credentials::WebIdentity {
            role_arn: role,
            session: session.keys,
        })
    }

    /// I/O: the static keys in the Secret `namespace/name` (one GET).
    async fn read_static_keys(&self, namespace: &str, name: &str) -> Result<StaticKeys> {
        let secret = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(Error::kube("read the Registry's credentials Secret"))?
            .ok_or_else(|| Error::DependencyNotFound {
                kind: "Secret",
                name: format!("{namespace}/{name}"),
            })?;
        let data = secret.data.unwrap_or_default();
        let text = |key: &str| {
            data.get(key)
                .map(|b| String::from_utf8_lossy(&b.0).trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let missing = |key: &str| Error::InvalidSpec(format!("Secret {namespace}/{name} has no {key} key"));
        Ok(StaticKeys {
            access_key_id: text("accessKeyId").ok_or_else(|| missing("accessKeyId"))?,
            secret_access_key: SecretString::from(
                text("secretAccessKey").ok_or_else(|| missing("secretAccessKey"))?,
            ),
            session_token: text("sessionToken").map(SecretString::from),
        })
    }
}

impl<B: RegistryBackend> Context<B> {
    /// The Registry `name`, Ready, allowed for `namespace` (tenancy; the namespace's labels are
    /// read only when the Registry restricts namespaces), and its target. `repository` is the
    /// ECR name a Repository asks for, checked against the naming policy.
    pub async fn resolve(
        &self,
        name: &str,
        namespace: Option<&str>,
        repository: Option<&str>,
    ) -> Result<Resolved> {
        let registry = self.ready_registry(name)?;
        if let Some(ns) = namespace {
            let labels = if registry.spec.allowed_namespaces.is_some() {
                self.namespace_labels(ns).await?
            } else {
                BTreeMap::new()
            };
            check_tenancy(&registry, ns, &labels, repository)?;
        }
        let target = self.target(&registry).await?;
        Ok(Resolved { registry, target })
    }
}

pub use crate::decide::registry::{check_tenancy, serves};
