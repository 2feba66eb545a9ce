use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::*;
use crate::inventory::reference::parse;

const DAY: u64 = 86_400;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 * DAY)
}

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn image(n: u8, tags: &[&str], days_ago: u64) -> Image {
    Image {
        digest: digest(n),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        pushed_at: now() - Duration::from_secs(days_ago * DAY),
        last_pulled_at: None,
        archived: false,
        archived_at: None,
        last_activated_at: None,
        size_bytes: 0,
    }
}

fn rules(v: serde_json::Value) -> Vec<LifecycleRule> {
    serde_json::from_value(v).unwrap()
}

/// Expire every image but the newest two.
fn keep_two() -> Vec<LifecycleRule> {
    rules(
        json!([{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2}, "action": {"type": "expire"}}]),
    )
}

#[test]
fn marks_are_per_cluster_and_per_digest_and_fit_a_tag() {
    let (a, b) = (cluster_token("uid-a"), cluster_token("uid-b"));
    assert_eq!(a.len(), 12);
    assert_ne!(a, b);
    assert_eq!(a, cluster_token("uid-a"));
    let m = mark(&a, &digest(7));
    assert_eq!(m, format!("ecr-operator-keep-{a}-{}", "07".repeat(32)));
    assert!(m.len() <= 128 && is_mark(&m));
    assert!(m.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    assert_ne!(mark(&a, &digest(7)), mark(&b, &digest(7)));
    assert_eq!(mark(&a, "sha512:xyz").len(), m.len(), "other digests are hashed");
    assert!(!is_mark("v1"));
}

#[test]
fn the_protected_policy_puts_protection_first_and_shifts_only_when_needed() {
    let p = protected(&keep_two()).unwrap();
    assert_eq!(
        p.iter().map(|r| r.rule_priority).collect::<Vec<_>>(),
        [1, 2],
        "the user's rule 1 moves to 2"
    );
    assert!(is_protection_rule(&p[0]) && !is_protection_rule(&p[1]));
    assert_eq!(
        p[0].selection.tag_prefix_list.as_deref(),
        Some(&[MARK_PREFIX.to_owned()][..])
    );

    let mut later = keep_two();
    later[0].rule_priority = 10;
    let p = protected(&later).unwrap();
    assert_eq!(p.iter().map(|r| r.rule_priority).collect::<Vec<_>>(), [1, 10]);

    let archive = rules(json!([
        {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90}, "action": {"type": "transition", "targetStorageClass": "archive"}},
        {"rulePriority": 2, "selection": {"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 180}, "action": {"type": "expire"}}
    ]));
    let p = protected(&archive).unwrap();
    assert_eq!(
        p.iter().map(|r| r.rule_priority).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(p[1].selection.storage_class, Some(StorageClass::Archive));
    assert!(crate::lifecycle::validate::violations(&p).is_empty());
}

#[test]
fn a_policy_the_protection_rule_cannot_fit_is_refused_with_the_reason() {
    let fifty: Vec<LifecycleRule> = (1..=50)
        .map(|i| {
            rules(json!([{"rulePriority": i, "selection": {"tagStatus": "tagged", "tagPrefixList": [format!("t{i}-")], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}])).remove(0)
        })
        .collect();
    assert!(protected(&fifty[..49]).is_ok(), "49 + 1 fit");
    let e = protected(&fifty).unwrap_err();
    assert!(e.contains("51 rules") && e.contains("50 user rules"), "{e}");

    let same = rules(
        json!([{"rulePriority": 3, "selection": {"tagStatus": "tagged", "tagPrefixList": [MARK_PREFIX], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]),
    );
    assert!(protected(&same).unwrap_err().contains("same tag prefixes"));

    // User rules just under ECR's length limit: the protection rule pushes them over it.
    let user = |len: usize| -> Vec<LifecycleRule> {
        (1..=30)
            .map(|i| {
                rules(json!([{"rulePriority": i, "description": "d".repeat(len), "selection": {"tagStatus": "tagged", "tagPrefixList": [format!("t{i}-")], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}])).remove(0)
            })
            .collect()
    };
    let len = (500..1024)
        .find(|&l| crate::lifecycle::render(&user(l)).len() > crate::lifecycle::MAX_TEXT - 100)
        .unwrap();
    let long = user(len);
    assert!(crate::lifecycle::validate::violations(&long).is_empty());
    let e = protected(&long).unwrap_err();
    assert!(
        e.contains("characters"),
        "the length limit counts the protection rule: {e}"
    );
}

#[test]
fn references_resolve_by_digest_and_by_the_tag_ecr_holds_now() {
    let host = "h.example";
    let images = [
        image(1, &["v1"], 3),
        image(2, &["v2", "latest"], 2),
        image(3, &[], 1),
    ];
    let u = |r: &str, w: &str| Use {
        reference: parse(&format!("{host}/{r}")).unwrap(),
        workload: w.into(),
    };
    let uses = [
        u("app:v2", "Deployment a/web"),
        u("app", "Pod a/bare"),
        u(&format!("app@{}", digest(3)), "CronJob a/nightly"),
        u(&format!("app@{}", digest(9)), "Pod a/gone"),
        u("app:v9", "Pod a/missing-tag"),
    ];
    let got = resolve(&uses, &images);
    let want: BTreeMap<String, BTreeSet<String>> = [
        (
            digest(2),
            ["Deployment a/web", "Pod a/bare"].map(String::from).into(),
        ),
        (digest(3), ["CronJob a/nightly"].map(String::from).into()),
    ]
    .into();
    assert_eq!(got, want);
}

struct Case {
    name: &'static str,
    images: Vec<Image>,
    in_use: &'static [u8],
    left_days_ago: &'static [(u8, u64)],
    complete: bool,
    add: &'static [u8],
    release: &'static [u8],
    held: &'static [u8],
}

#[test]
fn the_protection_plan() {
    let us = cluster_token("us");
    let them = cluster_token("them");
    let ours = |n: u8| mark(&us, &digest(n));
    let theirs = |n: u8| mark(&them, &digest(n));
    let (o1, o2, o3, o4, t5) = (ours(1), ours(2), ours(3), ours(4), theirs(5));
    let policy = protected(&keep_two()).unwrap();
    let cases = [
        Case {
            name: "in use and unmarked: mark it; marked: nothing",
            images: vec![image(1, &["v1"], 10), image(2, &["v2", &o2], 9), image(3, &[], 1)],
            in_use: &[1, 2],
            left_days_ago: &[],
            complete: true,
            add: &[1],
            release: &[],
            held: &[],
        },
        Case {
            name: "an archived image in use is tagged once restored, not before",
            images: vec![
                Image {
                    archived: true,
                    ..image(6, &["v6"], 200)
                },
                image(7, &["v7"], 1),
            ],
            in_use: &[6, 7],
            left_days_ago: &[],
            complete: true,
            add: &[7],
            release: &[],
            held: &[],
        },
        Case {
            name: "another cluster's mark does not stand for ours",
            images: vec![image(5, &[&t5], 10)],
            in_use: &[5],
            left_days_ago: &[],
            complete: true,
            add: &[5],
            release: &[],
            held: &[],
        },
        Case {
            name: "another cluster's mark is never released",
            images: vec![image(5, &[&t5], 10), image(6, &[], 1), image(7, &[], 1)],
            in_use: &[],
            left_days_ago: &[(5, 30)],
            complete: true,
            add: &[],
            release: &[],
            held: &[],
        },
        Case {
            name: "left use: held through the grace period, then released when it keeps a tag",
            images: vec![image(1, &["v1", &o1], 10), image(2, &["v2", &o2], 9)],
            in_use: &[],
            left_days_ago: &[(2, 2)],
            complete: true,
            add: &[],
            release: &[2],
            held: &[1],
        },
        Case {
            name: "an incomplete inventory releases nothing",
            images: vec![image(2, &["v2", &o2], 9)],
            in_use: &[],
            left_days_ago: &[(2, 2)],
            complete: false,
            add: &[],
            release: &[],
            held: &[2],
        },
        Case {
            name: "a last tag is released only when the user's rules expire the image anyway",
            images: vec![
                image(3, &[&o3], 10), // the oldest of four: keep-two expires it untagged
                image(4, &[&o4], 1),  // the newest: keep-two keeps it
                image(8, &["a"], 5),
                image(9, &["b"], 4),
            ],
            in_use: &[],
            left_days_ago: &[(3, 2), (4, 2)],
            complete: true,
            add: &[],
            release: &[3],
            held: &[4],
        },
    ];
    for c in cases {
        let in_use: BTreeSet<String> = c.in_use.iter().map(|n| digest(*n)).collect();
        let left: BTreeMap<String, SystemTime> = c
            .left_days_ago
            .iter()
            .map(|(n, d)| (digest(*n), now() - Duration::from_secs(d * DAY)))
            .collect();
        let s = Settings {
            token: &us,
            complete: c.complete,
            grace: Duration::from_secs(DAY),
            rules: &policy,
            now: now(),
        };
        let p = plan(&c.images, &in_use, &left, &s);
        let digests = |v: &[(String, String)]| v.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>();
        let want = |v: &[u8]| v.iter().map(|n| digest(*n)).collect::<Vec<_>>();
        assert_eq!(digests(&p.add), want(c.add), "{}: add", c.name);
        assert_eq!(digests(&p.release), want(c.release), "{}: release", c.name);
        assert_eq!(p.held, want(c.held), "{}: held", c.name);
        for (d, tag) in p.add.iter().chain(&p.release) {
            assert_eq!(tag, &mark(&us, d), "{}: only our own mark", c.name);
        }
        for d in &p.held {
            assert!(p.left_use.contains_key(d), "{}: the grace start is kept", c.name);
        }
    }
}

#[test]
fn the_grace_period_starts_when_the_image_is_first_seen_out_of_use() {
    let us = cluster_token("us");
    let policy = protected(&keep_two()).unwrap();
    let images = vec![image(1, &["v1", &mark(&us, &digest(1))], 10)];
    let s = Settings {
        token: &us,
        complete: true,
        grace: Duration::from_secs(3600),
        rules: &policy,
        now: now(),
    };
    let first = plan(&images, &BTreeSet::new(), &BTreeMap::new(), &s);
    assert_eq!(first.left_use.get(&digest(1)), Some(&now()));
    assert!(first.release.is_empty());
    let later = Settings {
        now: now() + Duration::from_secs(3600),
        ..s.clone()
    };
    let second = plan(&images, &BTreeSet::new(), &first.left_use, &later);
    assert_eq!(second.release.len(), 1);
    // Back in use: the grace start is forgotten.
    let back = plan(&images, &[digest(1)].into(), &first.left_use, &later);
    assert!(back.left_use.is_empty() && back.release.is_empty() && back.protected == 1);
}

#[test]
fn settings_default_to_on_with_a_day_of_grace_and_two_revisions() {
    let spec = |p: serde_json::Value| -> crate::api::v1alpha1::LifecyclePolicySpec {
        let mut v = json!({"repositories": ["a"], "rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]});
        if !p.is_null() {
            v["protection"] = p;
        }
        serde_json::from_value(v).unwrap()
    };
    for (p, want) in [
        (json!(null), Some((DEFAULT_GRACE, DEFAULT_ROLLBACK))),
        (json!({}), Some((Duration::from_secs(86_400), 2))),
        (
            json!({"enabled": true, "gracePeriod": "10s", "rollbackRevisions": 0}),
            Some((Duration::from_secs(10), 0)),
        ),
        (
            json!({"gracePeriod": "1h30m", "rollbackRevisions": 5}),
            Some((Duration::from_secs(5_400), 5)),
        ),
        (json!({"enabled": false, "gracePeriod": "10s"}), None),
    ] {
        assert_eq!(settings(&spec(p.clone())), want, "{p}");
    }
}

#[test]
fn the_preview_moves_images_in_use_from_expiring_to_kept_and_names_their_workloads() {
    use crate::decide::protection::preview::{InUse, annotate};
    let imgs = vec![
        ("r".to_owned(), image(1, &["v1"], 10)),
        ("r".to_owned(), image(2, &["v2"], 9)),
        ("r".to_owned(), image(3, &[], 8)),
        ("r".to_owned(), image(4, &["v4"], 2)),
        ("r".to_owned(), image(5, &["v5"], 1)),
    ];
    let mut preview = crate::decide::lifecycle_policy::preview(&keep_two(), &imgs, now());
    assert_eq!(preview[0].expiring, 3);
    let mut in_use = InUse::new();
    in_use.insert(
        "r".into(),
        [
            (digest(1), ["Deployment a/web".to_owned()].into()),
            (
                digest(3),
                [
                    "Pod a/x".to_owned(),
                    "CronJob a/c".to_owned(),
                    "StatefulSet a/s".to_owned(),
                ]
                .into(),
            ),
            (digest(5), ["Pod a/new".to_owned()].into()),
        ]
        .into(),
    );
    annotate(&mut preview, &keep_two(), &imgs, &in_use, now());
    let p = &preview[0];
    assert_eq!((p.matched, p.expiring, p.kept_in_use), (5, 1, 2), "{p:?}");
    assert_eq!(p.examples, ["r:v2"], "the images in use are no longer examples");
    assert_eq!(
        p.in_use_by,
        ["CronJob a/c", "Deployment a/web", "Pod a/x"],
        "three names at most; the newest image was never expiring, so its Pod is not named"
    );
}

#[test]
fn the_bytes_a_rule_reclaims_leave_out_the_images_in_use() {
    const GB: u64 = 1 << 30;
    use crate::decide::protection::preview::{InUse, reclaim};
    let sized = |n: u8, tags: &[&str], days: u64, size: u64| Image {
        size_bytes: size,
        ..image(n, tags, days)
    };
    let imgs = vec![
        ("r".to_owned(), sized(1, &["v1"], 10, 10 * GB)),
        ("r".to_owned(), sized(2, &["v2"], 9, 2 * GB)),
        ("r".to_owned(), sized(3, &["v3"], 2, GB)),
        ("r".to_owned(), sized(4, &["v4"], 1, GB)),
    ];
    let prices = BTreeMap::new();
    let mut plain = crate::decide::lifecycle_policy::preview(&keep_two(), &imgs, now());
    crate::decide::insight::reclaim(&keep_two(), &imgs, now(), &prices, &mut plain);
    assert_eq!(
        plain[0].expiring_bytes,
        (12 * GB) as i64,
        "v1 and v2 without protection"
    );
    let mut in_use = InUse::new();
    in_use.insert(
        "r".into(),
        [(digest(1), ["Deployment a/web".to_owned()].into())].into(),
    );
    let mut kept = plain.clone();
    reclaim(
        &mut kept,
        &protected(&keep_two()).unwrap(),
        &imgs,
        &in_use,
        now(),
        &prices,
    );
    assert_eq!(
        kept[0].expiring_bytes,
        (2 * GB) as i64,
        "v1 is in use: only v2's bytes"
    );
    assert!(kept[0].estimated_monthly_savings_usd.is_some());
    assert_ne!(
        kept[0].estimated_monthly_savings_usd,
        plain[0].estimated_monthly_savings_usd
    );
}
