//! Lifecycle policies (pure): the ECR document from typed rules, semantic comparison with what
//! ECR returns, validation of ECR's constraints, and a local evaluator for previews.

pub mod evaluate;
pub mod validate;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::v1alpha1::LifecycleRule;

/// ECR's minimum and maximum lifecycle policy text length.
pub const MIN_TEXT: usize = 100;
pub const MAX_TEXT: usize = 30_720;

/// The ECR policy document for `rules`, rules sorted by priority. ECR rejects texts shorter than
/// 100 characters, so a short document is pretty-printed (same meaning, more whitespace).
pub fn render(rules: &[LifecycleRule]) -> String {
    let mut sorted = rules.to_vec();
    sorted.sort_by_key(|r| r.rule_priority);
    let doc = json!({ "rules": sorted });
    let compact = doc.to_string();
    if compact.len() >= MIN_TEXT {
        return compact;
    }
    let pretty = serde_json::to_string_pretty(&doc).unwrap_or(compact);
    format!("{pretty:<width$}", width = MIN_TEXT)
}

/// SHA-256 (hex) of the canonical form of a policy text: how the operator recognises a policy it
/// put.
pub fn hash(text: &str) -> String {
    let canonical = serde_json::from_str::<Value>(text)
        .map(|v| canonical(&v).to_string())
        .unwrap_or_else(|_| text.to_owned());
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The canonical form: rules sorted by priority, tag lists sorted, `storageClass: standard`
/// (the default) dropped. ECR may reorder and reformat what it returns.
pub fn canonical(doc: &Value) -> Value {
    let mut rules: Vec<Value> = doc["rules"].as_array().cloned().unwrap_or_default();
    for rule in &mut rules {
        if let Some(sel) = rule.get_mut("selection").and_then(Value::as_object_mut) {
            if sel.get("storageClass").and_then(Value::as_str) == Some("standard") {
                sel.remove("storageClass");
            }
            for list in ["tagPrefixList", "tagPatternList"] {
                if let Some(Value::Array(items)) = sel.get_mut(list) {
                    items.sort_by_key(|v| v.to_string());
                }
            }
        }
    }
    rules.sort_by_key(|r| r["rulePriority"].as_i64().unwrap_or(i64::MAX));
    json!({ "rules": rules })
}

/// Whether an ECR policy text means the same as `rules`.
pub fn same_policy(ecr_text: &str, rules: &[LifecycleRule]) -> bool {
    let Ok(ecr) = serde_json::from_str::<Value>(ecr_text) else {
        return false;
    };
    let Ok(ours) = serde_json::from_str::<Value>(&render(rules)) else {
        return false;
    };
    canonical(&ecr) == canonical(&ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(v: Value) -> Vec<LifecycleRule> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn renders_ecr_grammar_sorted_and_at_least_100_characters() {
        let r = rules(json!([
            {"rulePriority": 2, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}, "action": {"type": "expire"}},
            {"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}
        ]));
        let text = render(&r);
        assert!(text.len() >= MIN_TEXT, "{}", text.len());
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["rules"][0]["rulePriority"], 1);
        assert_eq!(v["rules"][1]["selection"]["countUnit"], "days");
        assert_eq!(v["rules"][0]["action"], json!({"type": "expire"}));
        assert!(
            v["rules"][0].get("description").is_none(),
            "unset fields are omitted"
        );
    }

    #[test]
    fn comparison_ignores_order_whitespace_and_defaults() {
        let ours = rules(json!([
            {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["b", "a"], "countType": "imageCountMoreThan", "countNumber": 3}, "action": {"type": "expire"}},
            {"rulePriority": 2, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}, "action": {"type": "expire"}}
        ]));
        let ecr = r#"{ "rules": [
            {"rulePriority": 2, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14, "storageClass": "standard"}, "action": {"type": "expire"}},
            {"selection": {"tagPrefixList": ["a", "b"], "tagStatus": "tagged", "countNumber": 3, "countType": "imageCountMoreThan"}, "action": {"type": "expire"}, "rulePriority": 1}
        ]}"#;
        assert!(same_policy(ecr, &ours));
        assert_eq!(hash(ecr), hash(&render(&ours)));
        let changed = ecr.replace("\"countNumber\": 3", "\"countNumber\": 4");
        assert!(!same_policy(&changed, &ours));
        assert!(!same_policy("not json", &ours));
    }
}
