//! ECR's lifecycle-policy constraints (docs/dev/ecr-facts.md §1.3), checked by the operator. Most are also
//! CEL rules at admission; the ones CEL cannot express (unique tag sets per storage class, the
//! rendered length) are only here. Each violation names the rule and the constraint.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::v1alpha1::{ActionType, CountType, LifecycleRule, StorageClass, TagStatus};

/// ECR's maximum number of rules per policy.
pub const MAX_RULES: usize = 50;

fn class(r: &LifecycleRule) -> StorageClass {
    r.selection.storage_class.unwrap_or_default()
}

fn class_name(c: StorageClass) -> &'static str {
    match c {
        StorageClass::Standard => "standard",
        StorageClass::Archive => "archive",
    }
}

/// Every violated constraint, one sentence each; empty when the policy is valid.
pub fn violations(rules: &[LifecycleRule]) -> Vec<String> {
    let mut out = Vec::new();
    if rules.is_empty() {
        out.push("a lifecycle policy needs at least one rule".to_owned());
    }
    if rules.len() > MAX_RULES {
        out.push(format!("{} rules: ECR allows at most {MAX_RULES}", rules.len()));
    }
    let mut priorities = BTreeSet::new();
    for r in rules {
        let p = r.rule_priority;
        let s = &r.selection;
        if p < 1 {
            out.push(format!("rule {p}: rulePriority must be a positive integer"));
        }
        if !priorities.insert(p) {
            out.push(format!(
                "rule {p}: rulePriority {p} is used by more than one rule"
            ));
        }
        let (prefixes, patterns) = (s.tag_prefix_list.is_some(), s.tag_pattern_list.is_some());
        match s.tag_status {
            TagStatus::Tagged if prefixes == patterns => {
                out.push(format!(
                    "rule {p}: tagStatus tagged needs exactly one of tagPrefixList and tagPatternList"
                ));
            }
            TagStatus::Untagged | TagStatus::Any if prefixes || patterns => {
                out.push(format!(
                    "rule {p}: tagPrefixList and tagPatternList are only allowed with tagStatus tagged"
                ));
            }
            _ => {}
        }
        for pattern in s.tag_pattern_list.iter().flatten() {
            if pattern.matches('*').count() > 4 {
                out.push(format!(
                    "rule {p}: tag pattern {pattern:?} has more than 4 wildcards"
                ));
            }
        }
        let since = s.count_type != CountType::ImageCountMoreThan;
        if s.count_unit.is_some() != since {
            out.push(format!("rule {p}: countUnit days is required with the since* count types and not allowed with imageCountMoreThan"));
        }
        if s.count_number < 1 {
            out.push(format!("rule {p}: countNumber must be at least 1"));
        }
        let transitioned = s.count_type == CountType::SinceImageTransitioned;
        if transitioned != (class(r) == StorageClass::Archive) {
            out.push(format!("rule {p}: storageClass archive is required with sinceImageTransitioned and only allowed with it"));
        }
        if transitioned && s.count_number < 90 {
            out.push(format!(
                "rule {p}: archived images must be kept at least 90 days (countNumber {} < 90)",
                s.count_number
            ));
        }
        if (r.action.type_ == ActionType::Transition) != r.action.target_storage_class.is_some() {
            out.push(format!(
                "rule {p}: action transition needs targetStorageClass archive, and expire allows none"
            ));
        }
        if s.count_type == CountType::SinceImagePulled && r.action.type_ != ActionType::Transition {
            out.push(format!(
                "rule {p}: sinceImagePulled can only be used with action transition"
            ));
        }
        if transitioned && r.action.type_ != ActionType::Expire {
            out.push(format!(
                "rule {p}: sinceImageTransitioned can only be used with action expire"
            ));
        }
    }
    // Per storage class: `any` last, one `untagged` rule, no repeated tag sets.
    let mut by_class: BTreeMap<&'static str, Vec<&LifecycleRule>> = BTreeMap::new();
    for r in rules {
        by_class.entry(class_name(class(r))).or_default().push(r);
    }
    for (c, rs) in by_class {
        let max = rs.iter().map(|r| r.rule_priority).max().unwrap_or_default();
        for r in rs
            .iter()
            .filter(|r| r.selection.tag_status == TagStatus::Any && r.rule_priority != max)
        {
            out.push(format!(
                "rule {}: a tagStatus any rule must have the highest rulePriority among the {c} rules ({max})",
                r.rule_priority
            ));
        }
        let untagged: Vec<i32> = rs
            .iter()
            .filter(|r| r.selection.tag_status == TagStatus::Untagged)
            .map(|r| r.rule_priority)
            .collect();
        if untagged.len() > 1 {
            out.push(format!(
                "rules {untagged:?}: only one {c} rule may select untagged images"
            ));
        }
        let mut seen: BTreeMap<(bool, BTreeSet<&str>), i32> = BTreeMap::new();
        for r in &rs {
            let (kind, list) = match (&r.selection.tag_prefix_list, &r.selection.tag_pattern_list) {
                (Some(l), _) => (true, l),
                (_, Some(l)) => (false, l),
                _ => continue,
            };
            let set: BTreeSet<&str> = list.iter().map(String::as_str).collect();
            if let Some(first) = seen.insert((kind, set), r.rule_priority) {
                out.push(format!(
                    "rules {first} and {}: the {c} rules must not repeat the same tag prefixes or patterns",
                    r.rule_priority
                ));
            }
        }
    }
    let length = super::render(rules).len();
    if length > super::MAX_TEXT {
        out.push(format!(
            "the policy is {length} characters; ECR allows at most {}",
            super::MAX_TEXT
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn rules(v: Value) -> Vec<LifecycleRule> {
        serde_json::from_value(v).unwrap()
    }

    fn rule(p: i32, selection: Value, action: Value) -> Value {
        json!({"rulePriority": p, "selection": selection, "action": action})
    }

    const EXPIRE: fn() -> Value = || json!({"type": "expire"});

    /// (constraint, a valid policy, an invalid policy, text the violation contains)
    #[test]
    fn one_valid_and_one_invalid_case_per_constraint() {
        let tagged = |p: i32, list: Value| {
            rule(
                p,
                json!({"tagStatus": "tagged", "tagPrefixList": list, "countType": "imageCountMoreThan", "countNumber": 5}),
                EXPIRE(),
            )
        };
        let untagged = |p: i32| {
            rule(
                p,
                json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}),
                EXPIRE(),
            )
        };
        let any = |p: i32| {
            rule(
                p,
                json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 100}),
                EXPIRE(),
            )
        };
        let archive_expire = |p: i32, days: i32| {
            rule(
                p,
                json!({"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": days}),
                EXPIRE(),
            )
        };
        let pulled = |p: i32, action: Value| {
            rule(
                p,
                json!({"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90}),
                action,
            )
        };
        let transition = json!({"type": "transition", "targetStorageClass": "archive"});
        let cases: Vec<(&str, Value, Value, &str)> = vec![
            (
                "unique priorities",
                json!([tagged(1, json!(["a"])), untagged(2)]),
                json!([tagged(1, json!(["a"])), untagged(1)]),
                "used by more than one rule",
            ),
            (
                "positive priority",
                json!([untagged(1)]),
                json!([untagged(0)]),
                "positive integer",
            ),
            (
                "any last",
                json!([tagged(1, json!(["a"])), any(2)]),
                json!([any(1), tagged(2, json!(["a"]))]),
                "highest rulePriority",
            ),
            (
                "any last per class",
                json!([pulled(1, transition.clone()), archive_expire(2, 180)]),
                json!([archive_expire(1, 180), any(2), any(3)]),
                "highest rulePriority",
            ),
            (
                "tagged needs a list",
                json!([tagged(1, json!(["a"]))]),
                json!([rule(
                    1,
                    json!({"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 5}),
                    EXPIRE()
                )]),
                "exactly one of",
            ),
            (
                "tagged: not both lists",
                json!([tagged(1, json!(["a"]))]),
                json!([rule(
                    1,
                    json!({"tagStatus": "tagged", "tagPrefixList": ["a"], "tagPatternList": ["a*"], "countType": "imageCountMoreThan", "countNumber": 5}),
                    EXPIRE()
                )]),
                "exactly one of",
            ),
            (
                "lists only with tagged",
                json!([untagged(1)]),
                json!([rule(
                    1,
                    json!({"tagStatus": "untagged", "tagPrefixList": ["a"], "countType": "imageCountMoreThan", "countNumber": 5}),
                    EXPIRE()
                )]),
                "only allowed with tagStatus tagged",
            ),
            (
                "at most 4 wildcards",
                json!([rule(
                    1,
                    json!({"tagStatus": "tagged", "tagPatternList": ["*a*b*c*"], "countType": "imageCountMoreThan", "countNumber": 5}),
                    EXPIRE()
                )]),
                json!([rule(
                    1,
                    json!({"tagStatus": "tagged", "tagPatternList": ["*a*b*c*d*"], "countType": "imageCountMoreThan", "countNumber": 5}),
                    EXPIRE()
                )]),
                "more than 4 wildcards",
            ),
            (
                "unique tag sets per class",
                json!([tagged(1, json!(["a", "b"])), tagged(2, json!(["a"]))]),
                json!([tagged(1, json!(["a", "b"])), tagged(2, json!(["b", "a"]))]),
                "must not repeat",
            ),
            (
                "one untagged per class",
                json!([untagged(1)]),
                json!([untagged(1), untagged(2)]),
                "only one standard rule may select untagged",
            ),
            (
                "countUnit with since*",
                json!([untagged(1)]),
                json!([rule(
                    1,
                    json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 14}),
                    EXPIRE()
                )]),
                "countUnit days is required",
            ),
            (
                "no countUnit with imageCountMoreThan",
                json!([any(1)]),
                json!([rule(
                    1,
                    json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countUnit": "days", "countNumber": 5}),
                    EXPIRE()
                )]),
                "countUnit days is required",
            ),
            (
                "countNumber >= 1",
                json!([any(1)]),
                json!([rule(
                    1,
                    json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 0}),
                    EXPIRE()
                )]),
                "at least 1",
            ),
            (
                "archive only with sinceImageTransitioned",
                json!([archive_expire(1, 90)]),
                json!([rule(
                    1,
                    json!({"tagStatus": "any", "storageClass": "archive", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 5}),
                    EXPIRE()
                )]),
                "storageClass archive is required",
            ),
            (
                "archive kept 90 days",
                json!([archive_expire(1, 90)]),
                json!([archive_expire(1, 89)]),
                "at least 90 days",
            ),
            (
                "transition needs a target",
                json!([pulled(1, transition.clone())]),
                json!([pulled(1, json!({"type": "transition"}))]),
                "needs targetStorageClass",
            ),
            (
                "sinceImagePulled only transitions",
                json!([pulled(1, transition.clone())]),
                json!([pulled(1, EXPIRE())]),
                "only be used with action transition",
            ),
            (
                "sinceImageTransitioned only expires",
                json!([archive_expire(1, 90)]),
                json!([rule(
                    1,
                    json!({"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90}),
                    transition.clone()
                )]),
                "only be used with action expire",
            ),
            (
                "at most 50 rules",
                Value::Array((1..=50).map(|i| tagged(i, json!([format!("p{i}")]))).collect()),
                Value::Array((1..=51).map(|i| tagged(i, json!([format!("p{i}")]))).collect()),
                "at most 50",
            ),
            (
                "at most 30,720 characters",
                json!([tagged(1, json!(["x".repeat(300)]))]),
                Value::Array(
                    (1..=50)
                        .map(|i| {
                            tagged(
                                i,
                                json!(
                                    (0..3)
                                        .map(|j| format!("{i}-{j}-{}", "x".repeat(290)))
                                        .collect::<Vec<_>>()
                                ),
                            )
                        })
                        .collect(),
                ),
                "ECR allows at most 30720",
            ),
        ];
        for (name, valid, invalid, expected) in cases {
            assert_eq!(
                violations(&rules(valid)),
                Vec::<String>::new(),
                "{name}: the valid case"
            );
            let found = violations(&rules(invalid));
            assert!(
                found.iter().any(|v| v.contains(expected)),
                "{name}: expected {expected:?} in {found:?}"
            );
        }
    }
}
