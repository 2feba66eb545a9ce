//! The controllers and their shared wiring.

pub mod backoff;
pub mod context;
pub mod lifecycle_policy;
pub mod pull_secret;
pub mod registry;
pub mod replication;
pub mod repository;

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Resource};

use crate::api::v1alpha1::Registry;
use crate::backend::RegistryBackend;
use crate::cli::ControllerName;
use crate::error::{Error, ErrorClass, error_chain};
use context::{Context, object_key};

/// How a failed reconcile is retried: transient errors back off per object, waiting retries
/// soon, stalled re-checks slowly (a spec change triggers at once anyway).
pub fn error_policy<K, B>(obj: Arc<K>, err: &Error, ctx: Arc<Context<B>>) -> Action
where
    K: Resource<DynamicType = ()>,
    B: RegistryBackend,
{
    match err.class() {
        ErrorClass::Transient => Action::requeue(ctx.backoff.next_delay(&object_key(obj.as_ref()))),
        ErrorClass::Waiting => Action::requeue(ctx.tunables.waiting_requeue),
        ErrorClass::Stalled => Action::requeue(ctx.tunables.stalled_recheck),
    }
}

/// Ends a reconcile: records it in the metrics and, after a success, forgets the object's failures
/// (kube has no per-object backoff of its own).
pub fn finish<K: Resource, B: RegistryBackend>(
    ctx: &Context<B>,
    controller: &'static str,
    obj: &K,
    start: std::time::Instant,
    result: Result<Action, Error>,
) -> Result<Action, Error> {
    ctx.metrics.reconciled(
        controller,
        start.elapsed(),
        result.as_ref().err().map(Error::reason),
    );
    if result.is_ok() {
        ctx.backoff.reset(&object_key(obj));
    }
    result
}

/// Logs what the controller stream yields; nothing is dropped silently.
pub async fn report<K: Resource>(
    controller: &'static str,
    result: Result<(ObjectRef<K>, Action), kube::runtime::controller::Error<Error, watcher::Error>>,
) {
    use kube::runtime::controller::Error as C;
    match result {
        Ok((obj, _)) => tracing::debug!(controller, object = %obj, "reconciled"),
        Err(C::ReconcilerFailed(err, obj)) => {
            let chain = error_chain(&err);
            match err.class() {
                ErrorClass::Stalled => {
                    tracing::warn!(controller, object = %obj, reason = err.reason(), error = %chain, "reconcile stalled")
                }
                _ => {
                    tracing::info!(controller, object = %obj, reason = err.reason(), error = %chain, "reconcile failed, will retry")
                }
            }
        }
        Err(e) => tracing::warn!(controller, error = %error_chain(&e), "controller error"),
    }
}

/// Waits until every CRD of this operator is Established.
pub async fn wait_for_crds(client: &Client, timeout: Duration) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crate::api::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        tracing::info!(crd = %name, "waiting for CRD");
        tokio::time::timeout(timeout, await_condition(api.clone(), &name, conditions::is_crd_established()))
            .await
            .map_err(|_| Error::InvalidSpec(format!("CRD {name} is not installed or not Established; install the CRDs (ecr-operator crd | kubectl apply -f -)")))?
            .map_err(|e| Error::InvalidSpec(format!("waiting for CRD {name}: {e}")))?;
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

/// A reflector store of `api`, kept up to date by a background task.
fn reflected<K>(api: Api<K>, config: watcher::Config) -> (reflector::Store<K>, tokio::task::JoinHandle<()>)
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
    let stream = reflector(writer, watcher(api, config))
        .default_backoff()
        .applied_objects()
        .for_each(|_| std::future::ready(()));
    (store, tokio::spawn(stream))
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
    let (registries, registry_reflector) = reflected(
        Api::<Registry>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    );
    let enabled = |name| controllers.is_empty() || controllers.contains(&name);
    // Only our own Secrets are cached: memory does not grow with the cluster's other Secrets.
    // Without the pull-secret controllers there is no Secret watch at all (nor RBAC for one).
    let (managed_secrets, secret_reflector) =
        if enabled(ControllerName::PullSecret) || enabled(ControllerName::ClusterPullSecret) {
            let selector = pull_secret::managed_secrets_selector();
            let (store, task) = reflected(
                Api::<Secret>::all(client.clone()),
                watcher::Config::default().labels(&selector).any_semantic(),
            );
            (store, Some(task))
        } else {
            (reflector::store::<Secret>().0, None)
        };
    let ctx = Arc::new(Context {
        client: client.clone(),
        backend,
        repositories: crate::cache::RepositoryCache::new(tunables.repository_cache_ttl),
        tokens: crate::cache::TokenCache::new(token_lifetime, metrics.clone()),
        metrics,
        tunables,
        backoff: backoff::ErrorBackoff::default(),
        registries: registries.clone(),
        managed_secrets: managed_secrets.clone(),
        instance,
    });
    let mut caches = vec![("Registry", registries.wait_until_ready().boxed())];
    if secret_reflector.is_some() {
        caches.push(("Secret", managed_secrets.wait_until_ready().boxed()));
    }
    let mut synced = Vec::new();
    for (what, ready) in caches {
        ready
            .await
            .map_err(|e| Error::InvalidSpec(format!("{what} cache: {e}")))?;
        synced.push(what);
    }
    tracing::info!(caches = ?synced, "caches synced");
    ctx.metrics.cached_secrets(managed_secrets.state().len());
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
            ControllerName::PullSecret => pull_secret::controller(ctx, shutdown).boxed(),
            ControllerName::ClusterPullSecret => pull_secret::cluster_controller(ctx, shutdown).boxed(),
        });
    }
    futures::future::join_all(running).await;
    for task in [Some(registry_reflector), secret_reflector].into_iter().flatten() {
        task.abort();
    }
    tracing::info!("controllers stopped");
    Ok(())
}
