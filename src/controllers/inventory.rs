//! The watches that feed the inventory of images in use ([`crate::inventory`]): Pods,
//! Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs and CronJobs, cluster-wide or in each
//! `--watch-namespaces` namespace. Each event is reduced at once to the object's image references,
//! controller owner and revision ([`crate::inventory::entry`]); nothing else of the object is
//! kept, so there is no reflector store of these kinds. A relist replaces what it covers.
//! Read-only: the operator only needs `list` and `watch` on these kinds (the chart's
//! `rbac.imageInventory`).

use std::sync::Arc;

use futures::{FutureExt, StreamExt, future};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;

use crate::inventory::{Entry, Inventory, Kind, ObjectKey, entry};
use crate::metrics::Metrics;

/// Objects per page of the initial lists.
const LIST_PAGE: u32 = 100;

type Extract<K> = fn(&K) -> (ObjectKey, Option<Entry>);

/// Watches every inventory kind until dropped.
pub async fn watch(
    client: Client,
    namespaces: Option<std::collections::BTreeSet<String>>,
    inventory: Arc<Inventory>,
    metrics: Arc<Metrics>,
) {
    let scopes: Vec<Option<String>> = match namespaces {
        Some(set) => set.into_iter().map(Some).collect(),
        None => vec![None],
    };
    inventory.expect_scopes(scopes.len());
    let mut tasks = Vec::new();
    for scope in scopes {
        let w = Watch {
            client: client.clone(),
            scope,
            inventory: inventory.clone(),
            metrics: metrics.clone(),
        };
        tasks.push(w.clone().kind::<Pod>(Kind::Pod, entry::pod).boxed());
        tasks.push(
            w.clone()
                .kind::<Deployment>(Kind::Deployment, entry::deployment)
                .boxed(),
        );
        tasks.push(
            w.clone()
                .kind::<ReplicaSet>(Kind::ReplicaSet, entry::replica_set)
                .boxed(),
        );
        tasks.push(
            w.clone()
                .kind::<StatefulSet>(Kind::StatefulSet, entry::stateful_set)
                .boxed(),
        );
        tasks.push(
            w.clone()
                .kind::<DaemonSet>(Kind::DaemonSet, entry::daemon_set)
                .boxed(),
        );
        tasks.push(w.clone().kind::<Job>(Kind::Job, entry::job).boxed());
        tasks.push(w.kind::<CronJob>(Kind::CronJob, entry::cron_job).boxed());
    }
    future::join_all(tasks).await;
}

#[derive(Clone)]
struct Watch {
    client: Client,
    scope: Option<String>,
    inventory: Arc<Inventory>,
    metrics: Arc<Metrics>,
}

impl Watch {
    async fn kind<K>(self, kind: Kind, extract: Extract<K>)
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug
            + Send
            + 'static,
    {
        let api: Api<K> = match &self.scope {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        // Small pages: the objects of a page are decoded at once, and only their entries stay.
        let config = watcher::Config::default().page_size(LIST_PAGE);
        let mut stream = watcher::watcher(api, config).boxed();
        let mut listing: Vec<(ObjectKey, Entry)> = Vec::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => listing.clear(),
                Ok(Event::InitApply(o)) => {
                    if let (k, Some(e)) = extract(&o) {
                        listing.push((k, e));
                    }
                }
                Ok(Event::InitDone) => {
                    let entries = std::mem::take(&mut listing);
                    self.inventory
                        .replace(kind.clone(), self.scope.as_deref(), entries);
                    tracing::debug!(%kind, scope = ?self.scope, "inventory listed");
                }
                Ok(Event::Apply(o)) => {
                    let (k, e) = extract(&o);
                    self.inventory.apply(k, e);
                }
                Ok(Event::Delete(o)) => self.inventory.delete(&extract(&o).0),
                Err(e) => {
                    // The watcher retries with backoff; until it lists, nothing is released.
                    tracing::warn!(%kind, scope = ?self.scope, error = %e, "image inventory watch failed");
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                }
            }
            self.metrics
                .inventory(self.inventory.len(), self.inventory.references());
        }
    }
}
