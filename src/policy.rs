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

/// ECR's maximum length of a repository or registry permissions policy, in characters
/// (`SetRepositoryPolicy` and `PutRegistryPolicy`).
pub const MAX_TEXT: usize = 10_240;

/// Pure: why ECR would refuse `policy` for its length, or `None`. The length is that of the text
/// the operator sends (`policy` as compact JSON), which only the operator knows: admission sees a
/// YAML object whose serialised size it cannot measure.
pub fn length_violation(policy: &Value) -> Option<String> {
    let length = policy.to_string().chars().count();
    (length > MAX_TEXT)
        .then(|| format!("the policy is {length} characters as JSON; ECR allows at most {MAX_TEXT}"))
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

    /// A policy whose compact JSON is `length` characters: one statement whose `Sid` pads it.
    fn policy_of_length(length: usize, pad: char) -> Value {
        let empty = json!({"Version": "2012-10-17", "Statement": [{"Sid": "", "Effect": "Allow"}]});
        let base = empty.to_string().chars().count();
        json!({"Version": "2012-10-17", "Statement": [{"Sid": pad.to_string().repeat(length - base), "Effect": "Allow"}]})
    }

    #[test]
    fn length_is_ecrs_limit_in_characters_of_the_text_sent() {
        for (length, pad, refused) in [
            (MAX_TEXT - 1, 'a', false),
            (MAX_TEXT, 'a', false),
            (MAX_TEXT + 1, 'a', true),
            // Characters, not bytes: 10,240 two-byte characters are within the limit.
            (MAX_TEXT, 'é', false),
            (MAX_TEXT + 1, 'é', true),
        ] {
            let policy = policy_of_length(length, pad);
            assert_eq!(policy.to_string().chars().count(), length);
            let violation = length_violation(&policy);
            assert_eq!(violation.is_some(), refused, "{length} x {pad}");
            if let Some(v) = violation {
                assert_eq!(
                    v,
                    format!("the policy is {length} characters as JSON; ECR allows at most 10240")
                );
            }
        }
    }
}
