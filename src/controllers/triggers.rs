//! What re-queues a reconcile: only changes that matter to the watcher, never a status write.
//!
//! A status write (by any controller) changes an object's `resourceVersion` and nothing else a
//! reconcile reads, so a watch that fires on every change would re-run reconciles, and their
//! ECR reads, for the operator's own bookkeeping. Each watch here therefore passes an object on
//! only when a *key* of it changes:
//!
//! - an object's own controller: its generation (the spec), finalizers, deletion and the
//!   reconcile-now annotation ([`own`]);
//! - dependants of a Registry: its generation, whether it is Ready, its registry ID and host
//!   ([`registry`]);
//! - a LifecyclePolicy's view of a Repository: labels, whether it is Ready (has an ARN),
//!   deletion and its generation ([`repository_for_policies`]).
//!
//! Deletions of a watched dependency always pass.
//!
//! Every watch of the operator's own kinds carries the `--watch-label-selector` (see [`crate::shard`]).
//!
//! Every watch of the operator's own kinds also decodes object by object ([`watch_typed`]): an
//! object stored in a shape the operator cannot decode (for example one written before an
//! admission rule existed) is left out, instead of failing the list, and so the whole
//! controller, for every other object of its kind; its controller reports it by name
//! ([`quarantine`]).

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use futures::{Stream, StreamExt, stream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::context::Context;
use super::driver::Reconciler;
use super::quarantine::{self, Undecodable, decode};
use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::v1alpha1::{Registry, Repository};
use crate::backend::RegistryBackend;

fn hash_of(value: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// The key of an object for its own controller.
pub fn own<K: Resource>(obj: &K) -> u64 {
    let meta = obj.meta();
    hash_of((
        meta.generation,
        &meta.finalizers,
        meta.deletion_timestamp.is_some(),
        obj.annotations().get(RECONCILE_REQUESTED_AT),
    ))
}

/// The key of a Registry for the objects that use it (whether it serves them: Ready for its
/// current generation, see `dereference::serves`).
pub fn registry(r: &Registry) -> u64 {
    let status = r.status.as_ref();
    hash_of((
        r.metadata.generation,
        super::dereference::serves(r),
        status.and_then(|s| s.registry_id.as_deref()),
        status.and_then(|s| s.registry_host.as_deref()),
    ))
}

/// The key of a Repository for the LifecyclePolicies of its namespace.
pub fn repository_for_policies(r: &Repository) -> u64 {
    hash_of((
        r.labels(),
        r.metadata.generation,
        r.metadata.deletion_timestamp.is_some(),
        r.status.as_ref().is_some_and(|s| s.repository_arn.is_some()),
    ))
}

/// What a watch tells its observer besides its objects.
#[derive(Debug)]
pub enum Seen {
    /// The (re)list completed: the watch serves every object of the kind.
    Listed,
    /// The list or watch failed (it retries with backoff).
    Failed,
    /// An object that does not decode: left out, to be reported.
    Undecodable(Box<Undecodable>),
}

/// The watch events of kind `K`, decoded object by object (see the module docs); `observe`
/// hears of each completed list, each failure and each object that does not decode.
pub fn watch_typed<K>(
    client: kube::Client,
    config: watcher::Config,
    mut observe: impl FnMut(Seen) + Send + 'static,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let api = Api::<DynamicObject>::all_with(client, &ApiResource::erase::<K>(&()));
    watch(api, config).default_backoff().filter_map(move |event| {
        let (passed, seen) = decode_event(event);
        if let Some(seen) = seen {
            observe(seen);
        }
        std::future::ready(passed)
    })
}

/// A watch's observer that only logs undecodable objects (at debug: the kind's own controller
/// reports them).
pub fn log_undecodable(seen: Seen) {
    if let Seen::Undecodable(bad) = seen {
        tracing::debug!(name = %bad.object.name_any(), error = %bad.error, "skipping an object that does not decode");
    }
}

/// Pure: the metadata no reconcile reads and every cached object would carry: `managedFields`
/// (a few hundred bytes per field manager) and kubectl's last-applied annotation (a copy of the
/// whole object as applied). Dropped before an object is decoded or cached, which at 10,000
/// Repositories is most of what their stores hold.
pub fn slim(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// `kubectl apply`'s record of what it applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Pure: one watch event, decoded: what passes on, and what the observer hears.
fn decode_event<K: Resource<DynamicType = ()> + DeserializeOwned>(
    event: Result<Event<DynamicObject>, watcher::Error>,
) -> (Option<Result<Event<K>, watcher::Error>>, Option<Seen>) {
    let typed = |mut o: DynamicObject, wrap: fn(K) -> Event<K>| {
        slim(&mut o.metadata);
        match decode::<K>(o) {
            Ok(k) => (Some(Ok(wrap(k))), None),
            Err(bad) => (None, Some(Seen::Undecodable(bad))),
        }
    };
    match event {
        Ok(Event::Apply(o)) => typed(o, Event::Apply),
        Ok(Event::InitApply(o)) => typed(o, Event::InitApply),
        // An object that never decoded was never passed on: nothing to delete.
        Ok(Event::Delete(o)) => (decode::<K>(o).ok().map(|k| Ok(Event::Delete(k))), None),
        Ok(Event::Init) => (Some(Ok(Event::Init)), None),
        Ok(Event::InitDone) => (Some(Ok(Event::InitDone)), Some(Seen::Listed)),
        Err(e) => (Some(Err(e)), Some(Seen::Failed)),
    }
}

/// Passes on an object when its key changed (or it is new); deletions pass when `deletions`.
fn on_change<K, S>(
    events: S,
    key: fn(&K) -> u64,
    deletions: bool,
) -> impl Stream<Item = Result<K, watcher::Error>>
where
    K: Resource + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
{
    let mut seen: HashMap<(Option<String>, String), u64> = HashMap::new();
    events.flat_map(move |event| {
        let out: Vec<Result<K, watcher::Error>> = match event {
            Ok(Event::Apply(obj) | Event::InitApply(obj)) => {
                let id = (obj.namespace(), obj.name_any());
                let k = key(&obj);
                if seen.insert(id, k) == Some(k) {
                    vec![]
                } else {
                    vec![Ok(obj)]
                }
            }
            Ok(Event::Delete(obj)) => {
                seen.remove(&(obj.namespace(), obj.name_any()));
                if deletions { vec![Ok(obj)] } else { vec![] }
            }
            Ok(Event::Init | Event::InitDone) => vec![],
            Err(e) => vec![Err(e)],
        };
        stream::iter(out)
    })
}

/// The primary watch of the controller `R`: a reflector store, and the objects whose `key`
/// changed (usually [`own`]). It also keeps `/readyz` honest (not ready until it has listed, nor
/// while its list fails) and reports the objects of its kind that do not decode (when `R` owns
/// their conditions).
pub fn primary<R, B>(
    ctx: &Arc<Context<B>>,
    key: fn(&R::Kind) -> u64,
) -> (
    Store<R::Kind>,
    impl Stream<Item = Result<R::Kind, watcher::Error>> + Send + 'static,
)
where
    R: Reconciler,
    B: RegistryBackend,
{
    let (reader, writer) = reflector::store();
    ctx.readiness.mark(R::CONTROLLER, false);
    let observer = ctx.clone();
    let observe = move |seen: Seen| match seen {
        Seen::Listed => observer.readiness.mark(R::CONTROLLER, true),
        Seen::Failed => observer.readiness.mark(R::CONTROLLER, false),
        Seen::Undecodable(bad) if R::OWNS_CONDITIONS => {
            let field_manager = observer.field_manager(R::FIELD_MANAGER);
            quarantine::report::<R::Kind, B>(&observer, R::CONTROLLER, field_manager, *bad);
        }
        other => log_undecodable(other),
    };
    let events = watch_typed::<R::Kind>(
        ctx.client.clone(),
        ctx.tunables.watch_selector.watcher_config(),
        observe,
    )
    .reflect(writer);
    (reader, on_change(events, key, false))
}

/// The objects of `store` that use `registry` (`uses` says whether one names it): what a change
/// of that Registry re-queues.
pub fn users_of<K>(
    store: &Store<K>,
    registry: &Registry,
    uses: impl Fn(&K, &str) -> bool,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let name = registry.name_any();
    store
        .state()
        .into_iter()
        .filter(|obj| uses(obj, &name))
        .map(|obj| ObjectRef::from_obj(obj.as_ref()))
        .collect()
}

/// The other objects of `store` that name one of the things `changed` names (`names`: what an
/// object names in ECR, e.g. its prefix): what a change or the deletion of `changed` re-queues
/// when the most senior of them holds the thing (see `decide::claims`).
pub fn siblings<K>(store: &Store<K>, changed: &K, names: impl Fn(&K) -> Vec<String>) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let mine = names(changed);
    store
        .state()
        .into_iter()
        .filter(|obj| obj.name_any() != changed.name_any() || obj.namespace() != changed.namespace())
        .filter(|obj| names(obj).iter().any(|n| mine.contains(n)))
        .map(|obj| ObjectRef::from_obj(obj.as_ref()))
        .collect()
}

/// A secondary watch of one of the operator's own kinds (limited, like every such watch, to this
/// instance's `--watch-label-selector`): the objects whose `key` changed, and deletions.
pub fn dependency<K, B>(
    ctx: &Context<B>,
    key: fn(&K) -> u64,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let config = ctx.tunables.watch_selector.watcher_config();
    on_change(
        watch_typed::<K>(ctx.client.clone(), config, log_undecodable),
        key,
        true,
    )
}

/// Dependants of a Registry: the Registries whose `key` changed since last seen, and those that
/// went, read off the shared Registry cache (`Context::registries`) each time it changes. Unlike a
/// watch of its own, a Registry passed on here is already in the cache every reconcile reads, so
/// the reconcile it re-queues never reads the Registry as it was before. What the cache holds when
/// this starts counts as seen: the controllers start after it has listed, and each of their
/// objects is reconciled once anyway, so a restart re-queues nothing a second time.
pub fn registry_changes<B>(
    ctx: &Context<B>,
    key: fn(&Registry) -> u64,
) -> impl Stream<Item = Result<Registry, watcher::Error>> + Send + 'static {
    let store = ctx.registries.clone();
    let mut seen = LastSeen::default();
    changed(&mut seen, &store.state(), key);
    let changes = ctx.registry_changes.clone();
    stream::unfold((changes, seen), move |(mut changes, mut seen)| {
        let store = store.clone();
        async move {
            changes.changed().await.ok()?;
            let passed = changed(&mut seen, &store.state(), key);
            Some((stream::iter(passed.into_iter().map(Ok)), (changes, seen)))
        }
    })
    .flatten()
}

/// The key last seen of each object, and the object (to pass on when it goes), by namespace and
/// name.
type LastSeen<K> = HashMap<(Option<String>, String), (u64, Arc<K>)>;

/// Pure: the objects of `now` whose key differs from `seen` (or that are new), then those of
/// `seen` no longer in `now` (as last seen); `seen` becomes `now`.
fn changed<K: Resource + Clone>(seen: &mut LastSeen<K>, now: &[Arc<K>], key: fn(&K) -> u64) -> Vec<K> {
    let mut passed = Vec::new();
    let mut next = LastSeen::with_capacity(now.len());
    for obj in now {
        let id = (obj.namespace(), obj.name_any());
        let k = key(obj);
        if seen.remove(&id).is_none_or(|(old, _)| old != k) {
            passed.push(K::clone(obj));
        }
        next.insert(id, (k, obj.clone()));
    }
    passed.extend(seen.drain().map(|(_, (_, gone))| K::clone(&gone)));
    *seen = next;
    passed
}

#[cfg(test)]
mod tests;
