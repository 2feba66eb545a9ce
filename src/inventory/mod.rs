//! The images this cluster uses: every container, init container and ephemeral container image
//! of every Pod (the reference in its spec and the digest the kubelet reports in
//! `status.*ContainerStatuses[].imageID`), and the pod templates of Deployments, ReplicaSets,
//! StatefulSets, DaemonSets, Jobs and CronJobs. A ReplicaSet of a Deployment that is scaled to
//! zero is a previous revision: it counts only while it is among the newest `rollback` ones of
//! its Deployment (for `kubectl rollout undo`).
//!
//! Pure: [`reference`] parses image strings, [`entry`] reduces an object to the few fields
//! protection needs (image references, its controller owner, a ReplicaSet's revision), and
//! [`Inventory`] holds those entries, keyed by object, fed by the watches in
//! `controllers::inventory`. Nothing else of the objects is kept, so memory stays small on big
//! clusters.

pub mod entry;
pub mod reference;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

pub use entry::{Entry, Kind, ObjectKey};
pub use reference::ImageRef;

/// One use of an image: the reference and the workload that makes it (`Deployment shop/web`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Use {
    pub reference: ImageRef,
    pub workload: String,
}

struct State {
    entries: HashMap<ObjectKey, Entry>,
    /// Every reference seen since start: a reference not in it is a new use, which moves
    /// [`Inventory::changes`].
    known: std::collections::HashSet<Arc<ImageRef>>,
    /// The (kind, namespace) scopes whose watch has listed them at least once.
    listed: BTreeSet<(Kind, Option<String>)>,
    /// How many namespace scopes are watched per kind (one for a cluster-wide watch).
    scopes: usize,
}

impl Default for State {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            known: std::collections::HashSet::new(),
            listed: BTreeSet::new(),
            scopes: 1,
        }
    }
}

/// The inventory of images in use, shared by the watches (writers) and the LifecyclePolicy
/// controller (reader).
pub struct Inventory {
    state: RwLock<State>,
    /// Moves when a reference never seen before appears (a new use to protect at once).
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for Inventory {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Inventory {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notified when a reference never seen before appears: the caller re-checks what it
    /// protects.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Interns `refs` (each becomes the one shared copy of that reference) and says whether
    /// one was never seen before.
    fn learn<'a>(&self, s: &mut State, refs: impl Iterator<Item = &'a mut Arc<ImageRef>>) -> bool {
        let mut new = false;
        for r in refs {
            match s.known.get(r.as_ref()) {
                Some(shared) => *r = shared.clone(),
                None => {
                    s.known.insert(r.clone());
                    new = true;
                }
            }
        }
        new
    }

    fn announce(&self, new: bool) {
        if new {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// An object was added or changed (`None`: it uses no image and is dropped).
    pub fn apply(&self, key: ObjectKey, mut entry: Option<Entry>) {
        let new = {
            let mut s = self.write();
            let new = entry
                .as_mut()
                .is_some_and(|e| self.learn(&mut s, e.images.iter_mut()));
            match entry {
                Some(e) => s.entries.insert(key, e),
                None => s.entries.remove(&key),
            };
            new
        };
        self.announce(new);
    }

    /// An object was deleted.
    pub fn delete(&self, key: &ObjectKey) {
        self.write().entries.remove(key);
    }

    /// How many namespaces each kind is watched in (one: cluster-wide), set before the watches
    /// start.
    pub fn expect_scopes(&self, scopes: usize) {
        self.write().scopes = scopes;
    }

    /// A (re)list of `kind` in `namespace` (`None`: cluster-wide) finished: its entries there
    /// become exactly `entries`.
    pub fn replace(&self, kind: Kind, namespace: Option<&str>, mut entries: Vec<(ObjectKey, Entry)>) {
        let new = {
            let mut s = self.write();
            let new = self.learn(&mut s, entries.iter_mut().flat_map(|(_, e)| e.images.iter_mut()));
            s.entries
                .retain(|k, _| k.kind != kind || namespace.is_some_and(|ns| k.namespace != ns));
            s.entries.extend(entries);
            s.listed.insert((kind, namespace.map(str::to_owned)));
            new
        };
        self.announce(new);
    }

    /// Whether every kind has been listed in every scope: before that, what is missing may still
    /// be in use, so nothing is released.
    pub fn complete(&self) -> bool {
        let s = self.read();
        s.listed.len() >= Kind::ALL.len() * s.scopes
    }

    /// Number of objects that use at least one image.
    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// Whether no object uses an image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of image references held, over all objects.
    pub fn references(&self) -> usize {
        self.read().entries.values().map(|e| e.images.len()).sum()
    }

    /// Every use of an image of `repository` on `host`, with the workload that makes it. Previous
    /// revisions of a Deployment count for the newest `rollback` of them.
    pub fn uses(&self, host: &str, repository: &str, rollback: usize) -> Vec<Use> {
        let s = self.read();
        uses(&s.entries, host, repository, rollback)
    }
}

/// The workload an object belongs to: up through its controller owners (a Pod of a ReplicaSet of
/// a Deployment is `Deployment ns/name`; of a Job of a CronJob, `CronJob ns/name`).
pub fn workload(entries: &HashMap<ObjectKey, Entry>, key: &ObjectKey) -> String {
    let mut current = key.clone();
    for _ in 0..3 {
        let Some(owner) = entries.get(&current).and_then(|e| e.owner.clone()) else {
            break;
        };
        current = ObjectKey {
            kind: owner.0,
            namespace: current.namespace.clone(),
            name: owner.1,
        };
    }
    format!("{} {}/{}", current.kind, current.namespace, current.name)
}

/// The ReplicaSets that count: active ones, and the newest `rollback` inactive ones of each
/// Deployment.
fn counted_replica_sets(entries: &HashMap<ObjectKey, Entry>, rollback: usize) -> BTreeSet<&ObjectKey> {
    let mut history: BTreeMap<(&str, &str), Vec<(i64, &ObjectKey)>> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (k, e) in entries.iter().filter(|(k, _)| k.kind == Kind::ReplicaSet) {
        match (&e.owner, e.active) {
            (Some((Kind::Deployment, d)), false) => history
                .entry((k.namespace.as_str(), d.as_str()))
                .or_default()
                .push((e.revision.unwrap_or(0), k)),
            _ => {
                out.insert(k);
            }
        }
    }
    for mut revisions in history.into_values() {
        revisions.sort_by(|a, b| b.cmp(a));
        out.extend(revisions.into_iter().take(rollback).map(|(_, k)| k));
    }
    out
}

/// Pure: [`Inventory::uses`] over `entries`.
pub fn uses(entries: &HashMap<ObjectKey, Entry>, host: &str, repository: &str, rollback: usize) -> Vec<Use> {
    let replica_sets = counted_replica_sets(entries, rollback);
    let mut out: Vec<Use> = entries
        .iter()
        .filter(|(k, _)| k.kind != Kind::ReplicaSet || replica_sets.contains(k))
        .flat_map(|(k, e)| {
            e.images
                .iter()
                .filter(|r| r.host == host && r.repository == repository)
                .map(move |r| (k, r))
        })
        .map(|(k, r)| Use {
            reference: r.as_ref().clone(),
            workload: workload(entries, k),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
