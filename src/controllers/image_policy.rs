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
        // The facts first, so a new policy never reads a missing or stale ConfigMap.
        Api::<ConfigMap>::namespaced(ctx.client.clone(), &namespace)
            .patch(
                &name,
                &apply,
                &Patch::Apply(gate::config_map(p, &namespace, &facts)),
            )
            .await
            .map_err(Error::kube("apply the ImagePolicy's facts ConfigMap"))?;
        Api::<ValidatingAdmissionPolicy>::all(ctx.client.clone())
            .patch(&name, &apply, &Patch::Apply(gate::admission_policy(p)))
            .await
            .map_err(Error::kube("apply the ValidatingAdmissionPolicy"))?;
        Api::<ValidatingAdmissionPolicyBinding>::all(ctx.client.clone())
            .patch(&name, &apply, &Patch::Apply(gate::binding(p, &namespace)))
            .await
            .map_err(Error::kube("apply the ValidatingAdmissionPolicyBinding"))?;
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
