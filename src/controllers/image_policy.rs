//! `ImagePolicy`: keeps, for each policy, a ConfigMap of facts (from the Repositories' status),
//! a ValidatingAdmissionPolicy and its binding, all applied with server-side apply under
//! `ecr-operator/image-policy` and owned by the policy (garbage-collected with it). The API
//! server enforces them; this controller only keeps them current. Decisions are pure in
//! [`crate::decide::insight_gate`].

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;

use super::context::{Context, object_key};
use super::driver::{self, Note, Reconciler};
use super::triggers;
use crate::api::v1alpha1::{ImagePolicy, ImagePolicyStatus, Repository};
use crate::backend::RegistryBackend;
use crate::decide::insight_gate::{self as gate, Gated, Known};
use crate::error::{Error, Result};

pub const CONTROLLER: &str = "image-policy";

/// The key of a Repository for the gate: its URI and its newest image's findings.
fn facts_key(r: &Repository) -> u64 {
    let mut h = DefaultHasher::new();
    let status = r.status.as_ref();
    status.and_then(|s| s.repository_uri.as_deref()).hash(&mut h);
    let newest = status
        .and_then(|s| s.insight.as_ref())
        .and_then(|i| i.newest_image.as_ref());
    serde_json::to_string(&newest).unwrap_or_default().hash(&mut h);
    r.metadata.deletion_timestamp.is_some().hash(&mut h);
    h.finish()
}

/// Runs the ImagePolicy controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, own) = triggers::primary::<ImagePolicyController, B>(&ctx, triggers::own);
    let repositories = triggers::dependency::<Repository, B>(&ctx, facts_key);
    let controller = Controller::for_stream(own, store.clone())
        // A Repository whose URI or newest image's findings changed: every policy's facts.
        .watches_stream(repositories, move |_| {
            store
                .state()
                .iter()
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        });
    driver::run::<ImagePolicyController, B>(controller, ctx, shutdown).await;
}

/// The ImagePolicy controller.
pub struct ImagePolicyController;

impl Reconciler for ImagePolicyController {
    type Kind = ImagePolicy;
    type Status = ImagePolicyStatus;
    type Synced = Gated;
    const CONTROLLER: &'static str = CONTROLLER;

    fn api(client: &kube::Client, _: &ImagePolicy) -> Api<ImagePolicy> {
        Api::all(client.clone())
    }

    fn suspended(p: &ImagePolicy) -> bool {
        p.spec.suspend
    }

    fn stored_status(p: &ImagePolicy) -> Option<ImagePolicyStatus> {
        p.status.clone()
    }

    async fn sync<B: RegistryBackend>(p: &ImagePolicy, ctx: &Context<B>) -> Result<Gated> {
        gate::check_spec(p)?;
        // Fresh, not a store: the facts must include the latest status of every Repository.
        let repos = Api::<Repository>::all(ctx.client.clone())
            .list(&ctx.tunables.watch_selector.list_params())
            .await
            .map_err(Error::kube("list the Repositories"))?;
        let known: Vec<Known> = repos
            .items
            .iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .filter_map(|r| {
                let status = r.status.as_ref()?;
                Some(Known {
                    uri: status.repository_uri.as_deref()?,
                    newest: status.insight.as_ref().and_then(|i| i.newest_image.as_ref()),
                })
            })
            .collect();
        let facts = gate::facts(p, &known);
        let namespace = ctx.tunables.operator_namespace.clone();
        let name = gate::object_name(&p.name_any());
        let apply = PatchParams::apply(&ctx.field_manager(CONTROLLER)).force();
        // In steady state (the spec applied last is this one, and each object already holds
        // what it would be given) a reconcile reads the three objects and writes none.
        let settled = p.status.as_ref().and_then(|s| s.observed_generation) == p.metadata.generation;
        // The facts first, so a new policy never reads a missing or stale ConfigMap.
        let config_maps = Api::<ConfigMap>::namespaced(ctx.client.clone(), &namespace);
        let facts_map = gate::config_map(p, &namespace, &facts);
        apply_unless_held(&config_maps, &name, facts_map, &["data"], settled, &apply, FACTS).await?;
        let policies = Api::<ValidatingAdmissionPolicy>::all(ctx.client.clone());
        let policy = gate::admission_policy(p);
        apply_unless_held(&policies, &name, policy, &[], settled, &apply, POLICY).await?;
        let bindings = Api::<ValidatingAdmissionPolicyBinding>::all(ctx.client.clone());
        let binding = gate::binding(p, &namespace);
        apply_unless_held(&bindings, &name, binding, &[], settled, &apply, BINDING).await?;
        Ok(Gated { facts, namespace })
    }

    fn next_status(p: &ImagePolicy, outcome: &Result<Gated>, now: &Time) -> ImagePolicyStatus {
        gate::next_status(p, outcome, now)
    }

    fn event(p: &ImagePolicy, gated: &Gated) -> Option<Note> {
        gate::event(p, gated)
    }

    fn requeue<B: RegistryBackend>(p: &ImagePolicy, _: &Gated, ctx: &Context<B>) -> Duration {
        ctx.interval(p.spec.interval.as_ref(), &object_key(p))
    }
}

const FACTS: [&str; 2] = [
    "read the ImagePolicy's facts ConfigMap",
    "apply the ImagePolicy's facts ConfigMap",
];
const POLICY: [&str; 2] = [
    "read the ValidatingAdmissionPolicy",
    "apply the ValidatingAdmissionPolicy",
];
const BINDING: [&str; 2] = [
    "read the ValidatingAdmissionPolicyBinding",
    "apply the ValidatingAdmissionPolicyBinding",
];

/// I/O: server-side applies `desired` as `name`, unless `settled` and the object as read already
/// holds it (`decide::applied::in_place`; the fields in `exact` must be equal as a whole).
/// `what`: the read's and the apply's action, for errors.
async fn apply_unless_held<K>(
    api: &Api<K>,
    name: &str,
    desired: serde_json::Value,
    exact: &[&str],
    settled: bool,
    apply: &PatchParams,
    what: [&'static str; 2],
) -> Result<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    if settled {
        let current = api.get_opt(name).await.map_err(Error::kube(what[0]))?;
        let current = current.and_then(|c| serde_json::to_value(c).ok());
        if crate::decide::applied::in_place(&desired, current.as_ref(), exact) {
            return Ok(());
        }
    }
    api.patch(name, apply, &Patch::Apply(desired))
        .await
        .map_err(Error::kube(what[1]))?;
    Ok(())
}
