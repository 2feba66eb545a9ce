//! A local evaluator of ECR's documented lifecycle semantics (docs/dev/ecr-facts.md §1.4), for previews:
//!
//! - rules are applied in priority order (lowest number first);
//! - each image is acted on by at most one rule;
//! - an image that matches the tag selection of a rule cannot be expired or archived by a rule
//!   with a lower priority; a lower rule still *counts* it (ECR's "multiple rules" example);
//! - `imageCountMoreThan N` keeps the N newest images of its selection (by push time, or by
//!   restore time after an archive) and acts on the rest; `sinceImagePushed`, `sinceImagePulled`
//!   (last pull, else push) and `sinceImageTransitioned` (time archived) act on images older than
//!   N days;
//! - a rule only sees images of its storage class (`standard` unless it says `archive`).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use crate::api::v1alpha1::{ActionType, CountType, LifecycleRule, StorageClass, TagStatus};

/// An image as the evaluator needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: SystemTime,
    pub last_pulled_at: Option<SystemTime>,
    pub archived: bool,
    pub archived_at: Option<SystemTime>,
    /// When it was restored from the archive, if ever.
    pub last_activated_at: Option<SystemTime>,
    /// `imageSizeInBytes` (0 when ECR did not say): only previews' byte counts read it.
    pub size_bytes: u64,
}

/// What one rule does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleOutcome {
    pub rule_priority: i32,
    /// Indices of the images its selection matches (before other rules act).
    pub matched: Vec<usize>,
    /// Indices of the images it expires.
    pub expired: Vec<usize>,
    /// Indices of the images it moves to the archive storage class.
    pub transitioned: Vec<usize>,
}

/// Whether `pattern` (with `*` wildcards) matches `tag` entirely.
pub fn wildcard_match(pattern: &str, tag: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == tag;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !tag.starts_with(first) || tag.len() < first.len() + last.len() || !tag.ends_with(last) {
        return false;
    }
    let mut rest = &tag[first.len()..tag.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

fn selects(rule: &LifecycleRule, image: &Image) -> bool {
    let class = rule.selection.storage_class.unwrap_or_default();
    if image.archived != (class == StorageClass::Archive) {
        return false;
    }
    let s = &rule.selection;
    match s.tag_status {
        TagStatus::Any => true,
        TagStatus::Untagged => image.tags.is_empty(),
        TagStatus::Tagged => {
            // Every prefix (or pattern) must match one of the image's tags.
            let prefixes = s
                .tag_prefix_list
                .iter()
                .flatten()
                .all(|p| image.tags.iter().any(|t| t.starts_with(p.as_str())));
            let patterns = s
                .tag_pattern_list
                .iter()
                .flatten()
                .all(|p| image.tags.iter().any(|t| wildcard_match(p, t)));
            !image.tags.is_empty() && prefixes && patterns
        }
    }
}

fn age_reference(rule: &LifecycleRule, image: &Image) -> SystemTime {
    let activated = image.last_activated_at.unwrap_or(image.pushed_at);
    match rule.selection.count_type {
        CountType::SinceImagePulled => image.last_pulled_at.unwrap_or(activated),
        CountType::SinceImageTransitioned => image.archived_at.unwrap_or(activated),
        _ => activated,
    }
}

/// Evaluates `rules` over `images` at `now`.
pub fn evaluate(rules: &[LifecycleRule], images: &[Image], now: SystemTime) -> Vec<RuleOutcome> {
    let mut sorted: Vec<&LifecycleRule> = rules.iter().collect();
    sorted.sort_by_key(|r| r.rule_priority);
    let mut protected: BTreeSet<usize> = BTreeSet::new(); // matched by a higher-priority rule
    let mut acted: BTreeSet<usize> = BTreeSet::new();
    let mut outcomes = Vec::new();
    for rule in sorted {
        let matched: Vec<usize> = (0..images.len()).filter(|&i| selects(rule, &images[i])).collect();
        let n = u64::try_from(rule.selection.count_number.max(0)).unwrap_or_default();
        let candidates: Vec<usize> = match rule.selection.count_type {
            CountType::ImageCountMoreThan => {
                let mut newest_first = matched.clone();
                newest_first.sort_by_key(|&i| std::cmp::Reverse(age_reference(rule, &images[i])));
                newest_first
                    .into_iter()
                    .skip(usize::try_from(n).unwrap_or(usize::MAX))
                    .collect()
            }
            _ => {
                let limit = Duration::from_secs(n.saturating_mul(86_400));
                matched
                    .iter()
                    .copied()
                    .filter(|&i| {
                        now.duration_since(age_reference(rule, &images[i]))
                            .is_ok_and(|age| age > limit)
                    })
                    .collect()
            }
        };
        let mut outcome = RuleOutcome {
            rule_priority: rule.rule_priority,
            matched: matched.clone(),
            ..Default::default()
        };
        for i in candidates {
            if acted.contains(&i) || protected.contains(&i) {
                continue;
            }
            acted.insert(i);
            match rule.action.type_ {
                ActionType::Expire => outcome.expired.push(i),
                ActionType::Transition => outcome.transitioned.push(i),
            }
        }
        outcome.expired.sort_unstable();
        outcome.transitioned.sort_unstable();
        protected.extend(matched);
        outcomes.push(outcome);
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DAY: u64 = 86_400;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 * DAY)
    }

    fn image(digest: &str, tags: &[&str], days_ago: u64) -> Image {
        Image {
            digest: digest.into(),
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

    fn names(images: &[Image], idx: &[usize]) -> Vec<String> {
        idx.iter().map(|&i| images[i].digest.clone()).collect()
    }

    #[test]
    fn guide_example_filtering_on_multiple_rules() {
        // ECR user guide, "Filtering on multiple rules": prod keep 1, beta keep 1.
        let images = [
            image("A", &["beta-1", "prod-1"], 10),
            image("B", &["beta-2", "prod-2"], 9),
            image("C", &["beta-3"], 8),
        ];
        let policy = rules(json!([
            {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
            {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPrefixList": ["beta"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}
        ]));
        let out = evaluate(&policy, &images, now());
        assert_eq!(names(&images, &out[0].expired), ["A"]);
        // Rule 2 would mark A and B: A is already expired, B matches rule 1 and is protected.
        assert!(out[1].expired.is_empty());
        assert_eq!(names(&images, &out[1].matched), ["A", "B", "C"]);
    }

    #[test]
    fn guide_example_multiple_tags_in_one_rule_need_all_prefixes() {
        // "Filtering on multiple tags in a single rule": prefixes alpha and beta, keep 1.
        let images = [
            image("A", &["alpha-1"], 12),
            image("B", &["beta-1"], 11),
            image("C", &["alpha-2", "beta-2"], 10),
            image("D", &["alpha-3", "beta-3"], 9),
        ];
        let policy = rules(
            json!([{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["alpha", "beta"], "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]),
        );
        let out = evaluate(&policy, &images, now());
        assert_eq!(names(&images, &out[0].matched), ["C", "D"]);
        assert_eq!(names(&images, &out[0].expired), ["C"]);
    }

    #[test]
    fn guide_examples_age_and_count_of_untagged_images() {
        let images = [
            image("old", &[], 20),
            image("new", &[], 3),
            image("tagged", &["v1"], 30),
        ];
        let by_age = rules(
            json!([{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}, "action": {"type": "expire"}}]),
        );
        assert_eq!(
            names(&images, &evaluate(&by_age, &images, now())[0].expired),
            ["old"]
        );
        let by_count = rules(
            json!([{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]),
        );
        assert_eq!(
            names(&images, &evaluate(&by_count, &images, now())[0].expired),
            ["old"]
        );
    }

    #[test]
    fn any_rule_last_spares_images_a_tagged_rule_matched() {
        let images: Vec<Image> = (0..6)
            .map(|i| image(&format!("v{i}"), &[&format!("v{i}")], 10 - i))
            .chain([image("x", &["dev"], 20)])
            .collect();
        let policy = rules(json!([
            {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"], "countType": "imageCountMoreThan", "countNumber": 3}, "action": {"type": "expire"}},
            {"rulePriority": 2, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}
        ]));
        let out = evaluate(&policy, &images, now());
        assert_eq!(names(&images, &out[0].expired), ["v0", "v1", "v2"]);
        assert_eq!(
            names(&images, &out[1].expired),
            ["x"],
            "v* images are protected from the any rule"
        );
    }

    #[test]
    fn pull_and_archive_rules() {
        let mut cold = image("cold", &["a"], 200);
        cold.last_pulled_at = Some(now() - Duration::from_secs(100 * DAY));
        let mut warm = image("warm", &["b"], 200);
        warm.last_pulled_at = Some(now() - Duration::from_secs(5 * DAY));
        let mut archived = image("archived", &["c"], 400);
        archived.archived = true;
        archived.archived_at = Some(now() - Duration::from_secs(200 * DAY));
        let images = [cold, warm, archived];
        let policy = rules(json!([
            {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90}, "action": {"type": "transition", "targetStorageClass": "archive"}},
            {"rulePriority": 2, "selection": {"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 180}, "action": {"type": "expire"}}
        ]));
        let out = evaluate(&policy, &images, now());
        assert_eq!(names(&images, &out[0].transitioned), ["cold"]);
        assert_eq!(names(&images, &out[1].expired), ["archived"]);
    }

    #[test]
    fn wildcards() {
        for (p, t, m) in [
            ("prod*", "prod", true),
            ("prod*", "production-1", true),
            ("*prod*", "my-prod-1", true),
            ("prod", "prod1", false),
            ("*a*b", "xaxb", true),
            ("*a*b", "xbxa", false),
            ("v*-rc*", "v1.2-rc3", true),
        ] {
            assert_eq!(wildcard_match(p, t), m, "{p} {t}");
        }
    }
}
