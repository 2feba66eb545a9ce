//! One object of the inventory reduced to what protection needs: the image references it makes,
//! its controller owner and, for a ReplicaSet, its Deployment revision and whether it runs.

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::reference::{self, ImageRef};

/// The kinds the inventory watches (an owner's kind may be any other, kept as [`Kind::Other`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Pod,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    Other(String),
}

impl Kind {
    /// The watched kinds.
    pub const ALL: [Kind; 7] = [
        Kind::Pod,
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::Job,
        Kind::CronJob,
    ];

    /// From an owner reference's `kind`.
    pub fn of(kind: &str) -> Kind {
        Self::ALL
            .into_iter()
            .find(|k| k.to_string() == kind)
            .unwrap_or_else(|| Kind::Other(kind.to_owned()))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
            Kind::Other(k) => k,
        };
        f.write_str(s)
    }
}

/// An object of the inventory.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

/// What the inventory keeps of one object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// Every image reference (spec references and reported digests), deduplicated; shared
    /// between the objects that make the same one (the inventory interns them).
    pub images: Vec<Arc<ImageRef>>,
    /// The controller owner (kind, name), in the same namespace.
    pub owner: Option<(Kind, String)>,
    /// A ReplicaSet's `deployment.kubernetes.io/revision`.
    pub revision: Option<i64>,
    /// `false` for a ReplicaSet with no replicas (a previous revision); `true` otherwise.
    pub active: bool,
}

/// The annotation a Deployment's ReplicaSets carry their revision in.
pub const REVISION: &str = "deployment.kubernetes.io/revision";

fn key(kind: Kind, meta: &ObjectMeta) -> ObjectKey {
    ObjectKey {
        kind,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
    }
}

fn owner(meta: &ObjectMeta) -> Option<(Kind, String)> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| (Kind::of(&o.kind), o.name.clone()))
}

fn spec_images(spec: &PodSpec) -> impl Iterator<Item = ImageRef> + '_ {
    let main = spec.containers.iter().filter_map(|c| c.image.as_deref());
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .filter_map(|c| c.image.as_deref());
    let eph = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .filter_map(|c| c.image.as_deref());
    main.chain(init).chain(eph).filter_map(reference::parse)
}

fn template_images(t: &PodTemplateSpec) -> Vec<ImageRef> {
    t.spec.iter().flat_map(spec_images).collect()
}

fn reported(statuses: Option<&Vec<ContainerStatus>>) -> impl Iterator<Item = ImageRef> + '_ {
    statuses
        .into_iter()
        .flatten()
        .filter_map(|s| reference::parse_image_id(&s.image_id))
}

fn entry(kind: Kind, meta: &ObjectMeta, mut images: Vec<ImageRef>) -> (ObjectKey, Option<Entry>) {
    images.sort();
    images.dedup();
    let entry = (!images.is_empty()).then(|| Entry {
        images: images.into_iter().map(Arc::new).collect(),
        owner: owner(meta),
        revision: None,
        active: true,
    });
    (key(kind, meta), entry)
}

/// A Pod: its spec's images and the digests its container statuses report.
pub fn pod(p: &Pod) -> (ObjectKey, Option<Entry>) {
    let mut images: Vec<ImageRef> = p.spec.iter().flat_map(spec_images).collect();
    if let Some(s) = &p.status {
        images.extend(reported(s.container_statuses.as_ref()));
        images.extend(reported(s.init_container_statuses.as_ref()));
        images.extend(reported(s.ephemeral_container_statuses.as_ref()));
    }
    entry(Kind::Pod, &p.metadata, images)
}

/// A Deployment's template.
pub fn deployment(d: &Deployment) -> (ObjectKey, Option<Entry>) {
    let images = d
        .spec
        .as_ref()
        .map(|s| template_images(&s.template))
        .unwrap_or_default();
    entry(Kind::Deployment, &d.metadata, images)
}

/// A ReplicaSet's template, its revision and whether it has replicas.
pub fn replica_set(r: &ReplicaSet) -> (ObjectKey, Option<Entry>) {
    let images = r
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .map(template_images)
        .unwrap_or_default();
    let (k, e) = entry(Kind::ReplicaSet, &r.metadata, images);
    let wanted = r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let running = r.status.as_ref().map_or(0, |s| s.replicas);
    let revision = r
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|v| v.parse().ok());
    let e = e.map(|e| Entry {
        revision,
        active: wanted > 0 || running > 0,
        ..e
    });
    (k, e)
}

/// A StatefulSet's template.
pub fn stateful_set(s: &StatefulSet) -> (ObjectKey, Option<Entry>) {
    let images = s
        .spec
        .as_ref()
        .map(|s| template_images(&s.template))
        .unwrap_or_default();
    entry(Kind::StatefulSet, &s.metadata, images)
}

/// A DaemonSet's template.
pub fn daemon_set(d: &DaemonSet) -> (ObjectKey, Option<Entry>) {
    let images = d
        .spec
        .as_ref()
        .map(|s| template_images(&s.template))
        .unwrap_or_default();
    entry(Kind::DaemonSet, &d.metadata, images)
}

/// A Job's template.
pub fn job(j: &Job) -> (ObjectKey, Option<Entry>) {
    let images = j
        .spec
        .as_ref()
        .map(|s| template_images(&s.template))
        .unwrap_or_default();
    entry(Kind::Job, &j.metadata, images)
}

/// A CronJob's job template.
pub fn cron_job(c: &CronJob) -> (ObjectKey, Option<Entry>) {
    let images = c
        .spec
        .as_ref()
        .and_then(|s| s.job_template.spec.as_ref())
        .map(|s| template_images(&s.template))
        .unwrap_or_default();
    entry(Kind::CronJob, &c.metadata, images)
}
