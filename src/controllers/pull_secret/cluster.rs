//! The ClusterPullSecret controller: the same Secret in every matching namespace.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::api::{Api, DeleteParams, ListParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::credentials::{PullCredentials, credentials};
use super::secret::{apply_secret, desired_secret};
use super::service_accounts::{not_found_in_namespaces, sync_service_accounts};
use super::{
    CLUSTER_PULL_SECRET_LABEL, counted, managed_secrets_selector, owner_reference, stored_owner, time,
};
use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::v1alpha1::{ClusterPullSecret, ClusterPullSecretStatus, NamespaceFilter, Registry};
use crate::backend::RegistryBackend;
use crate::controllers::context::{Context, object_key};
use crate::controllers::driver::{self, Note, Reconciler};
use crate::controllers::triggers;
use crate::error::{Error, Result};
use crate::secrets::schedule;
use crate::status::{Outcome, summarize};

pub const CONTROLLER: &str = "cluster-pull-secret";

/// Runs the ClusterPullSecret controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, own) = triggers::primary::<ClusterPullSecretController, B>(&ctx, triggers::own);
    let registries = triggers::dependency::<Registry, B>(&ctx, triggers::registry);
    let controller = Controller::for_stream(own, store.clone());
    let ns_store = store.clone();
    let sa_store = store.clone();
    let owners = store.clone();
    let controller = controller
        // Our Secrets re-queue their ClusterPullSecret, by a cluster-wide reference, while it
        // exists (see `stored_owner`; kube's `owns` would name it in the Secret's namespace).
        .watches(Api::<Secret>::all(ctx.client.clone()), watcher::Config::default().labels(&managed_secrets_selector()), move |secret| {
            stored_owner(&owners, &secret, false)
        })
        // A namespace that appears, changes labels or goes away re-queues every ClusterPullSecret.
        .watches(Api::<Namespace>::all(ctx.client.clone()), watcher::Config::default(), move |_| {
            ns_store.state().into_iter().map(|c| ObjectRef::from_obj(c.as_ref())).collect::<Vec<_>>()
        })
        .watches_stream(registries, move |registry| {
            triggers::users_of(&store, &registry, |c: &ClusterPullSecret, name| c.spec.registries.iter().any(|r| r == name))
        })
        .watches(Api::<ServiceAccount>::all(ctx.client.clone()), watcher::Config::default(), move |sa| {
            let name = sa.name_any();
            sa_store
                .state()
                .into_iter()
                .filter(|c| c.spec.service_accounts.iter().any(|s| s == "*" || *s == name))
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect::<Vec<_>>()
        });
    driver::run::<ClusterPullSecretController, B>(controller, ctx, shutdown).await;
}

/// The Secret's name: `spec.secretName`, else the object's name.
pub fn secret_name(c: &ClusterPullSecret) -> String {
    c.spec.secret_name.clone().unwrap_or_else(|| c.name_any())
}

/// Pure: `spec.namespaceSelector` as the selector namespaces are matched with (`None`: unset).
/// A selector stored before the admission rules existed is refused here, naming the requirement,
/// its value and the allowed operators (`InvalidSpec`).
pub fn namespace_selector(selector: Option<&LabelSelector>) -> Result<Option<Selector>> {
    selector
        .map(crate::api::selector::parse)
        .transpose()
        .map_err(|e| Error::InvalidSpec(format!("invalid namespaceSelector: {e}")))
}

/// The cluster's own namespaces: a ClusterPullSecret serves them only when `namespaces.include`
/// names them, whatever its selector says (`namespaceSelector: {}` means every namespace of the
/// workloads, not the control plane's).
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// Pure: whether a namespace gets the Secret: not terminating, passes `namespaces` and the
/// selector (parsed by [`namespace_selector`]), and is not one of the [`SYSTEM_NAMESPACES`]
/// unless `namespaces.include` names it.
pub fn namespace_matches(
    ns: &Namespace,
    selector: Option<&Selector>,
    filter: Option<&NamespaceFilter>,
) -> bool {
    let name = ns.name_any();
    let terminating = ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating {
        return false;
    }
    let included = filter
        .and_then(|f| f.include.as_ref())
        .is_some_and(|inc| inc.contains(&name));
    if SYSTEM_NAMESPACES.contains(&name.as_str()) && !included {
        return false;
    }
    if let Some(f) = filter {
        if f.include.is_some() && !included {
            return false;
        }
        if f.exclude.as_ref().is_some_and(|exc| exc.contains(&name)) {
            return false;
        }
    }
    selector.is_none_or(|s| s.matches(ns.labels()))
}

/// Pure: the namespaces `namespaces.include` names that do not exist (among those this instance
/// serves), in the order given.
pub fn missing_namespaces(
    filter: Option<&NamespaceFilter>,
    existing: &BTreeSet<String>,
    serves: impl Fn(&str) -> bool,
) -> Vec<String> {
    filter
        .and_then(|f| f.include.as_ref())
        .into_iter()
        .flatten()
        .filter(|n| serves(n) && !existing.contains(*n))
        .cloned()
        .collect()
}

/// Pure: the report on included namespaces that do not exist and named ServiceAccounts that do
/// not exist in served namespaces (`None` when there are neither). Missing namespaces come
/// first (the reason is theirs), and the message mentions both.
pub fn not_found(missing_namespaces: &[String], missing_accounts: &[(String, Vec<String>)]) -> Option<Error> {
    let accounts = not_found_in_namespaces(missing_accounts);
    if missing_namespaces.is_empty() {
        return accounts;
    }
    let names = crate::text::listed(missing_namespaces, 10);
    let mut message = match missing_namespaces {
        [_] => format!(
            "namespaces.include names {names}, which does not exist: it gets the Secret when it is created"
        ),
        _ => format!(
            "namespaces.include names {names}, which do not exist: they get the Secret when they are created"
        ),
    };
    if let Some(accounts) = accounts {
        message = format!("{message}; {accounts}");
    }
    Some(Error::NamespaceNotFound(message))
}

/// Namespaces holding a Secret of this ClusterPullSecret (from the label-selected cache).
fn namespaces_with_our_secrets<B: RegistryBackend>(
    ctx: &Context<B>,
    cps: &ClusterPullSecret,
) -> BTreeSet<String> {
    let name = cps.name_any();
    ctx.managed_secrets
        .state()
        .iter()
        .filter(|s| s.labels().get(CLUSTER_PULL_SECRET_LABEL) == Some(&name))
        .filter_map(|s| s.namespace())
        .filter(|ns| ctx.tunables.watches(ns))
        .collect()
}

/// What one ClusterPullSecret reconcile achieved: a partial success carries its failures.
pub struct Fanned {
    credentials: PullCredentials,
    served: BTreeSet<String>,
    failed: Vec<(String, Error)>,
    written: usize,
    removed: usize,
    /// Included namespaces or named ServiceAccounts that do not exist (`NamespaceNotFound`,
    /// `ServiceAccountNotFound`): reported in the status and by a Warning event when it starts,
    /// but not retried on a timer, since the Namespace and ServiceAccount watches re-queue the
    /// ClusterPullSecret the moment one appears.
    missing: Option<Error>,
}

/// The ClusterPullSecret controller.
pub struct ClusterPullSecretController;

impl Reconciler for ClusterPullSecretController {
    type Kind = ClusterPullSecret;
    type Status = ClusterPullSecretStatus;
    type Synced = Fanned;
    const CONTROLLER: &'static str = CONTROLLER;
    // The field manager its Secrets and status were first written with.
    const FIELD_MANAGER: &'static str = super::namespaced::CONTROLLER;
    const FINALIZER: bool = true;

    fn api(client: &kube::Client, _: &ClusterPullSecret) -> Api<ClusterPullSecret> {
        Api::all(client.clone())
    }

    fn suspended(cps: &ClusterPullSecret) -> bool {
        cps.spec.suspend
    }

    fn stored_status(cps: &ClusterPullSecret) -> Option<ClusterPullSecretStatus> {
        cps.status.clone()
    }

    fn ready_reason(cps: &ClusterPullSecret) -> Option<String> {
        crate::status::ready_reason(cps.status.as_ref().map(|s| s.conditions.as_slice()))
    }

    async fn sync<B: RegistryBackend>(cps: &ClusterPullSecret, ctx: &Context<B>) -> Result<Fanned> {
        fan_out(cps, ctx).await
    }

    async fn cleanup<B: RegistryBackend>(cps: &ClusterPullSecret, ctx: &Context<B>) -> Result<Option<Note>> {
        // Secrets go with their owner (garbage collection); remove our ServiceAccount entries.
        for ns in namespaces_with_our_secrets(ctx, cps) {
            sync_service_accounts(ctx, &ns, &cps.spec.service_accounts, &secret_name(cps), false).await?;
        }
        Ok(None)
    }

    fn next_status(cps: &ClusterPullSecret, outcome: &Result<Fanned>, now: &Time) -> ClusterPullSecretStatus {
        next_status(cps, outcome, now)
    }

    fn failure(f: &Fanned) -> Option<&Error> {
        f.failed.first().map(|(_, e)| e).or(f.missing.as_ref())
    }

    fn into_result(mut f: Fanned) -> Result<Fanned> {
        if f.failed.is_empty() {
            Ok(f)
        } else {
            Err(f.failed.swap_remove(0).1)
        }
    }

    fn event(_: &ClusterPullSecret, f: &Fanned) -> Option<Note> {
        (f.written > 0 || f.removed > 0).then(|| {
            (
                "TokenRefreshed",
                format!(
                    "Wrote {} and removed {} (serving {})",
                    counted(f.written, "Secret", "Secrets"),
                    f.removed,
                    counted(f.served.len(), "namespace", "namespaces")
                ),
            )
        })
    }

    fn requeue<B: RegistryBackend>(cps: &ClusterPullSecret, f: &Fanned, ctx: &Context<B>) -> Duration {
        let interval = ctx.interval(cps.spec.interval.as_ref(), &object_key(cps));
        schedule::requeue_after(SystemTime::now(), f.credentials.refresh_at, interval)
    }
}

async fn fan_out<B: RegistryBackend>(cps: &ClusterPullSecret, ctx: &Context<B>) -> Result<Fanned> {
    // Before any ECR call, and whether or not a namespace would reach the selector.
    let selector = namespace_selector(cps.spec.namespace_selector.as_ref())?;
    let credentials = credentials(ctx, &cps.spec.registries, cps.spec.refresh_fraction).await?;
    let owner = owner_reference(cps).ok_or(Error::MissingMetadata("uid"))?;
    let uid = owner.uid.clone();
    let secret_name = secret_name(cps);
    let mut matching = BTreeSet::new();
    // A consistent LIST, not a cache: the Namespace event that triggered this reconcile may
    // not have reached a separate cache yet, and the new namespace would wait for the next refresh.
    let namespaces = Api::<Namespace>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("list namespaces"))?;
    let existing: BTreeSet<String> = namespaces.items.iter().map(ResourceExt::name_any).collect();
    for ns in namespaces.items {
        if ctx.tunables.watches(&ns.name_any())
            && namespace_matches(&ns, selector.as_ref(), cps.spec.namespaces.as_ref())
        {
            matching.insert(ns.name_any());
        }
    }
    let missing_namespaces = missing_namespaces(cps.spec.namespaces.as_ref(), &existing, |ns| {
        ctx.tunables.watches(ns)
    });
    let mut missing_accounts = Vec::new();
    let (mut served, mut failed, mut written) = (BTreeSet::new(), Vec::new(), 0);
    for ns in &matching {
        let secret = desired_secret(
            ns,
            &secret_name,
            owner.clone(),
            (CLUSTER_PULL_SECRET_LABEL, &cps.name_any()),
            &credentials.dockerconfigjson,
        );
        let result = async {
            let w = apply_secret(ctx, ClusterPullSecretController::FIELD_MANAGER, &secret, &uid).await?;
            let missing =
                sync_service_accounts(ctx, ns, &cps.spec.service_accounts, &secret_name, true).await?;
            Ok::<_, Error>((w, missing))
        }
        .await;
        match result {
            Ok((w, missing)) => {
                written += usize::from(w);
                served.insert(ns.clone());
                if !missing.is_empty() {
                    missing_accounts.push((ns.clone(), missing));
                }
            }
            Err(e) => failed.push((ns.clone(), e)),
        }
    }
    // Namespaces that stopped matching lose the Secret (only Secrets with our labels are seen).
    let mut removed = 0;
    for ns in namespaces_with_our_secrets(ctx, cps).difference(&matching) {
        sync_service_accounts(ctx, ns, &cps.spec.service_accounts, &secret_name, false).await?;
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
        match api.delete(&secret_name, &DeleteParams::default()).await {
            Ok(_) => removed += 1,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(Error::kube(
                    "delete a pull Secret in a namespace that no longer matches",
                )(e));
            }
        }
    }
    ctx.metrics.cached_secrets(ctx.managed_secrets.state().len());
    Ok(Fanned {
        credentials,
        served,
        failed,
        written,
        removed,
        missing: not_found(&missing_namespaces, &missing_accounts),
    })
}

/// Pure: the next ClusterPullSecret status. A partial failure keeps the root cause's reason and
/// class, and the message counts the namespaces. Otherwise an included namespace or a named
/// ServiceAccount that does not exist makes it wait (`Reconciling`, `NamespaceNotFound` or
/// `ServiceAccountNotFound`, naming them).
fn next_status(cps: &ClusterPullSecret, outcome: &Result<Fanned>, now: &Time) -> ClusterPullSecretStatus {
    let prev = cps.status.clone().unwrap_or_default();
    let generation = cps.meta().generation;
    let mut status = ClusterPullSecretStatus {
        observed_generation: generation,
        last_handled_reconcile_at: cps.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        secret_name: Some(secret_name(cps)),
        ..prev.clone()
    };
    let mut message = None;
    let summary = match outcome {
        Ok(f) => {
            status.expires_at = time(f.credentials.expires_at);
            status.last_refresh_time = time(f.credentials.refreshed_at);
            status.registries = f.credentials.registries.clone();
            status.namespace_count = Some(i32::try_from(f.served.len()).unwrap_or(i32::MAX));
            status.failed_namespaces = f.failed.iter().take(20).map(|(ns, _)| ns.clone()).collect();
            let is_in = format!(
                "Secret {} is in {}",
                secret_name(cps),
                counted(f.served.len(), "namespace", "namespaces")
            );
            match f.failed.first() {
                None => match &f.missing {
                    None => Outcome::InSync(is_in),
                    Some(e) => Outcome::Waiting {
                        reason: e.reason(),
                        message: format!("{e}; {is_in}"),
                    },
                },
                Some((ns, e)) => {
                    message = Some(format!(
                        "{} of {} namespaces failed, first {ns}: {}",
                        f.failed.len(),
                        f.failed.len() + f.served.len(),
                        crate::text::error_chain(e)
                    ));
                    Outcome::Failed(e)
                }
            }
        }
        Err(e) => Outcome::Failed(e),
    };
    status.conditions = summarize(&prev.conditions, generation, &summary, now);
    if let Some(message) = message {
        for c in status.conditions.iter_mut() {
            c.message = crate::text::truncate(message.clone(), 1024);
        }
    }
    status
}

#[cfg(test)]
mod tests;
