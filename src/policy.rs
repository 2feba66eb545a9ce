//! Semantic comparison of IAM policy documents (repository and registry permissions policies).
//! ECR may return a policy reformatted; a string comparison would flap.

use serde_json::Value;

/// Fields whose value may be a single string or a list of strings with the same meaning, and
/// whose order does not matter.
const SET_FIELDS: &[&str] = &[
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "AWS",
    "Service",
    "Federated",
    "CanonicalUser",
];

/// The canonical form of a policy: keys sorted (serde_json maps compare by key), string-or-list
/// fields as sorted, de-duplicated lists, statements in a stable order.
pub fn canonical(policy: &Value) -> Value {
    canonical_at(None, policy)
}

fn canonical_at(key: Option<&str>, value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), canonical_at(Some(k), v)))
                .collect(),
        ),
        Value::String(s) if key.is_some_and(|k| SET_FIELDS.contains(&k)) => {
            Value::Array(vec![Value::String(s.clone())])
        }
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(|v| canonical_at(None, v)).collect();
            if key.is_some_and(|k| SET_FIELDS.contains(&k) || k == "Statement") {
                items.sort_by_key(|v| v.to_string());
                items.dedup();
            }
            Value::Array(items)
        }
        other => other.clone(),
    }
}

/// Whether two policy texts mean the same; an unparsable text never equals anything.
pub fn same_policy(observed_text: &str, desired: &Value) -> bool {
    serde_json::from_str::<Value>(observed_text)
        .is_ok_and(|observed| canonical(&observed) == canonical(desired))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equivalent_policies_compare_equal() {
        let desired = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Pull", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
             "Action": ["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]}
        ]});
        let cases = [
            // reformatted and reordered keys
            (
                r#"{"Statement":[{"Action":["ecr:GetDownloadUrlForLayer","ecr:BatchGetImage"],"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Sid":"Pull"}],"Version":"2012-10-17"}"#,
                true,
            ),
            // action order and a single principal as a list
            (
                r#"{"Version":"2012-10-17","Statement":[{"Sid":"Pull","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::444455556666:root"]},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}"#,
                true,
            ),
            // a different principal
            (
                r#"{"Version":"2012-10-17","Statement":[{"Sid":"Pull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}"#,
                false,
            ),
            // one action fewer
            (
                r#"{"Version":"2012-10-17","Statement":[{"Sid":"Pull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"ecr:BatchGetImage"}]}"#,
                false,
            ),
            ("not json", false),
        ];
        for (observed, same) in cases {
            assert_eq!(same_policy(observed, &desired), same, "{observed}");
        }
    }
}
