//! The PullSecret controller: one Secret in the object's namespace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::credentials::credentials;
use super::secret::{apply_secret, desired_secret};
use super::service_accounts::{argocd_runs_in, not_found, sync_service_accounts};
use super::{PULL_SECRET_LABEL, counted, managed_secrets_selector, owner_reference, stored_owner};
use crate::api::v1alpha1::{PullSecret, PullSecretStatus};
use crate::backend::RegistryBackend;
use crate::controllers::context::{Context, object_key};
use crate::controllers::dereference::check_tenancy;
use crate::controllers::driver::{self, Note, Reconciler};
use crate::controllers::triggers;
use crate::decide::pull_secret::format::{argocd_not_found, is_argocd_account, secret_body};
use crate::error::{Error, Result};
use crate::secrets::schedule;

pub const CONTROLLER: &str = "pull-secret";

use crate::decide::pull_secret::namespaced as decide;
pub use crate::decide::pull_secret::namespaced::{Served, next_status, secret_name};

/// Runs the PullSecret controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, own) = triggers::primary::<PullSecretController, B>(&ctx, triggers::own);
    let registries = triggers::registry_changes(&ctx, triggers::registry);
    let controller = Controller::for_stream(own, store.clone());
    let sa_store = store.clone();
    let owners = store.clone();
    let controller = controller
        // Our Secrets re-queue their PullSecret while it exists (see `stored_owner`).
        .watches(Api::<Secret>::all(ctx.client.clone()), watcher::Config::default().labels(&managed_secrets_selector()), move |secret| {
            stored_owner(&owners, &secret, true)
        })
        .watches_stream(registries, move |registry| {
            triggers::users_of(&store, &registry, |p: &PullSecret, name| {
                p.spec.registries.iter().any(|r| r == name)
                    || p.spec.ecr_public.as_ref().is_some_and(|e| e.registry == name)
            })
        })
        // A ServiceAccount created later gets the entry too (and one reported missing is
        // re-checked the moment it appears); one deleted is reported missing. Argo CD's own
        // ServiceAccounts re-queue the Argo CD formats (installed or removed there), and an
        // identity's ServiceAccount its PullSecret (created, or its role annotation changed).
        .watches(Api::<ServiceAccount>::all(ctx.client.clone()), watcher::Config::default(), move |sa| {
            let ns = sa.namespace().unwrap_or_default();
            let name = sa.name_any();
            let argocd = is_argocd_account(sa.labels());
            sa_store
                .state()
                .into_iter()
                .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
                .filter(|p| {
                    (argocd && p.spec.format.is_argocd())
                        || p.spec.service_accounts.iter().any(|s| s == "*" || *s == name)
                        || p.spec.identity.as_ref().is_some_and(|i| i.service_account_name == name)
                })
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        });
    driver::run::<PullSecretController, B>(controller, ctx, shutdown).await;
}

/// The PullSecret controller.
pub struct PullSecretController;

impl Reconciler for PullSecretController {
    type Kind = PullSecret;
    type Status = PullSecretStatus;
    type Synced = Served;
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: bool = true;

    fn api(client: &kube::Client, ps: &PullSecret) -> Api<PullSecret> {
        Api::namespaced(client.clone(), &ps.namespace().unwrap_or_default())
    }

    fn suspended(ps: &PullSecret) -> bool {
        ps.spec.suspend
    }

    fn stored_status(ps: &PullSecret) -> Option<PullSecretStatus> {
        ps.status.clone()
    }

    async fn sync<B: RegistryBackend>(ps: &PullSecret, ctx: &Context<B>) -> Result<Served> {
        serve(ps, ctx).await
    }

    async fn cleanup<B: RegistryBackend>(ps: &PullSecret, ctx: &Context<B>) -> Result<Option<Note>> {
        // The Secret goes with its owner (garbage collection); remove our ServiceAccount entries.
        let ns = ps.namespace().ok_or(Error::MissingMetadata("namespace"))?;
        sync_service_accounts(ctx, &ns, &ps.spec.service_accounts, &secret_name(ps), false).await?;
        Ok(None)
    }

    fn next_status(ps: &PullSecret, outcome: &Result<Served>, now: &Time) -> PullSecretStatus {
        next_status(ps, outcome, now)
    }

    fn failure(s: &Served) -> Option<&Error> {
        decide::failure(s)
    }

    fn into_result(s: Served) -> Result<Served> {
        decide::into_result(s)
    }

    fn event(ps: &PullSecret, s: &Served) -> Option<Note> {
        s.written.then(|| {
            (
                "TokenRefreshed",
                format!(
                    "Wrote Secret {} with credentials for {}",
                    secret_name(ps),
                    counted(s.credentials.registries.len(), "registry", "registries")
                ),
            )
        })
    }

    fn requeue<B: RegistryBackend>(ps: &PullSecret, s: &Served, ctx: &Context<B>) -> Duration {
        let interval = ctx.interval(ps.spec.interval.as_ref(), &object_key(ps));
        schedule::requeue_after(SystemTime::now(), s.credentials.refresh_at, interval)
    }
}

async fn serve<B: RegistryBackend>(ps: &PullSecret, ctx: &Context<B>) -> Result<Served> {
    let ns = ps.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    // The Registries' tenancy rules apply to PullSecrets too (the labels are read once).
    let mut labels: Option<BTreeMap<String, String>> = None;
    for name in &ps.spec.registries {
        let registry = ctx.ready_registry(name)?;
        if registry.spec.allowed_namespaces.is_some() && labels.is_none() {
            labels = Some(ctx.namespace_labels(&ns).await?);
        }
        check_tenancy(&registry, &ns, labels.as_ref().unwrap_or(&BTreeMap::new()), None)?;
    }
    let identity = ps.spec.identity.as_ref().map(|i| (ns.as_str(), i));
    let credentials = credentials(
        ctx,
        &ps.spec.registries,
        ps.spec.refresh_fraction,
        identity,
        ps.spec.ecr_public.as_ref(),
    )
    .await?;
    let body = secret_body(
        ps.spec.format,
        ps.spec.argocd.as_ref(),
        &secret_name(ps),
        &credentials.logins,
    )?;
    let owner = owner_reference(ps).ok_or(Error::MissingMetadata("uid"))?;
    let uid = owner.uid.clone();
    let secret = desired_secret(
        &ns,
        &secret_name(ps),
        owner,
        (PULL_SECRET_LABEL, &ps.name_any()),
        &body,
    );
    let written = apply_secret(ctx, CONTROLLER, &secret, &uid).await?;
    // An Argo CD Secret goes to no ServiceAccount (admission refuses serviceAccounts with it);
    // it is only read where Argo CD runs.
    let missing = if ps.spec.format.is_argocd() {
        let absent = !argocd_runs_in(ctx, &ns).await?;
        argocd_not_found(&absent.then(|| ns.clone()).into_iter().collect::<Vec<_>>())
    } else {
        let missing =
            sync_service_accounts(ctx, &ns, &ps.spec.service_accounts, &secret_name(ps), true).await?;
        not_found(&ns, &missing)
    };
    Ok(Served {
        credentials,
        written,
        missing,
    })
}
