//! Reconciles `PullSecret` (one namespace) and `ClusterPullSecret` (every matching namespace):
//! `kubernetes.io/dockerconfigjson` Secrets with ECR credentials, refreshed before the 12-hour
//! tokens expire. One token per (region, endpoint, identity) is shared by every consumer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::core::SelectorExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::context::{Context, object_key, publish_outcome, ready_reason};
use super::error_policy;
use crate::api::v1alpha1::{
    ClusterPullSecret, ClusterPullSecretStatus, NamespaceFilter, PullSecret, PullSecretRegistry,
    PullSecretStatus,
};
use crate::api::{FINALIZER, OPERATOR_NAME, RECONCILE_REQUESTED_AT};
use crate::backend::RegistryBackend;
use crate::error::{Error, Result};
use crate::secrets::{dockerconfig, schedule};
use crate::status::{Outcome, summarize, write_if_changed};

pub const CONTROLLER: &str = "pull-secret";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const PULL_SECRET_LABEL: &str = "ecr-operator.dev/pullsecret";
pub const CLUSTER_PULL_SECRET_LABEL: &str = "ecr-operator.dev/clusterpullsecret";
const DOCKERCONFIGJSON: &str = ".dockerconfigjson";
/// Only Secrets with this label are watched and cached.
pub fn managed_secrets_selector() -> String {
    format!("{MANAGED_BY}={OPERATOR_NAME}")
}

/// Credentials for a set of registries, ready to write.
struct Credentials {
    dockerconfigjson: SecretString,
    registries: Vec<PullSecretRegistry>,
    expires_at: SystemTime,
    refreshed_at: SystemTime,
    refresh_at: SystemTime,
}

/// Tokens for `registries` (one per region and identity, from the cache) rendered into one
/// dockerconfigjson with one `auths` entry per registry host.
async fn credentials<B: RegistryBackend>(
    ctx: &Context<B>,
    registries: &[String],
    fraction: f64,
) -> Result<Credentials> {
    let now = SystemTime::now();
    let mut logins = BTreeMap::new();
    let mut listed = Vec::new();
    let (mut expires_at, mut refreshed_at, mut refresh_at) =
        (None::<SystemTime>, None::<SystemTime>, None::<SystemTime>);
    for name in registries {
        let registry = ctx.ready_registry(name)?;
        let target = ctx.target(&registry).await?;
        let token = ctx
            .tokens
            .get(ctx.backend.as_ref(), &target, fraction, now)
            .await
            .map_err(Error::backend("GetAuthorizationToken"))?;
        let status = registry.status.clone().unwrap_or_default();
        let host = status.registry_host.clone().unwrap_or_default();
        ctx.metrics.token_expiry(name, unix(token.expires_at));
        logins.insert(host.clone(), token.token.clone());
        listed.push(PullSecretRegistry {
            name: name.clone(),
            host: Some(host),
        });
        expires_at = Some(expires_at.map_or(token.expires_at, |e| e.min(token.expires_at)));
        refreshed_at = Some(refreshed_at.map_or(token.fetched_at, |r| r.min(token.fetched_at)));
        let next = schedule::refresh_at(token.fetched_at, token.expires_at, fraction, &target.key());
        refresh_at = Some(refresh_at.map_or(next, |r| r.min(next)));
    }
    let dockerconfigjson = dockerconfig::render(&logins).map_err(|e| Error::InvalidToken(e.to_string()))?;
    Ok(Credentials {
        dockerconfigjson,
        registries: listed,
        expires_at: expires_at.unwrap_or(now),
        refreshed_at: refreshed_at.unwrap_or(now),
        refresh_at: refresh_at.unwrap_or(now),
    })
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn time(t: SystemTime) -> Option<Time> {
    k8s_openapi::jiff::Timestamp::try_from(t).ok().map(Time)
}

/// Pure: the Secret to write.
pub fn desired_secret(
    namespace: &str,
    name: &str,
    owner: OwnerReference,
    owner_label: (&str, &str),
    content: &SecretString,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.to_owned(), OPERATOR_NAME.to_owned()),
                (owner_label.0.to_owned(), owner_label.1.to_owned()),
            ])),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".to_owned()),
        data: Some(BTreeMap::from([(
            DOCKERCONFIGJSON.to_owned(),
            ByteString(content.expose_secret().as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// Pure: whether `existing` already is `desired` (same content, type, our labels and owner).
fn secret_in_sync(existing: &Secret, desired: &Secret) -> bool {
    let labels_ok = desired
        .labels()
        .iter()
        .all(|(k, v)| existing.labels().get(k) == Some(v));
    let owner_ok = desired
        .owner_references()
        .iter()
        .all(|o| existing.owner_references().contains(o));
    labels_ok && owner_ok && existing.type_ == desired.type_ && existing.data == desired.data
}

/// Writes the Secret unless it is already in sync; never touches a Secret someone else owns.
/// Returns whether it wrote.
///
/// It reads only the label-selected cache of our own Secrets, so the operator needs no `get` on
/// Secrets: a Secret missing from the cache is applied without `force`, and if someone else
/// already wrote a Secret of that name the API server answers with a conflict (or, for another
/// `type`, an immutable-field error) instead of letting us take it over.
async fn apply_secret<B: RegistryBackend>(
    ctx: &Context<B>,
    desired: &Secret,
    owner_uid: &str,
) -> Result<bool> {
    let ns = desired.namespace().unwrap_or_default();
    let name = desired.name_any();
    let cached = ctx
        .managed_secrets
        .get(&ObjectRef::<Secret>::new(&name).within(&ns));
    let force = match cached {
        Some(existing) if !existing.owner_references().iter().any(|o| o.uid == owner_uid) => {
            return Err(Error::SecretExists(format!("{ns}/{name}")));
        }
        Some(existing) if secret_in_sync(&existing, desired) => return Ok(false),
        Some(_) => true,
        None => false,
    };
    let mut params = PatchParams::apply(&ctx.field_manager(CONTROLLER));
    if force {
        params = params.force();
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    match api.patch(&name, &params, &Patch::Apply(desired)).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if !force && (s.code == 409 || s.code == 422) => {
            return Err(Error::SecretExists(format!("{ns}/{name}")));
        }
        Err(e) => return Err(Error::kube("apply the pull Secret")(e)),
    }
    ctx.metrics.secret_written(CONTROLLER);
    Ok(true)
}

/// Pure: the JSON patch that adds or removes our entry in `imagePullSecrets`, guarded by the
/// resourceVersion (the list is atomic under server-side apply), or `None` when nothing changes.
pub fn service_account_patch(sa: &ServiceAccount, secret: &str, present: bool) -> Option<serde_json::Value> {
    let list = sa.image_pull_secrets.as_deref().unwrap_or_default();
    let index = list.iter().position(|r| r.name == secret);
    let rv = sa.resource_version().unwrap_or_default();
    let guard = json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv});
    match (present, index) {
        (true, None) if sa.image_pull_secrets.is_none() => {
            Some(json!([guard, {"op": "add", "path": "/imagePullSecrets", "value": [{"name": secret}]}]))
        }
        (true, None) => {
            Some(json!([guard, {"op": "add", "path": "/imagePullSecrets/-", "value": {"name": secret}}]))
        }
        (false, Some(i)) => Some(json!([
            guard,
            {"op": "test", "path": format!("/imagePullSecrets/{i}/name"), "value": secret},
            {"op": "remove", "path": format!("/imagePullSecrets/{i}")}
        ])),
        _ => None,
    }
}

/// Adds (or removes) our Secret in the `imagePullSecrets` of the named ServiceAccounts (`*`: all)
/// of a namespace, leaving every other entry alone; retries on a concurrent write.
async fn sync_service_accounts<B: RegistryBackend>(
    ctx: &Context<B>,
    namespace: &str,
    names: &[String],
    secret: &str,
    present: bool,
) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    let all = names.iter().any(|n| n == "*");
    let targets: Vec<String> = if all {
        api.list(&Default::default())
            .await
            .map_err(Error::kube("list ServiceAccounts"))?
            .items
            .iter()
            .map(|s| s.name_any())
            .collect()
    } else {
        names.to_vec()
    };
    for name in targets {
        for attempt in 0..3 {
            let Some(sa) = api
                .get_opt(&name)
                .await
                .map_err(Error::kube("read a ServiceAccount"))?
            else {
                break;
            };
            let Some(ops) = service_account_patch(&sa, secret, present) else {
                break;
            };
            let patch: json_patch::Patch =
                serde_json::from_value(ops).map_err(|e| Error::InvalidSpec(format!("internal: {e}")))?;
            match api
                .patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
                .await
            {
                Ok(_) => break,
                // The test op failed: someone wrote in between. Read again.
                Err(kube::Error::Api(s)) if (s.code == 409 || s.code == 422) && attempt < 2 => continue,
                Err(e) => return Err(Error::kube("patch a ServiceAccount's imagePullSecrets")(e)),
            }
        }
    }
    Ok(())
}

/// Pure: `1 registry`, `2 registries`.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn owner_reference<K: Resource<DynamicType = ()>>(obj: &K) -> Option<OwnerReference> {
    obj.controller_owner_ref(&())
}

// ----- PullSecret -------------------------------------------------------------------------------

/// Runs the PullSecret controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api = Api::<PullSecret>::all(ctx.client.clone());
    let controller = Controller::new(api, watcher::Config::default().any_semantic());
    let store = controller.store();
    let sa_store = store.clone();
    controller
        .owns(Api::<Secret>::all(ctx.client.clone()), watcher::Config::default().labels(&managed_secrets_selector()))
        .watches(Api::<crate::api::v1alpha1::Registry>::all(ctx.client.clone()), watcher::Config::default(), move |registry| {
            let name = registry.name_any();
            store.state().into_iter().filter(|p| p.spec.registries.contains(&name)).map(|p| ObjectRef::from_obj(p.as_ref())).collect::<Vec<_>>()
        })
        // A ServiceAccount created later gets the entry too.
        .watches(Api::<ServiceAccount>::all(ctx.client.clone()), watcher::Config::default(), move |sa| {
            let ns = sa.namespace().unwrap_or_default();
            let name = sa.name_any();
            sa_store
                .state()
                .into_iter()
                .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
                .filter(|p| p.spec.service_accounts.iter().any(|s| s == "*" || *s == name))
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        })
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.tunables.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile_pull_secret::<B>, error_policy::<PullSecret, B>, ctx.clone())
        .for_each(|r| super::report(CONTROLLER, r))
        .await;
}

fn secret_name(ps: &PullSecret) -> String {
    ps.spec.secret_name.clone().unwrap_or_else(|| ps.name_any())
}

async fn reconcile_pull_secret<B: RegistryBackend>(
    ps: Arc<PullSecret>,
    ctx: Arc<Context<B>>,
) -> Result<Action> {
    let start = Instant::now();
    let Some(ns) = ctx.served_namespace(ps.as_ref())? else {
        return Ok(Action::await_change());
    };
    let api = Api::<PullSecret>::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, ps.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(ps) => apply_pull_secret(&ps, &api, &ctx).await,
            FinalizerEvent::Cleanup(ps) => {
                // The Secret goes with its owner (garbage collection); remove our ServiceAccount entries.
                sync_service_accounts(&ctx, &ns, &ps.spec.service_accounts, &secret_name(&ps), false).await?;
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(Error::from);
    super::finish(&ctx, CONTROLLER, ps.as_ref(), start, result)
}

/// What one PullSecret reconcile achieved.
struct Served {
    credentials: Credentials,
    written: bool,
}

async fn apply_pull_secret<B: RegistryBackend>(
    ps: &PullSecret,
    api: &Api<PullSecret>,
    ctx: &Context<B>,
) -> Result<Action> {
    if ps.spec.suspend {
        return Ok(Action::await_change());
    }
    let outcome = serve_pull_secret(ps, ctx).await;
    let status = pull_secret_status(ps, &outcome, &Time(k8s_openapi::jiff::Timestamp::now()));
    let previous = ready_reason(ps.status.as_ref().map(|s| s.conditions.as_slice()));
    let written = write_if_changed(api, ps, &status, &ctx.field_manager(CONTROLLER)).await;
    let event = outcome.as_ref().map(|s| {
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
    });
    publish_outcome(
        &ctx.recorder(CONTROLLER),
        &ps.object_ref(&()),
        previous.as_deref(),
        event,
        "Reconcile",
    )
    .await;
    let served = outcome?;
    written?;
    let interval = ctx.interval(ps.spec.interval.as_ref(), &object_key(ps));
    Ok(Action::requeue(schedule::requeue_after(
        SystemTime::now(),
        served.credentials.refresh_at,
        interval,
    )))
}

async fn serve_pull_secret<B: RegistryBackend>(ps: &PullSecret, ctx: &Context<B>) -> Result<Served> {
    let ns = ps.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    // The Registries' tenancy rules apply to PullSecrets too (the labels are read once).
    let mut labels = None;
    for name in &ps.spec.registries {
        let registry = ctx.ready_registry(name)?;
        if let Some(selector) = &registry.spec.allowed_namespaces {
            if labels.is_none() {
                labels = Some(ctx.namespace_labels(&ns).await?);
            }
            if !matches_selector(selector, labels.get_or_insert_default())? {
                return Err(Error::NotAllowed(format!(
                    "Registry {name} does not allow namespace {ns} (allowedNamespaces)"
                )));
            }
        }
    }
    let credentials = credentials(ctx, &ps.spec.registries, ps.spec.refresh_fraction).await?;
    let owner = owner_reference(ps).ok_or(Error::MissingMetadata("uid"))?;
    let uid = owner.uid.clone();
    let secret = desired_secret(
        &ns,
        &secret_name(ps),
        owner,
        (PULL_SECRET_LABEL, &ps.name_any()),
        &credentials.dockerconfigjson,
    );
    let written = apply_secret(ctx, &secret, &uid).await?;
    sync_service_accounts(ctx, &ns, &ps.spec.service_accounts, &secret_name(ps), true).await?;
    Ok(Served { credentials, written })
}

fn matches_selector(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> Result<bool> {
    let s = kube::core::Selector::try_from(selector.clone())
        .map_err(|e| Error::InvalidSpec(format!("invalid label selector: {e}")))?;
    Ok(s.matches(labels))
}

/// Pure: the next PullSecret status. Times come from the cached token, so the status is stable
/// between refreshes and a no-op reconcile writes nothing.
fn pull_secret_status(ps: &PullSecret, outcome: &Result<Served>, now: &Time) -> PullSecretStatus {
    let prev = ps.status.clone().unwrap_or_default();
    let generation = ps.meta().generation;
    let mut status = PullSecretStatus {
        observed_generation: generation,
        last_handled_reconcile_at: ps.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        secret_name: Some(secret_name(ps)),
        ..prev.clone()
    };
    let summary = match outcome {
        Ok(s) => {
            status.expires_at = time(s.credentials.expires_at);
            status.last_refresh_time = time(s.credentials.refreshed_at);
            status.registries = s.credentials.registries.clone();
            Outcome::InSync(format!(
                "Secret {} holds credentials for {}",
                secret_name(ps),
                counted(s.credentials.registries.len(), "registry", "registries")
            ))
        }
        Err(e) => Outcome::Failed(e),
    };
    status.conditions = summarize(&prev.conditions, generation, &summary, now);
    status
}

// ----- ClusterPullSecret ------------------------------------------------------------------------

/// Runs the ClusterPullSecret controller until shutdown.
pub async fn cluster_controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api = Api::<ClusterPullSecret>::all(ctx.client.clone());
    let controller = Controller::new(api, watcher::Config::default().any_semantic());
    let store = controller.store();
    let ns_store = store.clone();
    let sa_store = store.clone();
    controller
        .owns(Api::<Secret>::all(ctx.client.clone()), watcher::Config::default().labels(&managed_secrets_selector()))
        // A namespace that appears, changes labels or goes away re-queues every ClusterPullSecret.
        .watches(Api::<Namespace>::all(ctx.client.clone()), watcher::Config::default(), move |_| {
            ns_store.state().into_iter().map(|c| ObjectRef::from_obj(c.as_ref())).collect::<Vec<_>>()
        })
        .watches(Api::<crate::api::v1alpha1::Registry>::all(ctx.client.clone()), watcher::Config::default(), move |registry| {
            let name = registry.name_any();
            store.state().into_iter().filter(|c| c.spec.registries.contains(&name)).map(|c| ObjectRef::from_obj(c.as_ref())).collect::<Vec<_>>()
        })
        .watches(Api::<ServiceAccount>::all(ctx.client.clone()), watcher::Config::default(), move |sa| {
            let name = sa.name_any();
            sa_store
                .state()
                .into_iter()
                .filter(|c| c.spec.service_accounts.iter().any(|s| s == "*" || *s == name))
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect::<Vec<_>>()
        })
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.tunables.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile_cluster::<B>, error_policy::<ClusterPullSecret, B>, ctx.clone())
        .for_each(|r| super::report("cluster-pull-secret", r))
        .await;
}

fn cluster_secret_name(c: &ClusterPullSecret) -> String {
    c.spec.secret_name.clone().unwrap_or_else(|| c.name_any())
}

/// Pure: whether a namespace gets the Secret: not terminating, passes `namespaces` and the selector.
pub fn namespace_matches(
    ns: &Namespace,
    selector: Option<&LabelSelector>,
    filter: Option<&NamespaceFilter>,
) -> Result<bool> {
    let name = ns.name_any();
    let terminating = ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating {
        return Ok(false);
    }
    if let Some(f) = filter {
        if f.include.as_ref().is_some_and(|inc| !inc.contains(&name)) {
            return Ok(false);
        }
        if f.exclude.as_ref().is_some_and(|exc| exc.contains(&name)) {
            return Ok(false);
        }
    }
    match selector {
        Some(s) => matches_selector(s, ns.labels()),
        None => Ok(true),
    }
}

async fn reconcile_cluster<B: RegistryBackend>(
    cps: Arc<ClusterPullSecret>,
    ctx: Arc<Context<B>>,
) -> Result<Action> {
    let start = Instant::now();
    let api = Api::<ClusterPullSecret>::all(ctx.client.clone());
    let result = finalizer(&api, FINALIZER, cps.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(cps) => apply_cluster(&cps, &api, &ctx).await,
            FinalizerEvent::Cleanup(cps) => {
                // Secrets go with their owner (garbage collection); remove our ServiceAccount entries.
                for ns in namespaces_with_our_secrets(&ctx, &cps) {
                    sync_service_accounts(
                        &ctx,
                        &ns,
                        &cps.spec.service_accounts,
                        &cluster_secret_name(&cps),
                        false,
                    )
                    .await?;
                }
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(Error::from);
    super::finish(&ctx, "cluster-pull-secret", cps.as_ref(), start, result)
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

/// What one ClusterPullSecret reconcile achieved.
struct Fanned {
    credentials: Credentials,
    served: BTreeSet<String>,
    failed: Vec<(String, Error)>,
    written: usize,
    removed: usize,
}

async fn apply_cluster<B: RegistryBackend>(
    cps: &ClusterPullSecret,
    api: &Api<ClusterPullSecret>,
    ctx: &Context<B>,
) -> Result<Action> {
    if cps.spec.suspend {
        return Ok(Action::await_change());
    }
    let outcome = fan_out(cps, ctx).await;
    let status = cluster_status(cps, &outcome, &Time(k8s_openapi::jiff::Timestamp::now()));
    let previous = ready_reason(cps.status.as_ref().map(|s| s.conditions.as_slice()));
    let written = write_if_changed(api, cps, &status, &ctx.field_manager(CONTROLLER)).await;
    let event = outcome.as_ref().map(|f| {
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
    });
    publish_outcome(
        &ctx.recorder(CONTROLLER),
        &cps.object_ref(&()),
        previous.as_deref(),
        event,
        "Reconcile",
    )
    .await;
    let fanned = outcome?;
    written?;
    let interval = ctx.interval(cps.spec.interval.as_ref(), &object_key(cps));
    let next = schedule::requeue_after(SystemTime::now(), fanned.credentials.refresh_at, interval);
    // Namespaces that failed are retried soon; the rest waits for the schedule.
    Ok(Action::requeue(if fanned.failed.is_empty() {
        next
    } else {
        next.min(Duration::from_secs(30))
    }))
}

async fn fan_out<B: RegistryBackend>(cps: &ClusterPullSecret, ctx: &Context<B>) -> Result<Fanned> {
    let credentials = credentials(ctx, &cps.spec.registries, cps.spec.refresh_fraction).await?;
    let owner = owner_reference(cps).ok_or(Error::MissingMetadata("uid"))?;
    let uid = owner.uid.clone();
    let secret_name = cluster_secret_name(cps);
    let mut matching = BTreeSet::new();
    // A consistent LIST, not a cache: the Namespace event that triggered this reconcile may
    // not have reached a separate cache yet, and the new namespace would wait for the next refresh.
    let namespaces = Api::<Namespace>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("list namespaces"))?;
    for ns in namespaces.items {
        if ctx.tunables.watches(&ns.name_any())
            && namespace_matches(
                &ns,
                cps.spec.namespace_selector.as_ref(),
                cps.spec.namespaces.as_ref(),
            )?
        {
            matching.insert(ns.name_any());
        }
    }
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
            let w = apply_secret(ctx, &secret, &uid).await?;
            sync_service_accounts(ctx, ns, &cps.spec.service_accounts, &secret_name, true).await?;
            Ok::<bool, Error>(w)
        }
        .await;
        match result {
            Ok(w) => {
                written += usize::from(w);
                served.insert(ns.clone());
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
    })
}

/// Pure: the next ClusterPullSecret status.
fn cluster_status(cps: &ClusterPullSecret, outcome: &Result<Fanned>, now: &Time) -> ClusterPullSecretStatus {
    let prev = cps.status.clone().unwrap_or_default();
    let generation = cps.meta().generation;
    let mut status = ClusterPullSecretStatus {
        observed_generation: generation,
        last_handled_reconcile_at: cps.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        secret_name: Some(cluster_secret_name(cps)),
        ..prev.clone()
    };
    let failure;
    let summary = match outcome {
        Ok(f) => {
            status.expires_at = time(f.credentials.expires_at);
            status.last_refresh_time = time(f.credentials.refreshed_at);
            status.registries = f.credentials.registries.clone();
            status.namespace_count = Some(i32::try_from(f.served.len()).unwrap_or(i32::MAX));
            status.failed_namespaces = f.failed.iter().take(20).map(|(ns, _)| ns.clone()).collect();
            match f.failed.first() {
                None => Outcome::InSync(format!(
                    "Secret {} is in {}",
                    cluster_secret_name(cps),
                    counted(f.served.len(), "namespace", "namespaces")
                )),
                Some((ns, e)) => {
                    failure = Error::InvalidSpec(format!(
                        "{} of {} namespaces failed, first {ns}: {}",
                        f.failed.len(),
                        f.failed.len() + f.served.len(),
                        crate::error::error_chain(e)
                    ));
                    Outcome::Failed(if matches!(e, Error::SecretExists(_)) {
                        &failure
                    } else {
                        e
                    })
                }
            }
        }
        Err(e) => Outcome::Failed(e),
    };
    status.conditions = summarize(&prev.conditions, generation, &summary, now);
    status
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_read_naturally() {
        for (n, expected) in [(0, "0 registries"), (1, "1 registry"), (2, "2 registries")] {
            assert_eq!(super::counted(n, "registry", "registries"), expected);
        }
    }
    use super::*;

    fn sa(pull: Option<Vec<&str>>) -> ServiceAccount {
        let mut sa: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": "default", "resourceVersion": "7"}})).unwrap();
        sa.image_pull_secrets = pull.map(|l| {
            l.into_iter()
                .map(|n| k8s_openapi::api::core::v1::LocalObjectReference { name: n.into() })
                .collect()
        });
        sa
    }

    #[test]
    fn service_account_patches_touch_only_our_entry_and_are_guarded() {
        let add_first = service_account_patch(&sa(None), "ecr", true).unwrap();
        assert_eq!(
            add_first[0],
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": "7"})
        );
        assert_eq!(
            add_first[1],
            json!({"op": "add", "path": "/imagePullSecrets", "value": [{"name": "ecr"}]})
        );
        let append = service_account_patch(&sa(Some(vec!["theirs"])), "ecr", true).unwrap();
        assert_eq!(
            append[1],
            json!({"op": "add", "path": "/imagePullSecrets/-", "value": {"name": "ecr"}})
        );
        assert_eq!(
            service_account_patch(&sa(Some(vec!["theirs", "ecr"])), "ecr", true),
            None,
            "already there"
        );
        let remove = service_account_patch(&sa(Some(vec!["theirs", "ecr", "other"])), "ecr", false).unwrap();
        assert_eq!(
            remove[1],
            json!({"op": "test", "path": "/imagePullSecrets/1/name", "value": "ecr"})
        );
        assert_eq!(remove[2], json!({"op": "remove", "path": "/imagePullSecrets/1"}));
        assert_eq!(
            service_account_patch(&sa(Some(vec!["theirs"])), "ecr", false),
            None,
            "never theirs"
        );
    }

    #[test]
    fn namespace_matching_table() {
        let ns = |name: &str, labels: serde_json::Value, terminating: bool| -> Namespace {
            let mut n: Namespace =
                serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
            if terminating {
                n.status = Some(k8s_openapi::api::core::v1::NamespaceStatus {
                    phase: Some("Terminating".into()),
                    ..Default::default()
                });
            }
            n
        };
        let sel: LabelSelector = serde_json::from_value(json!({"matchLabels": {"pull": "yes"}})).unwrap();
        let all = LabelSelector::default();
        let filter = NamespaceFilter {
            include: None,
            exclude: Some(vec!["kube-system".into()]),
        };
        let only = NamespaceFilter {
            include: Some(vec!["team-a".into()]),
            exclude: None,
        };
        let cases = [
            (
                ns("team-a", json!({"pull": "yes"}), false),
                Some(&sel),
                None,
                true,
            ),
            (ns("team-b", json!({}), false), Some(&sel), None, false),
            (
                ns("team-a", json!({"pull": "yes"}), true),
                Some(&sel),
                None,
                false,
            ),
            (
                ns("kube-system", json!({}), false),
                Some(&all),
                Some(&filter),
                false,
            ),
            (ns("team-c", json!({}), false), Some(&all), Some(&filter), true),
            (ns("team-a", json!({}), false), None, Some(&only), true),
            (ns("team-b", json!({}), false), None, Some(&only), false),
        ];
        for (n, s, f, expected) in cases {
            assert_eq!(namespace_matches(&n, s, f).unwrap(), expected, "{}", n.name_any());
        }
    }

    #[test]
    fn desired_secret_is_labelled_owned_and_typed() {
        let owner = OwnerReference {
            api_version: "ecr-operator.dev/v1alpha1".into(),
            kind: "PullSecret".into(),
            name: "ps".into(),
            uid: "u1".into(),
            controller: Some(true),
            ..Default::default()
        };
        let s = desired_secret(
            "ns",
            "ecr",
            owner.clone(),
            (PULL_SECRET_LABEL, "ps"),
            &SecretString::from("{}"),
        );
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
        assert_eq!(
            s.labels().get(MANAGED_BY).map(String::as_str),
            Some("ecr-operator")
        );
        assert_eq!(s.owner_references(), [owner]);
        assert!(secret_in_sync(&s, &s));
        let mut other = s.clone();
        other.data = Some(BTreeMap::from([(
            DOCKERCONFIGJSON.to_owned(),
            ByteString(b"x".to_vec()),
        )]));
        assert!(!secret_in_sync(&other, &s));
        // Debug of the rendered Secret is not how we log: only names are ever logged.
        assert!(format!("{:?}", s.metadata).find("dockerconfigjson").is_none());
    }
}
