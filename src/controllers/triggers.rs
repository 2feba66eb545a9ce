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

/// Pure: one watch event, decoded: what passes on, and what the observer hears.
fn decode_event<K: Resource<DynamicType = ()> + DeserializeOwned>(
    event: Result<Event<DynamicObject>, watcher::Error>,
) -> (Option<Result<Event<K>, watcher::Error>>, Option<Seen>) {
    let typed = |o, wrap: fn(K) -> Event<K>| match decode::<K>(o) {
        Ok(k) => (Some(Ok(wrap(k))), None),
        Err(bad) => (None, Some(Seen::Undecodable(bad))),
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
mod tests {
    use super::*;
    use crate::status::READY;
    use futures::executor::block_on;
    use serde_json::json;

    fn repo(generation: i64, arn: bool, labels: serde_json::Value) -> Repository {
        let mut r: Repository = serde_json::from_value(json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
            "metadata": {"name": "api", "namespace": "ns", "generation": generation, "labels": labels,
                "resourceVersion": format!("{generation}{arn}")},
            "spec": {},
        }))
        .unwrap();
        r.status = Some(crate::api::v1alpha1::RepositoryStatus {
            repository_arn: arn.then(|| "arn".into()),
            conditions: vec![],
            ..Default::default()
        });
        r
    }

    #[test]
    fn status_writes_do_not_pass_spec_changes_and_deletions_do() {
        let mut written = repo(1, true, json!({}));
        written.status.as_mut().unwrap().observed_generation = Some(1);
        let events = || {
            vec![
                Ok(Event::Init),
                Ok(Event::InitApply(repo(1, false, json!({})))),
                Ok(Event::InitDone),
                // The operator's own status write: the same key for the Repository's controller.
                Ok(Event::Apply(written.clone())),
                Ok(Event::Apply(repo(2, true, json!({})))),
                Ok(Event::Delete(repo(2, true, json!({})))),
            ]
        };
        let own_passed: Vec<i64> =
            block_on(on_change(stream::iter(events()), own::<Repository>, false).collect::<Vec<_>>())
                .into_iter()
                .map(|r| r.unwrap().metadata.generation.unwrap())
                .collect();
        assert_eq!(
            own_passed,
            [1, 2],
            "the status write and the deletion do not re-queue"
        );
        // For LifecyclePolicies, the Repository becoming Ready (an ARN) matters.
        let lp_passed =
            block_on(on_change(stream::iter(events()), repository_for_policies, true).collect::<Vec<_>>())
                .len();
        assert_eq!(lp_passed, 4, "first sight, Ready, generation 2, deletion");
    }

    #[test]
    fn registry_changes_pass_what_changed_and_what_went_and_nothing_else() {
        let registry = |name: &str, generation: i64| -> Arc<Registry> {
            Arc::new(
                serde_json::from_value(json!({
                    "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
                    "metadata": {"name": name, "generation": generation},
                    "spec": {"accountId": "123456789012", "region": "eu-west-1"},
                }))
                .unwrap(),
            )
        };
        let names = |passed: Vec<Registry>| -> Vec<String> {
            let mut names: Vec<String> = passed.iter().map(|r| r.name_any()).collect();
            names.sort();
            names
        };
        let mut seen = LastSeen::default();
        // Seeding: what the cache holds at start.
        let start = [registry("a", 1), registry("b", 1)];
        assert_eq!(names(changed(&mut seen, &start, super::registry)), ["a", "b"]);
        let cases = [
            ("unchanged (a status write of either)", start.to_vec(), &[][..]),
            (
                "a's spec changed",
                vec![registry("a", 2), registry("b", 1)],
                &["a"],
            ),
            (
                "c is new",
                vec![registry("a", 2), registry("b", 1), registry("c", 1)],
                &["c"],
            ),
            (
                "b went (as last seen)",
                vec![registry("a", 2), registry("c", 1)],
                &["b"],
            ),
            ("the same again", vec![registry("a", 2), registry("c", 1)], &[]),
        ];
        for (case, now, expected) in cases {
            assert_eq!(
                names(changed(&mut seen, &now, super::registry)),
                expected,
                "{case}"
            );
        }
    }

    #[test]
    fn an_object_that_does_not_decode_is_skipped_and_the_others_pass() {
        let object = |interval: &str| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
                "metadata": {"name": format!("r-{interval}"), "namespace": "ns"},
                "spec": {"interval": interval},
            }))
            .unwrap()
        };
        // Stored before the interval rule existed: out of range, or not even the grammar.
        assert!(decode::<Repository>(object("2s")).is_err());
        assert!(decode::<Repository>(object("99999999999999999999h")).is_err());
        let ok = decode::<Repository>(object("10m")).unwrap();
        assert_eq!(ok.spec.interval.unwrap().as_str(), "10m");
        // A whole initial listing: the undecodable object is dropped, the rest of it passes.
        let events = vec![
            Ok(Event::Init),
            Ok(Event::InitApply(object("2s"))),
            Ok(Event::InitApply(object("10m"))),
            Ok(Event::InitDone),
        ];
        let (typed, seen): (Vec<_>, Vec<_>) = events.into_iter().map(decode_event::<Repository>).unzip();
        let typed: Vec<String> = typed
            .into_iter()
            .flatten()
            .map(|e| match e {
                Ok(Event::Init) => "init".to_owned(),
                Ok(Event::InitApply(r)) => r.name_any(),
                Ok(Event::InitDone) => "done".to_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(typed, ["init", "r-10m", "done"]);
        // The observer hears of the bad object by name, then of the completed list.
        let seen: Vec<String> = seen
            .into_iter()
            .flatten()
            .map(|s| match s {
                Seen::Undecodable(bad) => format!("bad {}", bad.object.name_any()),
                Seen::Listed => "listed".to_owned(),
                Seen::Failed => "failed".to_owned(),
            })
            .collect();
        assert_eq!(seen, ["bad r-2s", "listed"]);
        let (passed, seen) = decode_event::<Repository>(Err(watcher::Error::NoResourceVersion));
        assert!(matches!(passed, Some(Err(_))) && matches!(seen, Some(Seen::Failed)));
    }

    #[test]
    fn a_registry_matters_to_its_dependants_only_when_it_starts_or_stops_serving_or_its_host_or_spec_change()
    {
        let reg = |generation: i64, ready: bool, observed: i64| -> Registry {
            let mut r: Registry = serde_json::from_value(json!({
                "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
                "metadata": {"name": "default", "generation": generation}, "spec": {"region": "eu-west-1"},
            }))
            .unwrap();
            r.status = Some(crate::api::v1alpha1::RegistryStatus {
                observed_generation: Some(observed),
                registry_id: Some("1".into()),
                conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                    type_: READY.into(),
                    status: if ready { "True" } else { "False" }.into(),
                    reason: "Succeeded".into(),
                    message: String::new(),
                    observed_generation: None,
                    last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        k8s_openapi::jiff::Timestamp::from_second(0).unwrap(),
                    ),
                }],
                ..Default::default()
            });
            r
        };
        let mut bookkeeping = reg(1, true, 1);
        if let Some(s) = bookkeeping.status.as_mut() {
            s.last_handled_reconcile_at = Some("now".into());
            s.identity = Some("arn:aws:iam::1:role/x".into());
        }
        assert_eq!(
            registry(&reg(1, true, 1)),
            registry(&bookkeeping),
            "bookkeeping only"
        );
        assert_ne!(registry(&reg(1, true, 1)), registry(&reg(1, false, 1)));
        assert_ne!(registry(&reg(1, true, 1)), registry(&reg(2, true, 1)));
        // An edit (generation 2) is served only once the Registry controller has checked it: its
        // status catching up matters, although Ready stayed True throughout.
        assert_ne!(registry(&reg(2, true, 1)), registry(&reg(2, true, 2)));
        assert!(!crate::controllers::dereference::serves(&reg(2, true, 1)));
        assert!(crate::controllers::dereference::serves(&reg(2, true, 2)));
        assert!(!crate::controllers::dereference::serves(&reg(2, false, 2)));
    }
}
