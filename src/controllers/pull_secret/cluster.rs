//! The ClusterPullSecret controller: the same Secret in every matching namespace.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, watcher};

use super::credentials::credentials;
use super::secret::{apply_secret, desired_secret};
use super::service_accounts::{argocd_runs_in, sync_service_accounts};
use super::{CLUSTER_PULL_SECRET_LABEL, counted, managed_secrets_selector, owner_reference, stored_owner};
use crate::api::v1alpha1::{ClusterPullSecret, ClusterPullSecretStatus};
use crate::backend::RegistryBackend;
use crate::controllers::context::{Context, object_key};
use crate::controllers::driver::{self, Note, Reconciler};
use crate::controllers::triggers;
use crate::decide::pull_secret::format::{argocd_not_found, is_argocd_account, secret_body};
use crate::error::{Error, Result};
use crate::secrets::schedule;

pub const CONTROLLER: &str = "cluster-pull-secret";

use crate::decide::pull_secret::PullCredentials;
use crate::decide::pull_secret::cluster as decide;
pub use crate::decide::pull_secret::cluster::{
    Fanned, SYSTEM_NAMESPACES, earliest, missing_namespaces, namespace_matches, namespace_selector,
    next_status, not_found, secret_name,
};

/// Runs the ClusterPullSecret controller until shutdown.
///
/// `namespaces` feeds `ctx.namespaces`: the Namespace watch that re-queues ClusterPullSecrets
/// writes each change into that store before it passes the trigger on, so the reconcile it
/// causes already reads the change (see [`namespace_triggers`]).
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    namespaces: Writer<PartialObjectMeta<Namespace>>,
) {
    let (store, own) = triggers::primary::<ClusterPullSecretController, B>(&ctx, triggers::own);
    let registries = triggers::registry_changes(&ctx, triggers::registry);
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
        .watches_stream(namespace_triggers(&ctx.client, namespaces), move |_| {
            ns_store.state().into_iter().map(|c| ObjectRef::from_obj(c.as_ref())).collect::<Vec<_>>()
        })
        .watches_stream(registries, move |registry| {
            triggers::users_of(&store, &registry, |c: &ClusterPullSecret, name| {
                c.spec.registries.iter().any(|r| r == name)
                    || c.spec.ecr_public.as_ref().is_some_and(|p| p.registry == name)
            })
        })
        .watches(Api::<ServiceAccount>::all(ctx.client.clone()), watcher::Config::default(), move |sa| {
            let name = sa.name_any();
            let argocd = is_argocd_account(sa.labels());
            sa_store
                .state()
                .into_iter()
                .filter(|c| {
                    (argocd && c.spec.format.is_argocd())
                        || c.spec.service_accounts.iter().any(|s| s == "*" || *s == name)
                        || c.spec.identity.as_ref().is_some_and(|i| i.service_account_name == name)
                })
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect::<Vec<_>>()
        });
    driver::run::<ClusterPullSecretController, B>(controller, ctx, shutdown).await;
}

/// The metadata-only Namespace watch, reflected into `store` (`ctx.namespaces`), as triggers:
/// each change passes on only after the store holds it, so a reconcile it causes sees the new,
/// relabelled or deleted namespace. A (re)list passes its objects on only once it is complete
/// (one trigger, after the store has swapped in the new list): its objects before that would
/// re-queue reconciles that still read the previous list, and a namespace created while the
/// watch was down would then never be served. The trigger's object is ignored (every change
/// re-queues every ClusterPullSecret), so a completed list passes a stand-in named
/// `(every namespace listed)`.
fn namespace_triggers(
    client: &kube::Client,
    store: Writer<PartialObjectMeta<Namespace>>,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<Namespace>, watcher::Error>> + Send + 'static {
    // An `Api` of `PartialObjectMeta` lists and watches metadata only.
    watcher(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(|ns| crate::controllers::triggers::slim(&mut ns.metadata))
    .reflect(store)
    .filter_map(|event| {
        std::future::ready(match event {
            Ok(watcher::Event::Apply(ns) | watcher::Event::Delete(ns)) => Some(Ok(ns)),
            // kube names the trigger's object in the reconcile reason, so it needs a name.
            Ok(watcher::Event::InitDone) => Some(Ok(PartialObjectMeta {
                metadata: ObjectMeta {
                    name: Some("(every namespace listed)".into()),
                    ..ObjectMeta::default()
                },
                ..PartialObjectMeta::default()
            })),
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
            Err(e) => Some(Err(e)),
        })
    })
}

/// How many namespaces one ClusterPullSecret reconcile writes at a time (its Secret, then its
/// ServiceAccount entries): a fan-out over 1,000 namespaces neither waits for each in turn nor
/// sends 1,000 requests at once. At most `--concurrency` ClusterPullSecrets reconcile at once.
pub const NAMESPACE_WRITES: usize = 8;

/// What serving one namespace did: whether its Secret was written, the named ServiceAccounts
/// missing there, (Argo CD formats) whether Argo CD does not run there, and (`spec.identity`)
/// the credentials minted for it.
type NamespaceServed = (bool, Vec<String>, bool, Option<PullCredentials>);

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
        decide::failure(f)
    }

    fn into_result(f: Fanned) -> Result<Fanned> {
        decide::into_result(f)
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
        let now = SystemTime::now();
        let refresh_at = f.credentials.as_ref().map_or(now + interval, |c| c.refresh_at);
        schedule::requeue_after(now, refresh_at, interval)
    }
}

async fn fan_out<B: RegistryBackend>(cps: &ClusterPullSecret, ctx: &Context<B>) -> Result<Fanned> {
    // Before any ECR call, and whether or not a namespace would reach the selector.
    let selector = namespace_selector(cps.spec.namespace_selector.as_ref())?;
    // Without an identity one content serves every namespace; with one, each namespace mints
    // its own (below), as its own ServiceAccount.
    let identity = cps.spec.identity.as_ref();
    let shared = match identity {
        None => Some(
            credentials(
                ctx,
                &cps.spec.registries,
                cps.spec.refresh_fraction,
                None,
                cps.spec.ecr_public.as_ref(),
            )
            .await?,
        ),
        Some(_) => None,
    };
    let secret_name = secret_name(cps);
    let render =
        |c: &PullCredentials| secret_body(cps.spec.format, cps.spec.argocd.as_ref(), &secret_name, &c.logins);
    let shared_body = shared.as_ref().map(render).transpose()?;
    let owner = owner_reference(cps).ok_or(Error::MissingMetadata("uid"))?;
    let uid = owner.uid.clone();
    // The namespace store, fed by the watch that re-queues this reconcile on a namespace change
    // (see `namespace_triggers`): a namespace just created is in it before its trigger arrives.
    // Never read before its first list: an empty store would remove every Secret below.
    ctx.namespaces
        .wait_until_ready()
        .await
        .map_err(|_| Error::Internal("the namespace cache stopped before it listed".into()))?;
    let namespaces = ctx.namespaces.state();
    let existing: BTreeSet<String> = namespaces.iter().map(|ns| ns.name_any()).collect();
    let matching: BTreeSet<String> = namespaces
        .iter()
        .filter(|ns| {
            ctx.tunables.watches(&ns.name_any())
                && namespace_matches(ns.as_ref(), selector.as_ref(), cps.spec.namespaces.as_ref())
        })
        .map(|ns| ns.name_any())
        .collect();
    let missing_namespaces = missing_namespaces(cps.spec.namespaces.as_ref(), &existing, |ns| {
        ctx.tunables.watches(ns)
    });
    let owner_label = cps.name_any();
    // At most NAMESPACE_WRITES namespaces at a time; the results are sorted by namespace again,
    // so the status (its first failure, its lists) does not depend on which finished first.
    let mut results: Vec<(String, Result<NamespaceServed>)> = futures::stream::iter(matching.iter().cloned())
        .map(|ns: String| {
            let (uid, secret_name, owner, owner_label) = (&uid, &secret_name, &owner, &owner_label);
            let (shared_body, render) = (&shared_body, &render);
            async move {
                let result = async {
                    let own = match identity {
                        Some(id) if shared_body.is_none() => {
                            let fraction = cps.spec.refresh_fraction;
                            let ours = Some((ns.as_str(), id));
                            Some(
                                credentials(
                                    ctx,
                                    &cps.spec.registries,
                                    fraction,
                                    ours,
                                    cps.spec.ecr_public.as_ref(),
                                )
                                .await?,
                            )
                        }
                        _ => None,
                    };
                    let own_body = own.as_ref().map(render).transpose()?;
                    let body = own_body
                        .as_ref()
                        .or(shared_body.as_ref())
                        .ok_or_else(|| Error::Internal("no credentials for a namespace".into()))?;
                    let label = (CLUSTER_PULL_SECRET_LABEL, owner_label.as_str());
                    let secret = desired_secret(&ns, secret_name, owner.clone(), label, body);
                    let w =
                        apply_secret(ctx, ClusterPullSecretController::FIELD_MANAGER, &secret, uid).await?;
                    // An Argo CD Secret goes to no ServiceAccount; it is read where Argo CD runs.
                    if cps.spec.format.is_argocd() {
                        return Ok::<_, Error>((w, Vec::new(), !argocd_runs_in(ctx, &ns).await?, own));
                    }
                    let missing =
                        sync_service_accounts(ctx, &ns, &cps.spec.service_accounts, secret_name, true)
                            .await?;
                    Ok((w, missing, false, own))
                }
                .await;
                (ns, result)
            }
        })
        .buffer_unordered(NAMESPACE_WRITES)
        .collect()
        .await;
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut missing_accounts, mut without_argocd) = (Vec::new(), Vec::new());
    let (mut served, mut failed, mut written) = (BTreeSet::new(), Vec::new(), 0);
    let mut minted = Vec::new();
    for (ns, result) in results {
        match result {
            Ok((w, missing, no_argocd, own)) => {
                minted.extend(own);
                written += usize::from(w);
                served.insert(ns.clone());
                if no_argocd {
                    without_argocd.push(ns.clone());
                }
                if !missing.is_empty() {
                    missing_accounts.push((ns, missing));
                }
            }
            Err(e) => failed.push((ns, e)),
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
    let (credentials, roles) = match shared {
        Some(c) => (Some(c), Vec::new()),
        None => earliest(minted),
    };
    Ok(Fanned {
        credentials,
        roles,
        served,
        failed,
        written,
        removed,
        missing: not_found(&missing_namespaces, &missing_accounts)
            .or_else(|| argocd_not_found(&without_argocd)),
    })
}
