use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::*;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn image(digest: &str, tag: Option<&str>, pushed: u64, size: u64, archived: bool) -> ImageInfo {
    ImageInfo {
        digest: digest.into(),
        tags: tag.map(|t| vec![t.to_owned()]).unwrap_or_default(),
        pushed_at: Some(at(pushed)),
        last_pulled_at: None,
        archived,
        archived_at: None,
        last_activated_at: None,
        size_bytes: Some(size),
        scan: None,
    }
}

fn scanned(mut i: ImageInfo, status: &str, counts: &[(&str, i64)]) -> ImageInfo {
    i.scan = Some(crate::backend::ImageScan {
        status: Some(status.into()),
        completed_at: Some(at(10_000)),
        counts: counts.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
    });
    i
}

const P: Prices = Prices {
    standard: 100_000,
    archive: 100_000,
};

#[test]
fn prices_parse_and_refuse() {
    let cases: [(&str, Result<u64, ()>); 10] = [
        ("0.10", Ok(100_000)),
        ("0.1", Ok(100_000)),
        ("1", Ok(1_000_000)),
        ("0.0114", Ok(11_400)),
        ("0.000001", Ok(1)),
        ("-0.10", Err(())),
        ("0.", Err(())),
        (".5", Err(())),
        ("0.1234567", Err(())),
        ("1e3", Err(())),
    ];
    for (text, want) in cases {
        assert_eq!(parse_price(text).map_err(drop), want, "{text}");
    }
    assert!(parse_price("-1").unwrap_err().contains("non-negative"));
}

#[test]
fn registry_prices_default_per_field() {
    assert_eq!(prices("eu-west-1", None), Ok(default_prices("eu-west-1")));
    assert_eq!(default_prices("us-east-1"), P);
    let set = StoragePricing {
        standard_per_gb_month: Some("0.2".into()),
        archive_per_gb_month: None,
    };
    assert_eq!(
        prices("us-east-1", Some(&set)),
        Ok(Prices {
            standard: 200_000,
            archive: 100_000
        })
    );
    let bad = StoragePricing {
        standard_per_gb_month: None,
        archive_per_gb_month: Some("-3".into()),
    };
    assert!(prices("us-east-1", Some(&bad)).is_err());
}

#[test]
fn cost_is_bytes_over_two_to_the_thirty_times_price() {
    let gib = 1u64 << 30;
    let cases = [
        // (standard bytes, archived bytes, prices, micro-dollars, shown)
        (gib, 0, P, 100_000, "0.1000"),
        (10 * gib, 0, P, 1_000_000, "1.0000"),
        (gib / 2, gib / 2, P, 100_000, "0.1000"),
        (
            gib,
            gib,
            Prices {
                standard: 100_000,
                archive: 70_000,
            },
            170_000,
            "0.1700",
        ),
        (0, 0, P, 0, "0.0000"),
        // 3 MiB at $0.10: 292.96875 micro-dollars, rounded down, shown as 0.0003
        (3 << 20, 0, P, 292, "0.0003"),
    ];
    for (standard, archived, prices, micro, shown) in cases {
        assert_eq!(
            monthly_cost(standard, archived, prices),
            micro,
            "{standard} {archived}"
        );
        assert_eq!(usd(micro), shown);
    }
    assert_eq!(usd(49), "0.0000");
    assert_eq!(usd(50), "0.0001");
}

#[test]
fn sizes_read_as_binary_units() {
    for (bytes, want) in [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (3 << 20, "3.0 MiB"),
        ((1 << 30) + (1 << 29), "1.5 GiB"),
    ] {
        assert_eq!(human_size(bytes), want);
    }
}

#[test]
fn refresh_only_on_the_drift_check_a_request_or_the_first_time() {
    let some = RepositoryInsight::default();
    let cases = [
        (Lane::Background, Some(&some), false, true),
        (Lane::User, Some(&some), false, false),
        (Lane::User, None, false, true),
        (Lane::User, Some(&some), true, true),
    ];
    for (lane, insight, requested, want) in cases {
        assert_eq!(
            due(lane, insight, requested),
            want,
            "{lane:?} {insight:?} {requested}"
        );
    }
}

#[test]
fn pages_add_up_across_passes_and_the_numbers_change_only_when_complete() {
    let now = crate::status::stored_time(at(20_000)).unwrap();
    let page1 = vec![
        image("sha256:a", Some("v1"), 1, 1000, false),
        image("sha256:b", None, 2, 2000, true),
    ];
    let page2 = vec![scanned(
        image("sha256:c", Some("v3"), 3, 4000, false),
        "COMPLETE",
        &[("HIGH", 2), ("CRITICAL", 1)],
    )];
    let prev = RepositoryInsight {
        image_count: 9,
        size_bytes: 9,
        refreshed_at: crate::status::stored_time(at(5)),
        ..Default::default()
    };
    // Pass 1: one page, more to come: the old numbers stay, the progress is recorded.
    let p = fold(start(Some(&prev)), &page1, Some("t1".into()));
    let mid = after_pass(Some(&prev), p, P, &now);
    assert_eq!(mid.image_count, 9);
    let progress = mid.progress.clone().unwrap();
    assert_eq!(
        (progress.next_token.as_str(), progress.pages, progress.image_count),
        ("t1", 1, 2)
    );
    assert_eq!((progress.archived_count, progress.archived_size_bytes), (1, 2000));
    // Pass 2 resumes from the token and finishes.
    let resumed = start(Some(&mid));
    assert_eq!(resumed.next_token, "t1");
    let done = after_pass(Some(&mid), fold(resumed, &page2, None), P, &now);
    assert_eq!(
        (
            done.image_count,
            done.size_bytes,
            done.archived_count,
            done.archived_size_bytes,
            done.pages
        ),
        (3, 7000, 1, 2000, 2)
    );
    assert!(done.progress.is_none());
    assert_eq!(done.refreshed_at, Some(now.clone()));
    let newest = done.newest_image.clone().unwrap();
    assert_eq!(newest.digest, "sha256:c");
    assert_eq!(
        newest.finding_counts,
        BTreeMap::from([("CRITICAL".into(), 1), ("HIGH".into(), 2)])
    );
    assert_eq!(done.worst_severity.as_deref(), Some("CRITICAL"));
    assert_eq!(done.size.as_deref(), Some("6.8 KiB"));
    // 5000 standard + 2000 archived bytes at $0.10: 0.65 micro-dollars, rounds to 0.0000.
    assert_eq!(done.estimated_monthly_cost_usd.as_deref(), Some("0.0000"));
    // The same numbers later keep refreshedAt, so a steady repository writes no status.
    let later = crate::status::stored_time(at(30_000)).unwrap();
    let again = after_pass(
        Some(&done),
        fold(fold(start(Some(&done)), &page1, Some("t1".into())), &page2, None),
        P,
        &later,
    );
    assert_eq!(again, done);
}

#[test]
fn the_newest_image_is_by_push_time_and_never_an_archived_one() {
    let p = fold(
        InsightProgress::default(),
        &[
            image("sha256:old", Some("v1"), 5, 1, false),
            image("sha256:archived", None, 50, 1, true),
            image("sha256:new", Some("v2"), 9, 1, false),
            image("sha256:older", Some("v0"), 1, 1, false),
        ],
        None,
    );
    assert_eq!(p.newest_image.unwrap().digest, "sha256:new");
}

#[test]
fn worst_severity_table() {
    let f = |status: Option<&str>, counts: &[(&str, i64)]| ImageFindings {
        digest: "sha256:x".into(),
        scan_status: status.map(str::to_owned),
        finding_counts: counts.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        ..Default::default()
    };
    let cases = [
        (f(Some("COMPLETE"), &[("LOW", 3), ("HIGH", 1)]), "HIGH"),
        (f(Some("COMPLETE"), &[("CRITICAL", 0), ("MEDIUM", 1)]), "MEDIUM"),
        (f(Some("COMPLETE"), &[]), "NONE"),
        (f(Some("ACTIVE"), &[("UNDEFINED", 2)]), "UNDEFINED"),
        (f(Some("IN_PROGRESS"), &[]), "UNSCANNED"),
        (f(Some("FAILED"), &[]), "UNSCANNED"),
        (f(None, &[]), "UNSCANNED"),
    ];
    for (image, want) in cases {
        assert_eq!(worst_severity(&image), want, "{image:?}");
    }
}

#[test]
fn findings_keep_at_most_ten_tags() {
    let mut i = image("sha256:t", None, 1, 1, false);
    i.tags = (0..15).map(|n| format!("t{n}")).collect();
    assert_eq!(findings(&i).tags.len(), 10);
}

#[test]
fn the_preview_counts_the_bytes_and_saving_of_each_rule() {
    use crate::api::v1alpha1::LifecycleRule;
    use crate::decide::lifecycle_policy::preview;
    use crate::lifecycle::evaluate;
    let rules: Vec<LifecycleRule> = serde_json::from_value(serde_json::json!([
        {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
        {"rulePriority": 2, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}
    ]))
    .unwrap();
    let gib = 1u64 << 30;
    let img = |digest: &str, tag: Option<&str>, pushed: u64, size: u64| {
        (
            "app".to_owned(),
            evaluate::Image {
                digest: digest.into(),
                tags: tag.map(|t| vec![t.to_owned()]).unwrap_or_default(),
                pushed_at: at(pushed),
                last_pulled_at: None,
                archived: false,
                archived_at: None,
                last_activated_at: None,
                size_bytes: size,
            },
        )
    };
    let images = vec![
        img("sha256:1", Some("v1"), 1, 2 * gib),
        img("sha256:2", Some("v2"), 2, 3 * gib),
        img("sha256:3", Some("v3"), 3, 5 * gib),
        img("sha256:4", None, 4, 7),
    ];
    let now = at(100_000);
    let prices = BTreeMap::from([(
        "app".to_owned(),
        Prices {
            standard: 200_000,
            archive: 100_000,
        },
    )]);
    let mut out = preview(&rules, &images, now);
    reclaim(&rules, &images, now, &prices, &mut out);
    // Rule 1 keeps v3 and expires v1 and v2: 5 GiB, at $0.20 a GB-month $1.00.
    assert_eq!((out[0].expiring, out[0].expiring_bytes), (2, (5 * gib) as i64));
    assert_eq!(out[0].estimated_monthly_savings_usd.as_deref(), Some("1.0000"));
    // Rule 2: one untagged image, kept.
    assert_eq!((out[1].expiring, out[1].expiring_bytes), (0, 0));
    assert_eq!(out[1].estimated_monthly_savings_usd.as_deref(), Some("0.0000"));
    // Without the Registry's prices the defaults ($0.10) apply.
    let mut default = preview(&rules, &images, now);
    reclaim(&rules, &images, now, &BTreeMap::new(), &mut default);
    assert_eq!(
        default[0].estimated_monthly_savings_usd.as_deref(),
        Some("0.5000")
    );
}
