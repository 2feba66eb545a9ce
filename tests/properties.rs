//! Property tests (proptest) for the pure cores that decide what the operator does to ECR: the
//! lifecycle validator and evaluator, the replication merge, and the decoders (interval, region,
//! label selectors) that must accept exactly what admission accepts.

// Test code: helpers may unwrap (the standard forbids unwrap outside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use ecr_operator::api::v1alpha1::{
    ActionType, CountType, CountUnit, LifecycleAction, LifecycleRule, LifecycleSelection, StorageClass,
    TagStatus, TargetStorageClass,
};
use ecr_operator::backend::ReplicationRuleSettings;
use ecr_operator::controllers::replication::{MAX_DESTINATIONS, MAX_RULES, RuleInput, Verdict, merge};
use ecr_operator::lifecycle::evaluate::{Image, evaluate};
use ecr_operator::lifecycle::validate::violations;
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;

fn tag() -> impl Strategy<Value = String> {
    prop_oneof![
        "v[0-9]\\.[0-9]",
        "(dev|prod|rc)-[a-c]",
        Just("latest".to_owned()),
        "[a-z*]{0,4}",
    ]
}

fn selection() -> impl Strategy<Value = LifecycleSelection> {
    (
        prop_oneof![
            Just(TagStatus::Tagged),
            Just(TagStatus::Untagged),
            Just(TagStatus::Any)
        ],
        proptest::option::of(proptest::collection::vec(tag(), 0..3)),
        proptest::option::of(proptest::collection::vec(tag(), 0..3)),
        proptest::option::of(prop_oneof![
            Just(StorageClass::Standard),
            Just(StorageClass::Archive)
        ]),
        prop_oneof![
            Just(CountType::ImageCountMoreThan),
            Just(CountType::SinceImagePushed),
            Just(CountType::SinceImagePulled),
            Just(CountType::SinceImageTransitioned),
        ],
        proptest::option::of(Just(CountUnit::Days)),
        -2i32..40,
    )
        .prop_map(
            |(tag_status, prefixes, patterns, storage_class, count_type, count_unit, count_number)| {
                LifecycleSelection {
                    tag_status,
                    tag_prefix_list: prefixes,
                    tag_pattern_list: patterns,
                    storage_class,
                    count_type,
                    count_unit,
                    count_number,
                }
            },
        )
}

fn rule() -> impl Strategy<Value = LifecycleRule> {
    (
        -1i32..12,
        selection(),
        prop_oneof![Just(ActionType::Expire), Just(ActionType::Transition)],
        proptest::option::of(Just(TargetStorageClass::Archive)),
    )
        .prop_map(
            |(rule_priority, selection, type_, target_storage_class)| LifecycleRule {
                rule_priority,
                description: None,
                selection,
                action: LifecycleAction {
                    type_,
                    target_storage_class,
                },
            },
        )
}

fn at(days_ago: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW - days_ago * 86_400)
}

fn image() -> impl Strategy<Value = Image> {
    (
        proptest::collection::vec(tag(), 0..3),
        0u64..400,
        proptest::option::of(0u64..400),
        any::<bool>(),
        proptest::option::of(0u64..400),
    )
        .prop_map(|(tags, pushed, pulled, archived, archived_at)| Image {
            digest: String::new(),
            tags,
            pushed_at: at(pushed),
            last_pulled_at: pulled.map(at),
            archived,
            archived_at: archived_at.filter(|_| archived).map(at),
            last_activated_at: None,
            size_bytes: 0,
        })
}

fn images() -> impl Strategy<Value = Vec<Image>> {
    proptest::collection::vec(image(), 0..25).prop_map(|mut v| {
        for (i, img) in v.iter_mut().enumerate() {
            img.digest = format!("sha256:{i:064}");
        }
        v
    })
}

fn tags(n: std::ops::Range<usize>) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::btree_set(tag(), n).prop_map(|s| s.into_iter().collect())
}

/// A `tagged` standard rule: prefixes or patterns; expire by count or age, or archive when not pulled.
fn tagged_rule() -> impl Strategy<Value = LifecycleRule> {
    (any::<bool>(), tags(1..3), 0u8..4, 1i32..40).prop_map(|(prefix, list, shape, n)| {
        let (count_type, type_) = match shape {
            0 => (CountType::ImageCountMoreThan, ActionType::Expire),
            1 => (CountType::SinceImagePushed, ActionType::Expire),
            2 => (CountType::SinceImagePulled, ActionType::Transition),
            _ => (CountType::ImageCountMoreThan, ActionType::Transition),
        };
        build(
            TagStatus::Tagged,
            prefix.then(|| list.clone()),
            (!prefix).then_some(list),
            None,
            count_type,
            n,
            type_,
        )
    })
}

fn build(
    tag_status: TagStatus,
    tag_prefix_list: Option<Vec<String>>,
    tag_pattern_list: Option<Vec<String>>,
    storage_class: Option<StorageClass>,
    count_type: CountType,
    count_number: i32,
    type_: ActionType,
) -> LifecycleRule {
    LifecycleRule {
        rule_priority: 0,
        description: None,
        selection: LifecycleSelection {
            tag_status,
            tag_prefix_list,
            tag_pattern_list,
            storage_class,
            count_unit: (count_type != CountType::ImageCountMoreThan).then_some(CountUnit::Days),
            count_type,
            count_number,
        },
        action: LifecycleAction {
            target_storage_class: (type_ == ActionType::Transition).then_some(TargetStorageClass::Archive),
            type_,
        },
    }
}

/// Policies ECR would accept, built to be valid (tagged rules, then at most one untagged, one
/// `any` last, and one archive-class rule), with the validator as the final word.
fn valid_rules() -> impl Strategy<Value = Vec<LifecycleRule>> {
    (
        proptest::collection::vec(tagged_rule(), 0..4),
        proptest::option::of((any::<bool>(), 1i32..30)),
        proptest::option::of((any::<bool>(), 1i32..30)),
        proptest::option::of((0u8..3, 90i32..400)),
        proptest::collection::vec(1i32..5, 6),
    )
        .prop_map(|(mut rules, untagged, any_rule, archive, gaps)| {
            let by = |count: bool| {
                if count {
                    CountType::ImageCountMoreThan
                } else {
                    CountType::SinceImagePushed
                }
            };
            if let Some((count, n)) = untagged {
                rules.push(build(
                    TagStatus::Untagged,
                    None,
                    None,
                    None,
                    by(count),
                    n,
                    ActionType::Expire,
                ));
            }
            if let Some((count, n)) = any_rule {
                rules.push(build(
                    TagStatus::Any,
                    None,
                    None,
                    None,
                    by(count),
                    n,
                    ActionType::Expire,
                ));
            }
            if let Some((status, n)) = archive {
                let (status, list) = match status {
                    0 => (TagStatus::Any, None),
                    1 => (TagStatus::Untagged, None),
                    _ => (TagStatus::Tagged, Some(vec!["v".to_owned()])),
                };
                rules.push(build(
                    status,
                    list,
                    None,
                    Some(StorageClass::Archive),
                    CountType::SinceImageTransitioned,
                    n,
                    ActionType::Expire,
                ));
            }
            // Increasing priorities with gaps; the `any` rule stays the highest of its class.
            let mut priority = 0;
            for (i, r) in rules.iter_mut().enumerate() {
                priority += gaps[i % gaps.len()];
                r.rule_priority = priority;
            }
            rules
        })
        .prop_filter("valid policies only", |rules| {
            !rules.is_empty() && violations(rules).is_empty()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn validator_never_panics(rules in proptest::collection::vec(rule(), 0..8)) {
        let _ = violations(&rules);
    }

    #[test]
    fn evaluator_never_panics_even_on_invalid_rules(rules in proptest::collection::vec(rule(), 0..8), imgs in images()) {
        let _ = evaluate(&rules, &imgs, at(0));
    }

    #[test]
    fn each_image_is_acted_on_by_at_most_one_rule(rules in valid_rules(), imgs in images()) {
        let outcomes = evaluate(&rules, &imgs, at(0));
        let mut seen = BTreeMap::new();
        for o in &outcomes {
            for &i in o.expired.iter().chain(&o.transitioned) {
                prop_assert!(i < imgs.len());
                if let Some(first) = seen.insert(i, o.rule_priority) {
                    prop_assert!(false, "image {} acted on by rules {} and {}", i, first, o.rule_priority);
                }
            }
        }
    }

    #[test]
    fn a_count_rule_never_acts_on_the_newest_n_of_its_selection(rules in valid_rules(), imgs in images()) {
        let outcomes = evaluate(&rules, &imgs, at(0));
        for rule in rules.iter().filter(|r| r.selection.count_type == CountType::ImageCountMoreThan) {
            let outcome = outcomes.iter().find(|o| o.rule_priority == rule.rule_priority).unwrap();
            let n = usize::try_from(rule.selection.count_number).unwrap();
            let acted: BTreeSet<usize> = outcome.expired.iter().chain(&outcome.transitioned).copied().collect();
            // The selection ordered newest first (push time; no restores in these images).
            let mut newest_first = outcome.matched.clone();
            newest_first.sort_by_key(|&i| std::cmp::Reverse(imgs[i].pushed_at));
            // Ties in push time make "the N newest" ambiguous; compare by time, not index.
            if let Some(&nth) = newest_first.get(n.saturating_sub(1)) {
                for i in &acted {
                    prop_assert!(imgs[*i].pushed_at <= imgs[nth].pushed_at);
                }
            }
            let kept = outcome.matched.len() - acted.len();
            prop_assert!(kept >= n.min(outcome.matched.len()), "kept {} of {} with countNumber {}", kept, outcome.matched.len(), n);
        }
    }

    #[test]
    fn a_single_count_rule_leaves_at_least_n_images_of_its_selection(
        status in 0u8..3,
        list in tags(1..3),
        transition in any::<bool>(),
        n in 1i32..40,
        imgs in images(),
    ) {
        let (status, list) = match status {
            0 => (TagStatus::Tagged, Some(list)),
            1 => (TagStatus::Untagged, None),
            _ => (TagStatus::Any, None),
        };
        let action = if transition { ActionType::Transition } else { ActionType::Expire };
        let mut rule = build(status, list, None, None, CountType::ImageCountMoreThan, n, action);
        rule.rule_priority = 1;
        let rules = vec![rule];
        prop_assert!(violations(&rules).is_empty(), "{:?}", violations(&rules));
        let outcome = &evaluate(&rules, &imgs, at(0))[0];
        let n = usize::try_from(n).unwrap();
        let gone = outcome.expired.len() + outcome.transitioned.len();
        prop_assert!(outcome.matched.len() - gone >= n.min(outcome.matched.len()));
    }

    #[test]
    fn evaluation_does_not_depend_on_the_order_rules_are_written_in(rules in valid_rules(), imgs in images()) {
        let mut reversed = rules.clone();
        reversed.reverse();
        prop_assert_eq!(evaluate(&rules, &imgs, at(0)), evaluate(&reversed, &imgs, at(0)));
    }
}

// ----- replication merge ------------------------------------------------------------------------

fn destination() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            Just("us-west-2"),
            Just("eu-west-1"),
            Just("ap-south-1"),
            Just("us-east-1")
        ],
        0u32..12,
    )
        .prop_map(|(region, account)| {
            (
                region.to_owned(),
                format!("{:012}", 100_000_000_000u64 + u64::from(account)),
            )
        })
}

fn settings() -> impl Strategy<Value = ReplicationRuleSettings> {
    (
        proptest::collection::vec(destination(), 1..5),
        proptest::collection::vec(prop_oneof![Just("team-a/"), Just("team-b/"), Just("prod")], 0..3),
    )
        .prop_map(|(destinations, filters)| ReplicationRuleSettings {
            destinations,
            filters: filters.into_iter().map(str::to_owned).collect(),
        })
}

fn inputs() -> impl Strategy<Value = Vec<RuleInput>> {
    proptest::collection::vec((0i32..5, any::<bool>(), settings()), 0..16).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (priority, suspended, settings))| RuleInput {
                name: format!("rule-{i:02}"),
                priority,
                suspended: suspended && i % 4 == 0,
                settings,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn merge_is_deterministic_and_within_ecr_limits(
        rules in inputs(),
        foreign in proptest::collection::vec(settings(), 0..4),
        exclusive in any::<bool>(),
        shuffle in any::<u64>(),
    ) {
        let source = ("us-east-1", "123456789012");
        let first = merge(&rules, &foreign, &[], source, exclusive);
        // The same rules listed in another order merge to the same result.
        let mut shuffled = rules.clone();
        let len = shuffled.len().max(1);
        shuffled.rotate_left(usize::try_from(shuffle % len as u64).unwrap());
        shuffled.reverse();
        prop_assert_eq!(&first, &merge(&shuffled, &foreign, &[], source, exclusive));
        prop_assert!(first.document.len() <= MAX_RULES, "{} rules", first.document.len());
        let destinations: BTreeSet<_> = first.document.iter().flat_map(|r| r.destinations.iter().cloned()).collect();
        prop_assert!(destinations.len() <= MAX_DESTINATIONS, "{} destinations", destinations.len());
        // Every rule gets a verdict, and Applied positions point at the rule's own entry.
        for rule in &rules {
            let verdict = first.verdicts.get(&rule.name);
            prop_assert!(verdict.is_some(), "no verdict for {}", rule.name);
            if let Some(Verdict::Applied { position }) = verdict {
                prop_assert_eq!(first.document[*position].canonical(), rule.settings.canonical());
            }
        }
        // Merging again with what it wrote as ECR's state changes nothing (no write loop).
        let again = merge(&rules, &first.document, &first.ours, source, exclusive);
        prop_assert_eq!(&again.document, &first.document);
    }
}

// ---- spec.interval: the decoder and the CRD's admission rule accept the same set ----

/// Strings near the grammar: digits, every Go unit, signs, dots, exponents, spaces, non-ASCII.
fn interval_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Arbitrary text over the characters that matter.
        "[0-9hmsunµ.+eE -]{0,24}",
        // Well-formed pieces with too many digits, in any order.
        proptest::collection::vec(("[0-9]{1,22}", "(h|m|s|ms|us|ns|d)"), 0..4)
            .prop_map(|parts| parts.into_iter().map(|(n, u)| format!("{n}{u}")).collect()),
        // The grammar itself, with numbers around the range limits.
        (
            proptest::option::of(0u64..30),
            proptest::option::of(0u64..1500),
            proptest::option::of(0u64..100_000),
        )
            .prop_map(|(h, m, s)| {
                let mut out = String::new();
                for (n, unit) in [(h, 'h'), (m, 'm'), (s, 's')] {
                    if let Some(n) = n {
                        out.push_str(&format!("{n}{unit}"));
                    }
                }
                out
            }),
        // Arbitrary Unicode.
        any::<String>(),
    ]
}

/// What the CRD's CEL rule accepts, computed from the rule's own pattern and limits: the regex,
/// non-empty, and Go's duration value within [MIN, MAX].
fn admission_accepts(text: &str) -> bool {
    use ecr_operator::api::interval::{MAX, MAX_LENGTH, MIN, PATTERN};
    let re = regex::Regex::new(PATTERN).unwrap();
    let Some(caps) = re.captures(text) else {
        return false;
    };
    if text.is_empty() || text.chars().count() as u64 > MAX_LENGTH {
        return false;
    }
    let part = |i: usize| {
        caps.get(i)
            .map(|m| m.as_str()[..m.len() - 1].parse::<u64>().unwrap())
            .unwrap_or(0)
    };
    let seconds = part(1) * 3600 + part(2) * 60 + part(3);
    (MIN.as_secs()..=MAX.as_secs()).contains(&seconds)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn interval_decoder_never_panics_and_agrees_with_admission(text in interval_text()) {
        use ecr_operator::api::interval::Interval;
        let decoded = Interval::parse(&text);
        prop_assert_eq!(decoded.is_ok(), admission_accepts(&text), "{:?}: {:?}", text, decoded);
        if let Ok(i) = decoded {
            // Exactly what was written: no clamping, no sign dropped, no rounding.
            prop_assert_eq!(i.as_str(), text.as_str());
            let json = serde_json::to_string(&i).unwrap();
            prop_assert_eq!(serde_json::from_str::<Interval>(&json).unwrap(), i);
        }
        // Through serde as the API client decodes it: an error, never a panic.
        let _ = serde_json::from_value::<Interval>(serde_json::Value::String(text));
    }

}

#[test]
fn interval_rule_in_the_crds_is_built_from_the_decoders_grammar() {
    use ecr_operator::api::interval::{Interval, RULE_MESSAGE};
    let crds = serde_json::to_string(&ecr_operator::api::crds()).unwrap();
    let rule = serde_json::to_string(&Interval::cel_rule()).unwrap();
    let message = serde_json::to_string(RULE_MESSAGE).unwrap();
    // Every kind has an interval, and a LifecyclePolicy its protection.gracePeriod, each
    // carrying the same rule and message.
    let kinds = ecr_operator::api::crds().len();
    assert_eq!(crds.matches(rule.as_str()).count(), kinds + 1, "{rule}");
    assert_eq!(crds.matches(message.as_str()).count(), kinds + 1, "{message}");
}

// ---- region: the operator's check and the CRDs' admission rule accept the same set ----

/// Strings near the region format: letters, digits, dashes, upper case, spaces, non-ASCII.
fn region_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _-]{0,30}",
        // Well-formed-looking pieces of any length.
        (
            "[a-z]{0,4}",
            proptest::collection::vec("[a-z]{0,6}", 0..4),
            "[0-9a]{0,4}"
        )
            .prop_map(|(first, words, last)| {
                let mut out = first;
                for w in words {
                    out.push('-');
                    out.push_str(&w);
                }
                out.push('-');
                out.push_str(&last);
                out
            }),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn region_check_agrees_with_the_admission_rule(text in region_text()) {
        use ecr_operator::api::common::{REGION_MAX_LENGTH, REGION_PATTERN, is_region};
        let re = regex::Regex::new(REGION_PATTERN).unwrap();
        let length = text.chars().count() as u64;
        let admitted = re.is_match(&text) && (2..=REGION_MAX_LENGTH).contains(&length);
        prop_assert_eq!(is_region(&text), admitted, "{:?}", text);
    }
}

#[test]
fn region_rule_in_the_crds_is_built_from_the_shared_pattern() {
    use ecr_operator::api::common::{REGION_MESSAGE, region_cel_rule};
    let crds = serde_json::to_string(&ecr_operator::api::crds()).unwrap();
    let rule = serde_json::to_string(&region_cel_rule()).unwrap();
    let message = serde_json::to_string(REGION_MESSAGE).unwrap();
    // Registry.spec.region and ReplicationRule.spec.destinations[].region.
    assert_eq!(crds.matches(rule.as_str()).count(), 2, "{rule}");
    assert_eq!(crds.matches(message.as_str()).count(), 2, "{message}");
}

// ---- label selectors: the operator's decoder accepts exactly what the admission rules admit ----

/// One generated CEL rule of `api::selector::cel_rules`, read back from its text: the rule the
/// API server runs on each `matchExpressions[]` requirement. Only the three shapes the module
/// generates are understood; any other text fails the test (so a changed rule cannot be
/// silently mis-read here).
enum CelRule {
    /// `self.operator in [..]`
    OperatorIn(Vec<String>),
    /// `!(self.operator in [..]) || (has(self.values) && size(self.values) > 0)`
    ValuesRequired(Vec<String>),
    /// `!(self.operator in [..]) || !has(self.values) || size(self.values) == 0`
    ValuesForbidden(Vec<String>),
}

impl CelRule {
    fn read(rule: &str) -> CelRule {
        let list = |text: &str| -> Vec<String> {
            let inner = text
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or_else(|| panic!("not a CEL list: {text}"));
            inner
                .split(", ")
                .map(|q| {
                    q.strip_prefix('\'')
                        .and_then(|q| q.strip_suffix('\''))
                        .unwrap_or_else(|| panic!("not a quoted string: {q}"))
                        .to_owned()
                })
                .collect()
        };
        if let Some(rest) = rule.strip_prefix("self.operator in ") {
            return CelRule::OperatorIn(list(rest));
        }
        let guarded = |suffix: &str| {
            rule.strip_prefix("!(self.operator in ")
                .and_then(|r| r.strip_suffix(suffix))
                .map(list)
        };
        if let Some(l) = guarded(") || (has(self.values) && size(self.values) > 0)") {
            return CelRule::ValuesRequired(l);
        }
        if let Some(l) = guarded(") || !has(self.values) || size(self.values) == 0") {
            return CelRule::ValuesForbidden(l);
        }
        panic!("a selector rule of an unknown shape: {rule}");
    }

    /// CEL's verdict on one requirement (`values: None` is an absent field, `has()` false).
    fn admits(&self, operator: &str, values: Option<&Vec<String>>) -> bool {
        let within = |l: &Vec<String>| l.iter().any(|o| o == operator);
        match self {
            CelRule::OperatorIn(l) => within(l),
            CelRule::ValuesRequired(l) => !within(l) || values.is_some_and(|v| !v.is_empty()),
            CelRule::ValuesForbidden(l) => !within(l) || values.is_none_or(Vec::is_empty),
        }
    }
}

/// Operators: the four valid ones, near misses (case, spaces, plurals, other APIs' spellings),
/// the empty string, long strings and anything at all.
fn selector_operator() -> impl Strategy<Value = String> {
    use ecr_operator::api::selector::OPERATORS;
    let valid: Vec<String> = OPERATORS.iter().map(|o| (*o).to_owned()).collect();
    let near: Vec<String> = [
        "in",
        "IN",
        "notin",
        "NotIN",
        "Not In",
        "In ",
        " In",
        "Equals",
        "=",
        "!=",
        "==",
        "exists",
        "DoesNotExists",
        "DoesnotExist",
        "Exist",
        "Gt",
        "Lt",
        "",
        "In\u{0}",
        "Ιn",
    ]
    .iter()
    .map(|o| (*o).to_owned())
    .collect();
    prop_oneof![
        3 => proptest::sample::select(valid),
        2 => proptest::sample::select(near),
        1 => "[A-Za-z]{60,80}",
        1 => (proptest::sample::select(OPERATORS.to_vec()), 2usize..40).prop_map(|(o, n)| o.repeat(n)),
        1 => any::<String>(),
    ]
}

/// Values: absent, empty, one, many; ordinary, empty, odd characters and long.
fn selector_values() -> impl Strategy<Value = Option<Vec<String>>> {
    let value = prop_oneof![
        "[a-z0-9.-]{0,8}",
        Just(String::new()),
        any::<String>(),
        "[a-z]{100,300}",
    ];
    prop_oneof![
        Just(None),
        Just(Some(vec![])),
        proptest::collection::vec(value, 1..6).prop_map(Some),
    ]
}

fn selector_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z./-]{0,20}",
        Just(String::new()),
        any::<String>(),
        "[a-z]{200,400}"
    ]
}

fn label_selector() -> impl Strategy<Value = k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
    let requirement =
        (selector_key(), selector_operator(), selector_values()).prop_map(|(key, operator, values)| {
            LabelSelectorRequirement {
                key,
                operator,
                values,
            }
        });
    (
        proptest::option::of(proptest::collection::btree_map(
            selector_key(),
            selector_key(),
            0..3,
        )),
        proptest::option::of(proptest::collection::vec(requirement, 0..4)),
    )
        .prop_map(|(match_labels, match_expressions)| LabelSelector {
            match_labels,
            match_expressions,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// `api::selector::parse` never panics, and accepts a selector exactly when every
    /// `matchExpressions[]` requirement passes every admission rule (the CEL rules' own text,
    /// read back, plus the operator's `maxLength`); a refusal names the first requirement that
    /// fails and starts with the message of the first rule it breaks, in admission's order.
    #[test]
    fn selector_decoder_never_panics_and_agrees_with_the_admission_rules(
        selector in label_selector(),
        labels in proptest::collection::btree_map(selector_key(), selector_key(), 0..4),
    ) {
        use ecr_operator::api::selector::{MAX_OPERATOR_LENGTH, SelectorError, cel_rules, parse};
        use kube::core::SelectorExt;
        let rules: Vec<(CelRule, &str)> = cel_rules()
            .into_iter()
            .map(|(rule, message)| (CelRule::read(&rule), message))
            .collect();
        // Per requirement: the message of the first rule it breaks, if any.
        let broken: Vec<Option<&str>> = selector
            .match_expressions
            .iter()
            .flatten()
            .map(|r| {
                let too_long = r.operator.chars().count() as u64 > MAX_OPERATOR_LENGTH;
                rules
                    .iter()
                    .find(|(rule, _)| !rule.admits(&r.operator, r.values.as_ref()))
                    .map(|(_, message)| *message)
                    // Over maxLength is refused whatever CEL says (it is never a valid operator).
                    .or(too_long.then_some(rules[0].1))
            })
            .collect();
        let admitted = broken.iter().all(Option::is_none);
        let decoded = parse(&selector);
        prop_assert_eq!(decoded.is_ok(), admitted, "{:?}: {:?}", selector, decoded);
        match decoded {
            Ok(parsed) => {
                // Matching never panics either.
                let _ = parsed.matches(&labels);
            }
            Err(e) => {
                let first = broken.iter().position(Option::is_some).unwrap();
                let index = match &e {
                    SelectorError::Operator { index, .. }
                    | SelectorError::ValuesRequired { index, .. }
                    | SelectorError::ValuesForbidden { index, .. } => *index,
                };
                prop_assert_eq!(index, first);
                let text = e.to_string();
                prop_assert!(text.starts_with(broken[first].unwrap()), "{} / {:?}", text, broken[first]);
                // The message echoes bounded pieces of the input, however long it is.
                prop_assert!(text.chars().count() < 400, "{}", text.chars().count());
            }
        }
    }
}

#[test]
fn selector_rules_read_back_as_the_operator_lists() {
    use ecr_operator::api::selector::{KEY_OPERATORS, OPERATORS, SET_OPERATORS, cel_rules};
    let owned = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let rules: Vec<CelRule> = cel_rules().iter().map(|(r, _)| CelRule::read(r)).collect();
    assert!(matches!(&rules[0], CelRule::OperatorIn(l) if *l == owned(&OPERATORS)));
    assert!(matches!(&rules[1], CelRule::ValuesRequired(l) if *l == owned(&SET_OPERATORS)));
    assert!(matches!(&rules[2], CelRule::ValuesForbidden(l) if *l == owned(&KEY_OPERATORS)));
}

/// For random valid policies, images and sets of images in use: once the protection plan's tags
/// are on, the protected policy (what the operator puts) expires and archives none of the images
/// in use under ECR's evaluation rules (the operator's evaluator), and a release never deletes an
/// image (by removing its last tag) that the policy would not expire once the releases are done.
mod protection {
    use super::*;
    use ecr_operator::decide::protection::{Settings, cluster_token, mark, plan, protected};

    fn flags() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(0u8..4, 25)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn no_image_in_use_is_expired_or_archived_by_the_protected_policy(
            rules in valid_rules(), imgs in images(), used in flags()
        ) {
            // A policy the protection rule does not fit is never put: nothing to check.
            let Ok(policy) = protected(&rules) else { return Ok(()) };
            let token = cluster_token("this-cluster");
            let other = cluster_token("another-cluster");
            let mut imgs = imgs;
            // Some images carry another cluster's mark already.
            for (img, u) in imgs.iter_mut().zip(&used) {
                if *u == 3 {
                    img.tags.push(mark(&other, &img.digest));
                }
            }
            let in_use: BTreeSet<String> = imgs
                .iter()
                .zip(&used)
                .filter(|(_, u)| **u % 2 == 1)
                .map(|(i, _)| i.digest.clone())
                .collect();
            let s = Settings {
                token: &token,
                complete: true,
                grace: Duration::ZERO,
                rules: &policy,
                now: at(0),
            };
            let p = plan(&imgs, &in_use, &BTreeMap::new(), &s);
            let mut after = imgs.clone();
            for (d, t) in &p.add {
                after.iter_mut().find(|i| &i.digest == d).unwrap().tags.push(t.clone());
            }
            for o in evaluate(&policy, &after, at(0)) {
                for i in o.expired.iter().chain(&o.transitioned) {
                    // An archived image is not tagged while archived (no Pod can pull it, and
                    // ECR cannot re-put it without restoring it): the documented limit.
                    prop_assert!(
                        !in_use.contains(&after[*i].digest) || after[*i].archived,
                        "rule {} acts on image {} in use: {:?}", o.rule_priority, i, after[*i]
                    );
                }
            }
            // Nothing in use is released, and another cluster's mark never is.
            let ours = format!("ecr-operator-keep-{token}-");
            for (d, t) in &p.release {
                prop_assert!(!in_use.contains(d));
                prop_assert!(t.starts_with(&ours), "{} is not this cluster's mark", t);
            }
        }

        #[test]
        fn a_release_deletes_only_images_the_policy_expires_anyway(
            rules in valid_rules(), imgs in images(), used in flags()
        ) {
            let Ok(policy) = protected(&rules) else { return Ok(()) };
            let token = cluster_token("this-cluster");
            // Every image was in use and is marked; some no longer are, and some had only our mark.
            let mut imgs = imgs;
            for (img, u) in imgs.iter_mut().zip(&used) {
                if *u == 0 {
                    img.tags.clear();
                }
                img.tags.push(mark(&token, &img.digest));
            }
            let in_use: BTreeSet<String> = imgs
                .iter()
                .zip(&used)
                .filter(|(_, u)| **u == 1)
                .map(|(i, _)| i.digest.clone())
                .collect();
            let s = Settings {
                token: &token,
                complete: true,
                grace: Duration::ZERO,
                rules: &policy,
                now: at(0),
            };
            let p = plan(&imgs, &in_use, &BTreeMap::new(), &s);
            let mut after = imgs.clone();
            for img in &mut after {
                img.tags.retain(|t| !p.release.iter().any(|(d, r)| *d == img.digest && r == t));
            }
            let expired: BTreeSet<usize> = evaluate(&policy, &after, at(0))
                .into_iter()
                .flat_map(|o| o.expired)
                .collect();
            for (i, img) in after.iter().enumerate() {
                if img.tags.is_empty() && !imgs[i].tags.is_empty() {
                    prop_assert!(expired.contains(&i), "image {i} deleted by the release, not expired by the policy");
                }
            }
        }
    }
}
