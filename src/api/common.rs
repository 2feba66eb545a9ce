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
