//! Spec and status pieces shared by several kinds.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Reference to a cluster-scoped `Registry` by name.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct RegistryRef {
    /// Name of the `Registry` object. Defaults to `default`.
    #[serde(default = "default_registry_name")]
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

impl Default for RegistryRef {
    fn default() -> Self {
        Self {
            name: default_registry_name(),
        }
    }
}

/// The name of the Registry used when an object names none.
pub fn default_registry_name() -> String {
    "default".to_owned()
}

/// The format of an AWS region code, e.g. `eu-west-1` or `us-gov-west-1`: two lowercase letters,
/// then one or more lowercase words, then a number, separated by dashes. One rule for every region
/// field (`Registry.spec.region`, `ReplicationRule.spec.destinations[].region`), as an RE2 pattern
/// (what CEL's `matches` uses). It checks the format only: a well-formed region that does not
/// exist (`us-eest-1`) is refused by AWS, not at admission.
pub const REGION_PATTERN: &str = "^[a-z]{2}(-[a-z]+)+-[0-9]+$";
/// The longest region code admitted (ECR's limit on a replication destination's region).
pub const REGION_MAX_LENGTH: u64 = 25;
/// The admission message of every region field.
pub const REGION_MESSAGE: &str = "region must be an AWS region code: two lowercase letters, one or more lowercase words and a number, separated by dashes, e.g. eu-west-1 or us-gov-west-1";

/// Pure: whether `text` is a region code as admission accepts it ([`REGION_PATTERN`], at most
/// [`REGION_MAX_LENGTH`] characters). The operator uses it for values stored before the rule
/// existed; `tests/properties.rs` holds it equal to the pattern.
pub fn is_region(text: &str) -> bool {
    let lower = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    let parts: Vec<&str> = text.split('-').collect();
    let (Some((last, rest)), true) = (parts.split_last(), text.len() as u64 <= REGION_MAX_LENGTH) else {
        return false;
    };
    let Some((first, words)) = rest.split_first() else {
        return false;
    };
    first.len() == 2
        && lower(first)
        && !words.is_empty()
        && words.iter().all(|w| lower(w))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// The CEL rule every region field carries.
pub fn region_cel_rule() -> String {
    format!("self.matches('{REGION_PATTERN}')")
}

/// Schema transform for every region field: `#[schemars(transform = crate::api::common::region_rules)]`.
/// Adds the length bounds and the CEL rule built from [`REGION_PATTERN`], with [`REGION_MESSAGE`].
pub fn region_rules(schema: &mut Schema) {
    schema.insert("minLength".into(), serde_json::json!(2));
    schema.insert("maxLength".into(), serde_json::json!(REGION_MAX_LENGTH));
    let rule = serde_json::json!({"rule": region_cel_rule(), "message": REGION_MESSAGE});
    match schema.get_mut("x-kubernetes-validations") {
        Some(serde_json::Value::Array(rules)) => rules.push(rule),
        _ => {
            schema.insert("x-kubernetes-validations".into(), serde_json::json!([rule]));
        }
    }
}

/// An IAM policy document (repository or registry permissions policy) written as a YAML/JSON
/// object, for example `{Version: "2012-10-17", Statement: [...]}`. The operator compares it
/// with what ECR holds semantically (key order and whitespace do not matter), never as a string.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(transparent)]
pub struct PolicyDocument(pub serde_json::Map<String, serde_json::Value>);

impl JsonSchema for PolicyDocument {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "PolicyDocument".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "required": ["Statement"],
            "properties": {
                "Version": {
                    "type": "string",
                    "enum": ["2012-10-17", "2008-10-17"],
                    "description": "Policy language version: 2012-10-17 (current) or 2008-10-17."
                },
                "Id": {"type": "string", "maxLength": 128, "description": "Optional policy identifier."},
                "Statement": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 100,
                    "description": "The policy statements (Sid, Effect, Principal, Action, Resource, Condition).",
                    "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }
            },
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_table() {
        for ok in [
            "eu-west-12345678901234567",
            "eu-west-1",
            "us-east-1",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-5",
            "us-isob-east-1",
            "il-central-1",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "",
            "eu",
            "eu-1",
            "euwest1",
            "Europe",
            "EU-WEST-1",
            "eu-west-",
            "eu--west-1",
            "-eu-west-1",
            "eu-west-1-",
            "eu-west-1a",
            "e-west-1",
            "eur-west-1",
            "eu-west1",
            "eu-west-1 ",
            "ｅu-west-1",
            "eu-west-123456789012345678",
            "us-east-ü-1",
        ] {
            assert!(!is_region(bad), "{bad:?}");
        }
        // Format only: a well-formed typo passes (AWS refuses it).
        assert!(is_region("us-eest-1"));
    }
}
