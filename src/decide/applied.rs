//! Pure: whether an object the operator keeps with server-side apply already holds what the
//! next apply would set, so that a reconcile in steady state reads instead of writing. No I/O
//! (see [`crate::decide`]).

use serde_json::Value;

/// Pure: whether `actual` (the object as read, `None` when absent) already holds everything
/// `desired` (the apply configuration) sets. Objects compare as subsets (the API server adds
/// defaults and other managers' fields), lists element by element with the same length, other
/// values exactly. The top-level fields named in `exact` must be equal as a whole: the
/// operator owns all of them, so a key it no longer sets (a fact that went) must be gone too.
pub fn in_place(desired: &Value, actual: Option<&Value>, exact: &[&str]) -> bool {
    let (Value::Object(want), Some(Value::Object(have))) = (desired, actual) else {
        return false;
    };
    want.iter().all(|(key, w)| match have.get(key) {
        Some(h) if exact.contains(&key.as_str()) => w == h,
        Some(h) => subset(w, h),
        None => false,
    })
}

fn subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => {
            w.iter().all(|(k, v)| h.get(k).is_some_and(|hv| subset(v, hv)))
        }
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| subset(a, b))
        }
        _ => want == have,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_object_holds_an_apply_when_every_field_it_sets_is_so() {
        let desired = json!({
            "metadata": {"name": "p", "labels": {"a": "1"}},
            "spec": {"rules": [{"op": "CREATE"}], "failurePolicy": "Fail"},
            "data": {"k1": "v1"},
        });
        let actual = json!({
            "metadata": {"name": "p", "labels": {"a": "1", "other": "x"}, "uid": "u"},
            "spec": {"rules": [{"op": "CREATE", "scope": "*"}], "failurePolicy": "Fail", "defaulted": true},
            "data": {"k1": "v1"},
        });
        let cases: [(&str, Value, Option<Value>, bool); 7] = [
            (
                "defaults and other fields added by the server",
                desired.clone(),
                Some(actual.clone()),
                true,
            ),
            ("absent", desired.clone(), None, false),
            (
                "a value differs",
                desired.clone(),
                Some(
                    json!({"metadata": actual["metadata"], "spec": {"rules": [{"op": "CREATE"}], "failurePolicy": "Ignore"}, "data": actual["data"]}),
                ),
                false,
            ),
            (
                "a list of another length",
                desired.clone(),
                Some(
                    json!({"metadata": actual["metadata"], "spec": {"rules": [{"op": "CREATE"}, {"op": "UPDATE"}], "failurePolicy": "Fail"}, "data": actual["data"]}),
                ),
                false,
            ),
            (
                "an exact field with a key the apply no longer sets",
                desired.clone(),
                Some(
                    json!({"metadata": actual["metadata"], "spec": actual["spec"], "data": {"k1": "v1", "gone": "v"}}),
                ),
                false,
            ),
            (
                "a field the apply sets is missing",
                desired.clone(),
                Some(json!({"metadata": actual["metadata"], "spec": actual["spec"]})),
                false,
            ),
            ("not an object", desired, Some(json!("x")), false),
        ];
        for (case, want, have, holds) in cases {
            assert_eq!(in_place(&want, have.as_ref(), &["data"]), holds, "{case}");
        }
    }
}
