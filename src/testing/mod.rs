//! The fast test layer for reconciles: a mock API server (kube's `Client` over a
//! `tower_test::mock` service) that records every request and answers it from a small table,
//! plus the in-memory backend with failure injection. A scenario builds a [`Harness`], runs
//! [`crate::controllers::driver::reconcile`] once and asserts on the requests (to Kubernetes) and the calls
//! (to ECR). No control plane, no Go, no Python: milliseconds per scenario.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_reads;
mod argocd;
mod creation_template;
mod identity;
mod image_policy;
mod insight;
mod lifecycle_policy;
mod protection;
mod public_repository;
mod pull_secret;
mod pull_through_cache_rule;
mod registry;
mod registry_settings;
mod repository;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::client::Body;
use kube::core::{PartialObjectMeta, PartialObjectMetaExt};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::api::v1alpha1::Registry;
use crate::backend::fake::FakeBackend;
use crate::controllers::context::{Context, Tunables};
use crate::controllers::driver::{self, Reconciler};
use crate::error::{ErrorClass, Result};

/// One request the operator made to the API server.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Value,
}

impl Recorded {
    /// A status write (server-side apply on `/status`).
    pub fn is_status_write(&self) -> bool {
        self.method == "PATCH" && self.path.ends_with("/status")
    }

    /// A write of anything but an event.
    pub fn is_write(&self) -> bool {
        self.method != "GET" && !self.path.contains("/events")
    }

    /// The `fieldManager` query parameter.
    pub fn field_manager(&self) -> Option<String> {
        self.query
            .split('&')
            .find_map(|kv| kv.strip_prefix("fieldManager="))
            .map(|v| v.replace("%2F", "/"))
    }
}

/// The mock API server's answers: objects by path, lists by collection path, and whether status
/// writes fail.
#[derive(Default)]
pub struct Routes {
    pub objects: BTreeMap<String, Value>,
    pub lists: BTreeMap<String, Vec<Value>>,
    pub fail_status_writes: bool,
}

/// The API path of an object.
pub fn path_of<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    let collection = K::url_path(&(), obj.namespace().as_deref());
    format!("{collection}/{}", obj.name_any())
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": reason, "reason": reason, "code": code})
}

fn answer(routes: &Routes, r: &Recorded) -> (u16, Value) {
    let object_path = r.path.trim_end_matches("/status").to_owned();
    match r.method.as_str() {
        "POST" if r.path.contains("/events") => (201, r.body.clone()),
        // A TokenRequest for a ServiceAccount that is served: a token naming it.
        "POST" if r.path.ends_with("/token") => match routes.objects.get(r.path.trim_end_matches("/token")) {
            Some(_) => {
                let mut answer = r.body.clone();
                answer["status"] = json!({"token": format!("mock-jwt-for{}", r.path), "expirationTimestamp": "2030-01-01T00:00:00Z"});
                (201, answer)
            }
            None => (404, status(404, "NotFound")),
        },
        "PATCH" if r.is_status_write() && routes.fail_status_writes => (500, status(500, "InternalError")),
        "PATCH" => match routes.objects.get(&object_path) {
            Some(obj) => (200, obj.clone()),
            // A Secret or other child applied for the first time: echo it.
            None => (200, r.body.clone()),
        },
        "GET" => match (routes.objects.get(&r.path), routes.lists.get(&r.path)) {
            (Some(obj), _) => (200, obj.clone()),
            (None, Some(items)) => (
                200,
                json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}),
            ),
            // A collection without a list route lists the objects served under it, as the API
            // server would (an empty list, never a 404).
            (None, None) if is_collection(&r.path) => {
                let prefix = format!("{}/", r.path);
                let items: Vec<Value> = routes
                    .objects
                    .iter()
                    .filter(|(k, _)| k.strip_prefix(&prefix).is_some_and(|rest| !rest.contains('/')))
                    .map(|(_, v)| v.clone())
                    .collect();
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}),
                )
            }
            (None, None) => (404, status(404, "NotFound")),
        },
        "DELETE" => (200, status(200, "Success")),
        _ => (405, status(405, "MethodNotAllowed")),
    }
}

/// Whether an API path names a collection (`/api/v1/namespaces/a/serviceaccounts`) rather than
/// an object: core paths have an even number of `/`-separated parts, group paths an odd one.
fn is_collection(path: &str) -> bool {
    let parts = path.split('/').count();
    if path.starts_with("/api/") {
        parts.is_multiple_of(2)
    } else {
        path.starts_with("/apis/") && parts % 2 == 1
    }
}

/// A test bed: the mock API server, the in-memory backend and a Context over both.
pub struct Harness {
    pub ctx: Arc<Context<FakeBackend>>,
    pub backend: FakeBackend,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    pub routes: Arc<Mutex<Routes>>,
    registries: Writer<Registry>,
    secrets: Writer<Secret>,
    namespaces: Writer<PartialObjectMeta<Namespace>>,
}

impl Harness {
    /// A harness whose store holds `registries`, answering from `routes`.
    pub fn new(routes: Routes, registries: &[Registry]) -> Self {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        // The namespaces a scenario lists under `/api/v1/namespaces` are what the Namespace
        // watch would have put in the store (the route stays, so a LIST would still be answered
        // and counted).
        let (namespace_store, mut namespace_writer) = reflector::store::<PartialObjectMeta<Namespace>>();
        namespace_writer.apply_watcher_event(&watcher::Event::Init);
        for ns in routes.lists.get("/api/v1/namespaces").into_iter().flatten() {
            let ns: Namespace = serde_json::from_value(ns.clone()).unwrap();
            namespace_writer
                .apply_watcher_event(&watcher::Event::InitApply(ns.metadata.into_response_partial()));
        }
        namespace_writer.apply_watcher_event(&watcher::Event::InitDone);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let routes = Arc::new(Mutex::new(routes));
        let (log, table) = (requests.clone(), routes.clone());
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let recorded = Recorded {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    query: parts.uri.query().unwrap_or_default().to_owned(),
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                };
                let (code, value) = answer(&table.lock().unwrap(), &recorded);
                log.lock().unwrap().push(recorded);
                let response = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&value).unwrap()))
                    .unwrap();
                send.send_response(response);
            }
        });
        let client = Client::new(service, "default");
        let (registry_store, mut registries_writer) = reflector::store::<Registry>();
        for r in registries {
            registries_writer.apply_watcher_event(&watcher::Event::Apply(r.clone()));
        }
        let (secret_store, secrets) = reflector::store::<Secret>();
        let backend = FakeBackend::default();
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let ctx = Arc::new(Context {
            client: client.clone(),
            backend: Arc::new(backend.clone()),
            cache: crate::cache::Cached::new(
                Arc::new(backend.clone()),
                std::time::Duration::from_secs(60),
                None,
                metrics.clone(),
            ),
            drift: crate::controllers::drift::DriftBudget::new(
                20,
                0.5,
                std::time::Duration::from_secs(600),
                metrics.clone(),
            ),
            seen: std::sync::Mutex::default(),
            protection: crate::controllers::protection::State::default(),
            metrics,
            tunables: Tunables {
                cluster_id: "c1".into(),
                ..Tunables::default()
            },
            backoff: crate::controllers::backoff::ErrorBackoff::default(),
            registries: registry_store,
            registry_changes: tokio::sync::watch::channel(0).1,
            managed_secrets: secret_store,
            namespaces: namespace_store,
            events: crate::controllers::events::Events::new(client, Some("test".into())),
            readiness: crate::server::Readiness::default(),
            quarantine: crate::controllers::quarantine::Quarantine::default(),
            static_keys: crate::cache::static_keys::KeyCache::default(),
            sessions: crate::cache::sessions::Sessions::default(),
        });
        Self {
            ctx,
            backend,
            requests,
            routes,
            registries: registries_writer,
            secrets,
            namespaces: namespace_writer,
        }
    }

    /// Puts an object where GETs and PATCH answers find it.
    pub fn serve<K: Resource<DynamicType = ()> + serde::Serialize>(&self, obj: &K) {
        self.routes
            .lock()
            .unwrap()
            .objects
            .insert(path_of(obj), serde_json::to_value(obj).unwrap());
    }

    /// Puts a Secret into the operator's label-selected cache (as the watch would).
    pub fn cache_secret(&mut self, secret: Secret) {
        self.secrets.apply_watcher_event(&watcher::Event::Apply(secret));
    }

    /// Puts a namespace into the namespace store, as the Namespace watch would.
    pub fn add_namespace(&mut self, ns: &Value) {
        let ns: Namespace = serde_json::from_value(ns.clone()).unwrap();
        self.namespaces
            .apply_watcher_event(&watcher::Event::Apply(ns.metadata.into_response_partial()));
    }

    /// Replaces a Registry in the store.
    pub fn set_registry(&mut self, registry: Registry) {
        self.registries
            .apply_watcher_event(&watcher::Event::Apply(registry));
    }

    /// Runs one reconcile of `obj` by the controller `R`, serving `obj` first.
    pub async fn reconcile<R: Reconciler>(&self, obj: &R::Kind) -> Result<Action> {
        self.serve(obj);
        driver::reconcile::<R, FakeBackend>(Arc::new(obj.clone()), self.ctx.clone()).await
    }

    /// The requests so far, and forgets them.
    pub fn take_requests(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }

    /// The status writes among `requests`, as the status bodies.
    pub fn status_writes(requests: &[Recorded]) -> Vec<Value> {
        requests
            .iter()
            .filter(|r| r.is_status_write())
            .map(|r| r.body["status"].clone())
            .collect()
    }

    /// The events published among `requests`: (type, reason).
    pub fn events(requests: &[Recorded]) -> Vec<(String, String)> {
        requests
            .iter()
            .filter(|r| r.method == "POST" && r.path.contains("/events"))
            .map(|r| {
                (
                    r.body["type"].as_str().unwrap_or_default().to_owned(),
                    r.body["reason"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

/// A Ready Registry `default` whose account is the fake's.
pub fn ready_registry(name: &str) -> Registry {
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 1},
        "spec": {"region": "us-east-1"},
        "status": {"registryId": "123456789012", "registryHost": "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]},
    }))
    .unwrap()
}

/// Applies a status body from a recorded write to the object, as the API server would.
pub fn with_status<K: serde::Serialize + serde::de::DeserializeOwned>(obj: &K, status: &Value) -> K {
    let mut v = serde_json::to_value(obj).unwrap();
    v["status"] = status.clone();
    serde_json::from_value(v).unwrap()
}

/// The class of an error, for assertions.
pub fn class<T: std::fmt::Debug>(r: &Result<T>) -> Option<ErrorClass> {
    r.as_ref().err().map(crate::error::Error::class)
}

/// A condition of a status body: (status, reason).
pub fn condition(status: &Value, type_: &str) -> Option<(String, String)> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
}
