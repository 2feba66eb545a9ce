use std::collections::HashMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;

const HOST: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn pod(ns: &str, name: &str, owner: Option<(&str, &str)>, images: &[&str], ids: &[&str]) -> Pod {
    let owners: Vec<_> = owner
        .into_iter()
        .map(|(k, n)| json!({"apiVersion": "v1", "kind": k, "name": n, "uid": "u", "controller": true}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "ownerReferences": owners},
        "spec": {
            "containers": images.iter().map(|i| json!({"name": "c", "image": i})).collect::<Vec<_>>(),
            "initContainers": [{"name": "init", "image": format!("{HOST}/tools/init:1")}]
        },
        "status": {"containerStatuses": ids.iter().map(|id| json!({"name": "c", "image": "x", "imageID": id, "ready": true, "restartCount": 0})).collect::<Vec<_>>()}
    }))
    .unwrap()
}

fn rs(ns: &str, name: &str, deployment: &str, revision: i64, replicas: i32, image: &str) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment, "uid": "u", "controller": true}]},
        "spec": {"replicas": replicas, "selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
        "status": {"replicas": replicas}
    }))
    .unwrap()
}

fn inventory(objects: Vec<(ObjectKey, Option<Entry>)>) -> HashMap<ObjectKey, Entry> {
    objects
        .into_iter()
        .filter_map(|(k, e)| e.map(|e| (k, e)))
        .collect()
}

fn workloads(uses: &[Use]) -> Vec<String> {
    let mut w: Vec<String> = uses
        .iter()
        .map(|u| format!("{} {}", u.workload, u.reference))
        .collect();
    w.sort();
    w
}

#[test]
fn a_pod_keeps_its_spec_references_its_reported_digests_and_its_owner() {
    let (key, e) = entry::pod(&pod(
        "shop",
        "web-1",
        Some(("ReplicaSet", "web-abc")),
        &[&format!("{HOST}/shop/web:v1"), "nginx"],
        &[&format!("docker-pullable://{HOST}/shop/web@{D1}"), "sha256:feed"],
    ));
    let e = e.unwrap();
    assert_eq!(key.kind, Kind::Pod);
    assert_eq!(e.owner, Some((Kind::ReplicaSet, "web-abc".into())));
    let refs: Vec<String> = e.images.iter().map(ToString::to_string).collect();
    assert_eq!(
        refs,
        [
            format!("{HOST}/shop/web@{D1}"),
            format!("{HOST}/shop/web:v1"),
            format!("{HOST}/tools/init:1"),
            "docker.io/library/nginx".to_owned(),
        ]
    );
}

#[test]
fn an_object_without_images_is_not_kept() {
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "x", "namespace": "a"}})).unwrap();
    assert_eq!(entry::deployment(&d).1, None);
}

#[test]
fn uses_name_the_top_workload_and_keep_the_newest_previous_revisions() {
    let web = |rev: i64| format!("{HOST}/shop/web:v{rev}");
    let objects = vec![
        entry::pod(&pod(
            "shop",
            "web-1",
            Some(("ReplicaSet", "web-4")),
            &[&web(4)],
            &[],
        )),
        entry::replica_set(&rs("shop", "web-4", "web", 4, 2, &web(4))),
        entry::replica_set(&rs("shop", "web-3", "web", 3, 0, &web(3))),
        entry::replica_set(&rs("shop", "web-2", "web", 2, 0, &web(2))),
        entry::replica_set(&rs("shop", "web-1", "web", 1, 0, &web(1))),
        entry::pod(&pod(
            "batch",
            "job-x",
            Some(("Job", "nightly-1")),
            &[&format!("{HOST}/shop/web@{D1}")],
            &[],
        )),
        (
            ObjectKey {
                kind: Kind::Job,
                namespace: "batch".into(),
                name: "nightly-1".into(),
            },
            Some(Entry {
                images: vec![],
                owner: Some((Kind::CronJob, "nightly".into())),
                revision: None,
                active: true,
            }),
        ),
        entry::pod(&pod("other", "p", None, &[&format!("{HOST}/other/repo:v1")], &[])),
    ];
    let entries = inventory(objects);
    assert_eq!(
        workloads(&uses(&entries, HOST, "shop/web", 1)),
        [
            format!("CronJob batch/nightly {HOST}/shop/web@{D1}"),
            format!("Deployment shop/web {HOST}/shop/web:v3"),
            format!("Deployment shop/web {HOST}/shop/web:v4"),
        ],
        "owners are followed even where the owner itself is not in the inventory"
    );
    assert_eq!(
        uses(&entries, HOST, "shop/web", 0).len(),
        2,
        "no previous revision"
    );
    assert_eq!(
        uses(&entries, HOST, "shop/web", 3).len(),
        5,
        "three previous revisions"
    );
    assert!(
        uses(&entries, "docker.io", "shop/web", 3).is_empty(),
        "another host"
    );
}

#[test]
fn a_deployment_names_its_pods_and_a_cron_job_its_template() {
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": format!("{HOST}/shop/web:v4")}]}}}})).unwrap();
    let c: CronJob = serde_json::from_value(json!({"metadata": {"name": "nightly", "namespace": "shop"},
        "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": format!("{HOST}/shop/web@{D1}")}]}}}}}})).unwrap();
    let entries = inventory(vec![
        entry::deployment(&d),
        entry::replica_set(&rs("shop", "web-4", "web", 4, 1, &format!("{HOST}/shop/web:v4"))),
        entry::pod(&pod(
            "shop",
            "web-4-x",
            Some(("ReplicaSet", "web-4")),
            &[&format!("{HOST}/shop/web:v4")],
            &[],
        )),
        entry::cron_job(&c),
    ]);
    let names: std::collections::BTreeSet<String> = uses(&entries, HOST, "shop/web", 1)
        .into_iter()
        .map(|u| u.workload)
        .collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["CronJob shop/nightly", "Deployment shop/web"]
    );
}

#[test]
fn the_store_is_complete_once_every_kind_listed_and_a_relist_replaces_a_kind() {
    let inv = Inventory::default();
    let (k, e) = entry::pod(&pod("a", "p", None, &[&format!("{HOST}/a/b:1")], &[]));
    inv.apply(k.clone(), e.clone());
    assert_eq!(inv.len(), 1);
    for kind in &Kind::ALL[1..] {
        inv.replace(kind.clone(), None, vec![]);
    }
    assert!(!inv.complete(), "Pods not listed yet");
    assert_eq!(inv.len(), 1, "other kinds' relists keep the Pods");
    inv.replace(Kind::Pod, None, vec![]);
    assert!(inv.complete());
    assert!(inv.is_empty(), "the Pod list replaced the Pods");
    inv.apply(k.clone(), e);
    assert_eq!(inv.references(), 2);
    inv.delete(&k);
    assert!(inv.is_empty());
}

#[test]
fn a_reference_never_seen_before_is_announced_and_a_known_one_is_not() {
    let inv = Inventory::default();
    let mut changes = inv.changes();
    let web = |n: &str, image: &str| entry::pod(&pod("a", n, None, &[image], &[]));
    let (k1, e1) = web("p1", &format!("{HOST}/a/b:1"));
    inv.apply(k1, e1);
    assert!(changes.has_changed().unwrap(), "a new use");
    changes.borrow_and_update();
    let (k2, e2) = web("p2", &format!("{HOST}/a/b:1"));
    inv.apply(k2.clone(), e2);
    assert!(
        !changes.has_changed().unwrap(),
        "another Pod of the same images: nothing new"
    );
    inv.delete(&k2);
    assert!(
        !changes.has_changed().unwrap(),
        "a use that goes waits for the grace period"
    );
    let (k3, e3) = web("p3", &format!("{HOST}/a/b:2"));
    inv.replace(Kind::Pod, None, vec![(k3, e3.unwrap())]);
    assert!(changes.has_changed().unwrap(), "a relist with a new reference");
}

#[test]
fn the_same_reference_made_by_many_objects_is_held_once() {
    let inv = Inventory::default();
    let image = format!("{HOST}/a/b:1");
    for i in 0..3 {
        let (k, e) = entry::pod(&pod("a", &format!("p{i}"), None, &[&image], &[]));
        inv.apply(k, e);
    }
    let s = inv.read();
    let refs: Vec<&std::sync::Arc<ImageRef>> = s
        .entries
        .values()
        .flat_map(|e| e.images.iter())
        .filter(|r| r.to_string() == image)
        .collect();
    assert_eq!(refs.len(), 3);
    assert!(
        refs.iter().all(|r| std::sync::Arc::ptr_eq(r, refs[0])),
        "one shared copy"
    );
    assert_eq!(
        std::sync::Arc::strong_count(refs[0]),
        4,
        "three entries and the known set"
    );
}
