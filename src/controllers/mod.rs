//! The controllers and their shared wiring.

pub mod backoff;
pub mod context;
pub mod creation_template;
pub mod dereference;
pub mod drift;
pub mod driver;
pub mod events;
pub mod image_policy;
pub mod inventory;
pub mod lifecycle_policy;
pub mod protection;
pub mod public_repository;
pub mod pull_secret;
pub mod pull_through_cache_rule;
pub mod quarantine;
pub mod registry;
pub mod replication;
pub mod replication_rule;
pub mod repository;
pub mod runner;
pub mod triggers;
pub mod web_identity;

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::Api;
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{reflector, watcher};

use crate::api::v1alpha1::Registry;
use crate::backend::RegistryBackend;
use crate::cli::ControllerName;
use crate::error::Error;
use context::Context;

/// Waits until every CRD of this operator is Established.
pub async fn wait_for_crds(client: &Client, timeout: Duration) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crate::api::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        tracing::info!(crd = %name, "waiting for CRD");
        tokio::time::timeout(timeout, await_condition(api.clone(), &name, conditions::is_crd_established()))
            .await
            .map_err(|_| Error::Startup(format!("CRD {name} is not installed or not Established; install the CRDs (ecr-operator crd | kubectl apply -f -)")))?
            .map_err(|e| Error::Startup(format!("waiting for CRD {name}: {e}")))?;
    }
    Ok(())
}

/// A stable default cluster ID: the UID of the kube-system namespace.
pub async fn default_cluster_id(client: &Client) -> Result<String, Error> {
    let ns = Api::<Namespace>::all(client.clone())
        .get("kube-system")
        .await
        .map_err(Error::kube("read namespace kube-system"))?;
    ns.metadata.uid.ok_or(Error::MissingMetadata("uid"))
}

/// A reflector store of `api`, kept up to date by a background task, and a counter that moves
/// after each change of the store (an object applied or deleted, a re-list swapped in): what
/// [`triggers::registry_changes`] reads the store on, so a reconcile it re-queues finds there what
/// re-queued it.
fn reflected<K>(
    client: &Client,
    config: watcher::Config,
) -> (
    reflector::Store<K>,
    tokio::sync::watch::Receiver<u64>,
    tokio::task::JoinHandle<()>,
)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let (changed, changes) = tokio::sync::watch::channel(0_u64);
    let stream = reflector(
        writer,
        triggers::watch_typed::<K>(client.clone(), config, triggers::log_undecodable),
    )
    .for_each(move |event| {
        if let Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) = event {
            changed.send_modify(|n| *n = n.wrapping_add(1));
        }
        std::future::ready(())
    });
    (store, changes, tokio::spawn(stream))
}

/// The `/readyz` parts of a controller: the `CONTROLLER` names of the watches it lists.
fn readiness_parts(name: ControllerName) -> &'static [&'static str] {
    match name {
        ControllerName::Registry => &[registry::CONTROLLER],
        ControllerName::Repository => &[repository::CONTROLLER],
        ControllerName::LifecyclePolicy => &[lifecycle_policy::CONTROLLER],
        ControllerName::Replication => &[replication::CONTROLLER, replication_rule::CONTROLLER],
        ControllerName::PullSecret => &[pull_secret::namespaced::CONTROLLER],
        ControllerName::ClusterPullSecret => &[pull_secret::cluster::CONTROLLER],
        ControllerName::PullThroughCache => &[pull_through_cache_rule::CONTROLLER],
        ControllerName::CreationTemplate => &[creation_template::CONTROLLER],
        ControllerName::PublicRepository => &[public_repository::CONTROLLER],
        ControllerName::ImagePolicy => &[image_policy::CONTROLLER],
    }
}

/// Start-up settings of [`run`].
pub struct RunOptions {
    pub tunables: context::Tunables,
    /// The Pod name (events' reporting instance).
    pub instance: Option<String>,
    /// `--assume-token-lifetime` (tests only).
    pub token_lifetime: Option<Duration>,
    /// Set once the caches are synced.
    pub readiness: crate::server::Readiness,
    /// Controllers to run; all when empty.
    pub controllers: std::collections::BTreeSet<ControllerName>,
}

/// Runs every controller until `shutdown` completes.
pub async fn run<B: RegistryBackend>(
    client: Client,
    backend: Arc<B>,
    metrics: Arc<crate::metrics::Metrics>,
    options: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let RunOptions {
        tunables,
        instance,
        token_lifetime,
        readiness,
        controllers,
    } = options;
    let shutdown = shutdown.boxed().shared();
    // The Registries of this shard only: a Registry another instance serves is, to this one, a
    // Registry that does not exist.
    let (registries, registry_changes, registry_reflector) =
        reflected::<Registry>(&client, tunables.watch_selector.watcher_config());
    let enabled = |name| controllers.is_empty() || controllers.contains(&name);
    // Only our own Secrets are cached: memory does not grow with the cluster's other Secrets.
    // Without the pull-secret controllers there is no Secret watch at all (nor RBAC for one).
    let (managed_secrets, secret_reflector) =
        if enabled(ControllerName::PullSecret) || enabled(ControllerName::ClusterPullSecret) {
            let selector = pull_secret::managed_secrets_selector();
            let (store, _, task) = reflected::<Secret>(
                &client,
                watcher::Config::default().labels(&selector).any_semantic(),
            );
            (store, Some(task))
        } else {
            (reflector::store::<Secret>().0, None)
        };
    // Written by the ClusterPullSecret controller's Namespace watch (its triggers), read by its
    // reconciles.
    let (namespaces, namespace_writer) = reflector::store();
    let mut namespace_writer = Some(namespace_writer);
    let ctx = Arc::new(Context {
        client: client.clone(),
        backend: backend.clone(),
        cache: crate::cache::Cached::new(
            backend,
            tunables.repository_cache_ttl,
            token_lifetime,
            metrics.clone(),
        ),
        drift: drift::DriftBudget::new(
            tunables.ecr_rate_limit,
            tunables.background_share,
            tunables.default_interval,
            metrics.clone(),
        ),
        seen: std::sync::Mutex::default(),
        protection: crate::controllers::protection::State::default(),
        metrics,
        tunables,
        backoff: backoff::ErrorBackoff::default(),
        registries: registries.clone(),
        registry_changes,
        managed_secrets: managed_secrets.clone(),
        namespaces,
        events: events::Events::new(client.clone(), instance),
        readiness: readiness.clone(),
        quarantine: quarantine::Quarantine::default(),
        static_keys: crate::cache::static_keys::KeyCache::default(),
        sessions: crate::cache::sessions::Sessions::default(),
    });
    let mut caches = vec![("Registry", registries.wait_until_ready().boxed())];
    if secret_reflector.is_some() {
        caches.push(("Secret", managed_secrets.wait_until_ready().boxed()));
    }
    let mut synced = Vec::new();
    for (what, ready) in caches {
        // A cache that cannot list (RBAC, a missing CRD) must not hold off a shutdown.
        futures::select! {
            r = ready.fuse() => r.map_err(|e| Error::Startup(format!("{what} cache: {e}")))?,
            () = shutdown.clone().fuse() => {
                for task in [Some(registry_reflector), secret_reflector].into_iter().flatten() {
                    task.abort();
                }
                return Ok(());
            }
        }
        synced.push(what);
    }
    tracing::info!(caches = ?synced, "caches synced");
    ctx.metrics.cached_secrets(managed_secrets.state().len());
    // Not ready until every controller's watch has listed its kind.
    for name in ControllerName::ALL.into_iter().filter(|&n| enabled(n)) {
        for part in readiness_parts(name) {
            readiness.mark(part, false);
        }
    }
    readiness.set(true);
    tracing::info!(controllers = ?controllers, "controllers started");
    let mut running = Vec::new();
    for name in ControllerName::ALL.into_iter().filter(|&n| enabled(n)) {
        let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
        running.push(match name {
            ControllerName::Registry => registry::controller(ctx, shutdown).boxed(),
            ControllerName::Repository => repository::controller(ctx, shutdown).boxed(),
            ControllerName::LifecyclePolicy => lifecycle_policy::controller(ctx, shutdown).boxed(),
            ControllerName::Replication => replication::controller(ctx, shutdown).boxed(),
            ControllerName::PullSecret => pull_secret::namespaced::controller(ctx, shutdown).boxed(),
            ControllerName::ClusterPullSecret => {
                // Each controller runs once, so the writer is still here.
                let writer = namespace_writer.take().unwrap_or_default();
                pull_secret::cluster::controller(ctx, shutdown, writer).boxed()
            }
            ControllerName::PullThroughCache => pull_through_cache_rule::controller(ctx, shutdown).boxed(),
            ControllerName::CreationTemplate => creation_template::controller(ctx, shutdown).boxed(),
            ControllerName::PublicRepository => public_repository::controller(ctx, shutdown).boxed(),
            ControllerName::ImagePolicy => image_policy::controller(ctx, shutdown).boxed(),
        });
    }
    futures::future::join_all(running).await;
    for task in [Some(registry_reflector), secret_reflector].into_iter().flatten() {
        task.abort();
    }
    tracing::info!("controllers stopped");
    Ok(())
}
