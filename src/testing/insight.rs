//! `Repository.status.insight` against the mock API server and the in-memory backend: read on the
//! first sync and on the drift re-check (background lane), never on a spec change, and a re-check
//! that finds the same numbers writes no status.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::{Harness, Routes, ready_registry, with_status};
use crate::api::FINALIZER;
use crate::api::v1alpha1::Repository;
use crate::backend::{ImageInfo, ImageScan};
use crate::controllers::repository::RepositoryController;

fn image(digest: &str, tag: &str, pushed: u64, size: u64, counts: &[(&str, i64)]) -> ImageInfo {
    ImageInfo {
        digest: digest.into(),
        tags: vec![tag.into()],
        pushed_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + pushed)),
        last_pulled_at: None,
        archived: false,
        archived_at: None,
        last_activated_at: None,
        size_bytes: Some(size),
        scan: Some(ImageScan {
            status: Some("COMPLETE".into()),
            completed_at: None,
            counts: counts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect::<BTreeMap<_, _>>(),
        }),
    }
}

fn repository() -> Repository {
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": "api", "namespace": "team-a", "uid": "uid-api", "generation": 2,
            "finalizers": [FINALIZER]},
        "spec": {"name": "team-a/api"},
    }))
    .unwrap()
}

fn describes(h: &Harness) -> usize {
    h.backend
        .calls()
        .iter()
        .filter(|c| **c == "DescribeImages")
        .count()
}

#[tokio::test]
async fn images_are_read_first_and_on_the_drift_check_never_on_a_spec_change() {
    let h = Harness::new(Routes::default(), &[ready_registry("default")]);
    let gib = 1u64 << 30;
    h.backend.seed_repository(
        "us-east-1",
        "team-a/api",
        vec![
            image("sha256:a", "v1", 1, gib, &[]),
            image("sha256:b", "v2", 2, 3 * gib, &[("HIGH", 2), ("LOW", 1)]),
        ],
    );
    let repo = repository();
    h.reconcile::<RepositoryController>(&repo).await.unwrap();
    assert_eq!(describes(&h), 1, "{:?}", h.backend.calls());
    let writes = Harness::status_writes(&h.take_requests());
    assert_eq!(writes.len(), 1);
    let insight = &writes[0]["insight"];
    assert_eq!(insight["imageCount"], 2);
    assert_eq!(insight["sizeBytes"], 4 * gib);
    assert_eq!(insight["estimatedMonthlyCostUsd"], "0.4000");
    assert_eq!(insight["worstSeverity"], "HIGH");
    assert_eq!(insight["newestImage"]["digest"], "sha256:b");

    // A spec change (generation 3, not yet observed): a user-lane reconcile, no images read.
    let mut changed = with_status(&repo, &writes[0]);
    changed.metadata.generation = Some(3);
    h.reconcile::<RepositoryController>(&changed).await.unwrap();
    assert_eq!(describes(&h), 1, "a spec change reads no images");
    let after_change = Harness::status_writes(&h.take_requests());
    assert_eq!(
        after_change[0]["insight"], writes[0]["insight"],
        "the insight is kept"
    );

    // The drift re-check (in sync at its generation: background lane) reads them again, and
    // finding the same numbers writes no status.
    let settled = with_status(&changed, &after_change[0]);
    h.reconcile::<RepositoryController>(&settled).await.unwrap();
    assert_eq!(describes(&h), 2, "the drift check reads the images");
    let requests = h.take_requests();
    assert!(Harness::status_writes(&requests).is_empty(), "{requests:?}");
}
