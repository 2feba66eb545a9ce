//! Label selectors: `Registry.spec.allowedNamespaces`, `LifecyclePolicy.spec.repositorySelector`
//! and `ClusterPullSecret.spec.namespaceSelector`.
//!
//! One set of rules, written down once in [`OPERATORS`], [`SET_OPERATORS`] and the messages below,
//! is both the CRDs' admission rules (CEL rules with messages, added to every selector field by
//! [`admission_rules`]) and the operator's decoder ([`parse`]), so a selector the API server admits
//! always decodes, and one stored before the rules existed is refused by the operator with the same
//! words:
//!
//! - `matchExpressions[].operator` is one of `In`, `NotIn`, `Exists`, `DoesNotExist`;
//! - `In` and `NotIn` list at least one value;
//! - `Exists` and `DoesNotExist` list none.
//!
//! `matchLabels` needs no rule: any string map is a valid equality selector.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::core::{Expression, Selector};
use schemars::Schema;
use serde_json::{Value, json};

/// Every operator a `matchExpressions[]` requirement may use, as Kubernetes spells them.
pub const OPERATORS: [&str; 4] = ["In", "NotIn", "Exists", "DoesNotExist"];
/// The operators that compare the label's value with `values` (at least one value).
pub const SET_OPERATORS: [&str; 2] = ["In", "NotIn"];
/// The operators that look only at the key (no values).
pub const KEY_OPERATORS: [&str; 2] = ["Exists", "DoesNotExist"];

/// The admission message for an unknown operator, shared with the decoder's error.
pub const OPERATOR_MESSAGE: &str =
    "matchExpressions[].operator must be one of In, NotIn, Exists, DoesNotExist";
/// The admission message for `In` / `NotIn` without values, shared with the decoder's error.
pub const VALUES_REQUIRED_MESSAGE: &str =
    "matchExpressions[].values must list at least one value when the operator is In or NotIn";
/// The admission message for `Exists` / `DoesNotExist` with values, shared with the decoder's error.
pub const VALUES_FORBIDDEN_MESSAGE: &str =
    "matchExpressions[].values must be empty when the operator is Exists or DoesNotExist";

/// The longest `operator` admission looks at: the longest operator is 12 characters; the slack
/// lets a longer mistake get the rule's message rather than a bare "too long", while bounding the
/// rules' CEL cost (string comparisons are priced by length).
pub const MAX_OPERATOR_LENGTH: u64 = 64;

/// How much of a rejected operator an error message repeats.
const ECHO: usize = 40;

/// Why a stored selector cannot be used. Each message starts with the admission rule's message
/// and then names the requirement and the value that break it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// An operator outside [`OPERATORS`].
    #[error("{OPERATOR_MESSAGE} (matchExpressions[{index}].operator is {operator:?})")]
    Operator {
        /// Position of the requirement in `matchExpressions`.
        index: usize,
        /// The rejected operator (bounded: only its first 40 characters are kept).
        operator: String,
    },
    /// `In` / `NotIn` without a value.
    #[error("{VALUES_REQUIRED_MESSAGE} (matchExpressions[{index}] is {key:?} {operator} with no values)")]
    ValuesRequired {
        /// Position of the requirement in `matchExpressions`.
        index: usize,
        /// The requirement's key (bounded like the operator).
        key: String,
        /// `In` or `NotIn`.
        operator: String,
    },
    /// `Exists` / `DoesNotExist` with values.
    #[error(
        "{VALUES_FORBIDDEN_MESSAGE} (matchExpressions[{index}] is {key:?} {operator} with {count} value(s))"
    )]
    ValuesForbidden {
        /// Position of the requirement in `matchExpressions`.
        index: usize,
        /// The requirement's key (bounded like the operator).
        key: String,
        /// `Exists` or `DoesNotExist`.
        operator: String,
        /// How many values it lists.
        count: usize,
    },
}

fn bounded(text: &str) -> String {
    text.chars().take(ECHO).collect()
}

/// Pure: the selector the operator matches labels with, or the first requirement that breaks a
/// rule. Never panics; accepts exactly what the admission rules accept.
pub fn parse(selector: &LabelSelector) -> Result<Selector, SelectorError> {
    let mut out: Selector = selector
        .match_labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let requirements = selector.match_expressions.as_deref().unwrap_or_default();
    let expressions = requirements
        .iter()
        .enumerate()
        .map(|(index, r)| expression(index, r))
        .collect::<Result<Vec<_>, _>>()?;
    out.extend(expressions);
    Ok(out)
}

/// Pure: one requirement as a selector expression.
fn expression(index: usize, r: &LabelSelectorRequirement) -> Result<Expression, SelectorError> {
    let values: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
    let count = r.values.as_ref().map_or(0, Vec::len);
    let operator = r.operator.as_str();
    if !OPERATORS.contains(&operator) {
        return Err(SelectorError::Operator {
            index,
            operator: bounded(operator),
        });
    }
    if SET_OPERATORS.contains(&operator) && count == 0 {
        return Err(SelectorError::ValuesRequired {
            index,
            key: bounded(&r.key),
            operator: operator.to_owned(),
        });
    }
    if KEY_OPERATORS.contains(&operator) && count > 0 {
        return Err(SelectorError::ValuesForbidden {
            index,
            key: bounded(&r.key),
            operator: operator.to_owned(),
            count,
        });
    }
    let key = r.key.clone();
    Ok(match operator {
        "In" => Expression::In(key, values),
        "NotIn" => Expression::NotIn(key, values),
        "Exists" => Expression::Exists(key),
        _ => Expression::DoesNotExist(key),
    })
}

/// A CEL list literal of `items`: `['In', 'NotIn']`.
fn cel_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The CEL rules (rule, message) every `matchExpressions[]` requirement carries.
pub fn cel_rules() -> [(String, &'static str); 3] {
    [
        (
            format!("self.operator in {}", cel_list(&OPERATORS)),
            OPERATOR_MESSAGE,
        ),
        (
            format!(
                "!(self.operator in {}) || (has(self.values) && size(self.values) > 0)",
                cel_list(&SET_OPERATORS)
            ),
            VALUES_REQUIRED_MESSAGE,
        ),
        (
            format!(
                "!(self.operator in {}) || !has(self.values) || size(self.values) == 0",
                cel_list(&KEY_OPERATORS)
            ),
            VALUES_FORBIDDEN_MESSAGE,
        ),
    ]
}

/// Schema transform for every label-selector field:
/// `#[schemars(transform = crate::api::selector::admission_rules)]`. Adds the rules of
/// [`cel_rules`] and the operator's length bound to the schema of `matchExpressions[]`, wherever
/// the field's schema holds it (directly, or inside `anyOf` / `oneOf` for an optional field).
pub fn admission_rules(schema: &mut Schema) {
    if let Some(object) = schema.as_object_mut() {
        add_rules(object);
    }
}

fn add_rules(object: &mut serde_json::Map<String, Value>) {
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(options)) = object.get_mut(key) {
            for option in options.iter_mut().filter_map(Value::as_object_mut) {
                add_rules(option);
            }
        }
    }
    let Some(item) = object
        .get_mut("properties")
        .and_then(|p| p.get_mut("matchExpressions"))
        .and_then(|m| m.get_mut("items"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if let Some(operator) = item
        .get_mut("properties")
        .and_then(|p| p.get_mut("operator"))
        .and_then(Value::as_object_mut)
    {
        operator.insert("maxLength".into(), json!(MAX_OPERATOR_LENGTH));
    }
    let rules: Vec<Value> = cel_rules()
        .into_iter()
        .map(|(rule, message)| json!({"rule": rule, "message": message}))
        .collect();
    item.insert("x-kubernetes-validations".into(), Value::Array(rules));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kube::core::SelectorExt;
    use std::collections::BTreeMap;

    fn selector(v: Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parse_table() {
        // (selector, labels, matches)
        let ok = [
            (json!({}), labels(&[]), true),
            (json!({"matchLabels": {"a": "1"}}), labels(&[("a", "1")]), true),
            (json!({"matchLabels": {"a": "1"}}), labels(&[("a", "2")]), false),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}),
                labels(&[("a", "2")]),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}),
                labels(&[("a", "1")]),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists"}]}),
                labels(&[("a", "")]),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": []}]}),
                labels(&[("a", "")]),
                false,
            ),
            (
                json!({"matchLabels": {"b": "x"}, "matchExpressions": [{"key": "a", "operator": "Exists"}]}),
                labels(&[("a", "1")]),
                false,
            ),
        ];
        for (sel, on, expected) in ok {
            let parsed = parse(&selector(sel.clone())).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(parsed.matches(&on), expected, "{sel} on {on:?}");
        }
    }

    #[test]
    fn refusals_name_the_requirement_the_value_and_the_rule() {
        let cases = [
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Equals", "values": ["1"]}]}),
                SelectorError::Operator {
                    index: 1,
                    operator: "Equals".into(),
                },
                OPERATOR_MESSAGE,
                "matchExpressions[1].operator is \"Equals\"",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "in", "values": ["1"]}]}),
                SelectorError::Operator {
                    index: 0,
                    operator: "in".into(),
                },
                OPERATOR_MESSAGE,
                "\"in\"",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
                SelectorError::ValuesRequired {
                    index: 0,
                    key: "a".into(),
                    operator: "In".into(),
                },
                VALUES_REQUIRED_MESSAGE,
                "matchExpressions[0] is \"a\" In with no values",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]}),
                SelectorError::ValuesRequired {
                    index: 0,
                    key: "a".into(),
                    operator: "NotIn".into(),
                },
                VALUES_REQUIRED_MESSAGE,
                "NotIn with no values",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x", "y"]}]}),
                SelectorError::ValuesForbidden {
                    index: 0,
                    key: "a".into(),
                    operator: "Exists".into(),
                    count: 2,
                },
                VALUES_FORBIDDEN_MESSAGE,
                "\"a\" Exists with 2 value(s)",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": [""]}]}),
                SelectorError::ValuesForbidden {
                    index: 0,
                    key: "a".into(),
                    operator: "DoesNotExist".into(),
                    count: 1,
                },
                VALUES_FORBIDDEN_MESSAGE,
                "DoesNotExist with 1 value(s)",
            ),
        ];
        for (sel, expected, rule, detail) in cases {
            let err = parse(&selector(sel.clone())).unwrap_err();
            assert_eq!(err, expected, "{sel}");
            let text = err.to_string();
            assert!(text.starts_with(rule), "{text}");
            assert!(text.contains(detail), "{text}");
        }
    }

    #[test]
    fn the_error_message_bounds_what_it_echoes() {
        let long = "E".repeat(10_000);
        let sel = selector(json!({"matchExpressions": [{"key": long, "operator": long}]}));
        let text = parse(&sel).unwrap_err().to_string();
        assert!(text.len() < 200, "{}", text.len());
    }

    #[test]
    fn the_rules_are_built_from_the_operator_lists() {
        let [(operator, _), (required, _), (forbidden, _)] = cel_rules();
        assert_eq!(
            operator,
            "self.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist']"
        );
        assert!(required.contains("['In', 'NotIn']"), "{required}");
        assert!(forbidden.contains("['Exists', 'DoesNotExist']"), "{forbidden}");
        for op in OPERATORS {
            assert!(OPERATOR_MESSAGE.contains(op), "{op}");
        }
        // Every operator is in exactly one of the two groups.
        for op in OPERATORS {
            assert_ne!(SET_OPERATORS.contains(&op), KEY_OPERATORS.contains(&op), "{op}");
        }
    }

    #[test]
    fn the_transform_finds_match_expressions_in_an_optional_field() {
        let item = json!({"type": "object", "properties": {"operator": {"type": "string"}}});
        let object =
            json!({"type": "object", "properties": {"matchExpressions": {"type": "array", "items": item}}});
        for wrapped in [
            object.clone(),
            json!({"anyOf": [object.clone(), {"type": "null"}]}),
        ] {
            let mut schema = Schema::try_from(wrapped).unwrap();
            admission_rules(&mut schema);
            let text = serde_json::to_string(&schema).unwrap();
            assert_eq!(text.matches("x-kubernetes-validations").count(), 1, "{text}");
            assert!(text.contains(OPERATOR_MESSAGE), "{text}");
            assert!(text.contains("\"maxLength\":64"), "{text}");
        }
    }
}
