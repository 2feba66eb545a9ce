//! RepositoryCreationTemplate: one ECR repository creation template of a Registry. Wiring and I/O
//! only; the decisions are in [`crate::decide::creation_template`].

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::Controller;

use super::context::{Context, object_key};
use super::driver::{self, Note, Reconciler};
use super::triggers;
use crate::api::v1alpha1::{RepositoryCreationTemplate, RepositoryCreationTemplateStatus};
use crate::backend::RegistryBackend;
use crate::decide::creation_template::{Plan, Synced, claimed, desired, event, next_status, plan, prefix};
use crate::error::{Error, Result};

pub const CONTROLLER: &str = "creation-template";

/// Runs the RepositoryCreationTemplate controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, own) = triggers::primary::<CreationTemplateController, B>(&ctx, triggers::own);
    let registries = triggers::registry_changes(&ctx, triggers::registry);
    // When a template goes (or changes), the others naming its prefix may now hold it.
    let siblings = triggers::dependency::<RepositoryCreationTemplate, B>(&ctx, triggers::own);
    let by_sibling = store.clone();
    let controller = Controller::for_stream(own, store.clone())
        .watches_stream(registries, move |registry| {
            triggers::users_of(&store, &registry, |t: &RepositoryCreationTemplate, name| {
                t.spec.registry_ref.name == name
            })
        })
        .watches_stream(siblings, move |changed| {
            triggers::siblings(&by_sibling, &changed, |t| vec![prefix(t)])
        });
    driver::run::<CreationTemplateController, B>(controller, ctx, shutdown).await;
}

/// The RepositoryCreationTemplate controller.
pub struct CreationTemplateController;

impl Reconciler for CreationTemplateController {
    type Kind = RepositoryCreationTemplate;
    type Status = RepositoryCreationTemplateStatus;
    type Synced = Synced;
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: bool = true;

    fn api(client: &kube::Client, _: &RepositoryCreationTemplate) -> Api<RepositoryCreationTemplate> {
        Api::all(client.clone())
    }

    fn suspended(t: &RepositoryCreationTemplate) -> bool {
        t.spec.suspend
    }

    fn stored_status(t: &RepositoryCreationTemplate) -> Option<RepositoryCreationTemplateStatus> {
        t.status.clone()
    }

    async fn sync<B: RegistryBackend>(t: &RepositoryCreationTemplate, ctx: &Context<B>) -> Result<Synced> {
        // A spec ECR would refuse stalls before any call.
        let want = desired(t)?;
        let resolved = ctx.resolve(&t.spec.registry_ref.name, None, None).await?;
        // An older template naming the same prefix holds it: nothing is written.
        claimed(t, &listed(ctx).await?, |name| ctx.place_of(name))?;
        let target = &resolved.target;
        let remote = ctx
            .backend
            .describe_template(target, &want.prefix)
            .await
            .map_err(Error::backend("DescribeRepositoryCreationTemplates"))?;
        let plan = plan(t, remote.as_ref(), &want);
        let remote = match (&plan, remote) {
            (Plan::Create, _) | (_, None) => ctx
                .backend
                .create_template(target, &want)
                .await
                .map_err(Error::backend("CreateRepositoryCreationTemplate"))?,
            (Plan::Update(_), Some(mut r)) => {
                ctx.backend
                    .update_template(target, &want)
                    .await
                    .map_err(Error::backend("UpdateRepositoryCreationTemplate"))?;
                r.settings = want;
                r
            }
            (Plan::InSync, Some(r)) => r,
        };
        Ok(Synced { remote, plan })
    }

    async fn cleanup<B: RegistryBackend>(
        t: &RepositoryCreationTemplate,
        ctx: &Context<B>,
    ) -> Result<Option<Note>> {
        if t.status.as_ref().and_then(|s| s.created) != Some(true) {
            // Found in ECR, or never created: left as it is.
            return Ok(None);
        }
        let resolved = match ctx.resolve(&t.spec.registry_ref.name, None, None).await {
            Ok(r) => r,
            Err(Error::DependencyNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        // A template another object holds stays (its `created` was recorded before that one came).
        if claimed(t, &listed(ctx).await?, |name| ctx.place_of(name)).is_err() {
            return Ok(None);
        }
        let prefix = prefix(t);
        let deleted = ctx
            .backend
            .delete_template(&resolved.target, &prefix)
            .await
            .map_err(Error::backend("DeleteRepositoryCreationTemplate"))?;
        Ok(deleted.then(|| {
            (
                "Deleted",
                format!("Deleted repository creation template {prefix}"),
            )
        }))
    }

    fn next_status(
        t: &RepositoryCreationTemplate,
        outcome: &Result<Synced>,
        now: &Time,
    ) -> RepositoryCreationTemplateStatus {
        next_status(t, outcome, now)
    }

    fn event(_: &RepositoryCreationTemplate, synced: &Synced) -> Option<Note> {
        event(synced)
    }

    fn requeue<B: RegistryBackend>(t: &RepositoryCreationTemplate, _: &Synced, ctx: &Context<B>) -> Duration {
        ctx.interval(t.spec.interval.as_ref(), &object_key(t))
    }
}

/// I/O: every RepositoryCreationTemplate, read from the API server (not the watch cache, which
/// may still hold an object that has just gone), to see which one holds a prefix.
async fn listed<B: RegistryBackend>(ctx: &Context<B>) -> Result<Vec<RepositoryCreationTemplate>> {
    Ok(Api::<RepositoryCreationTemplate>::all(ctx.client.clone())
        .list(&Default::default())
        .await
        .map_err(Error::kube("list RepositoryCreationTemplates"))?
        .items)
}
