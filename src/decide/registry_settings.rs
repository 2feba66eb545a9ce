//! Pure: a Registry's account settings, pull-time update exclusions and signing configuration:
//! what to write given what ECR holds. Each is owned only when the spec sets it. No I/O (see
//! [`crate::decide`]).

use std::collections::BTreeSet;

use crate::api::v1alpha1::{AccountSettings, SigningConfiguration};
use crate::backend::SigningRuleSettings;

/// Pure: the account settings that are set, as (ECR name, value).
pub fn account_pairs(s: &AccountSettings) -> Vec<(&'static str, String)> {
    [
        ("BASIC_SCAN_TYPE_VERSION", &s.basic_scan_type_version),
        ("REGISTRY_POLICY_SCOPE", &s.registry_policy_scope),
        ("BLOB_MOUNTING", &s.blob_mounting),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
    .collect()
}

/// Pure: the account settings to put: those set whose value in ECR differs.
pub fn account_changes(
    desired: &[(&'static str, String)],
    observed: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    desired
        .iter()
        .filter(|(name, value)| !observed.iter().any(|(n, v)| n == name && v == value))
        .cloned()
        .collect()
}

/// Pure: the principals to register and to deregister so that ECR's exclusions equal `desired`.
pub fn exclusion_changes(desired: &[String], observed: &[String]) -> (Vec<String>, Vec<String>) {
    let (want, have): (BTreeSet<&String>, BTreeSet<&String>) =
        (desired.iter().collect(), observed.iter().collect());
    (
        want.difference(&have).map(|s| (*s).clone()).collect(),
        have.difference(&want).map(|s| (*s).clone()).collect(),
    )
}

/// Pure: the signing rules the spec asks for, filters sorted (ECR's order of filters means
/// nothing; the rules keep their order).
pub fn desired_signing(config: &SigningConfiguration) -> Vec<SigningRuleSettings> {
    config
        .rules
        .iter()
        .map(|r| {
            let mut filters = r.repository_filters.clone();
            filters.sort();
            filters.dedup();
            SigningRuleSettings {
                signing_profile_arn: r.signing_profile_arn.clone(),
                filters,
            }
        })
        .collect()
}

/// Pure: whether ECR's signing configuration is the desired one.
pub fn signing_in_sync(observed: Option<&[SigningRuleSettings]>, desired: &[SigningRuleSettings]) -> bool {
    observed.is_some_and(|o| o == desired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_settings_are_named_in_ecr_spelling_and_only_when_set() {
        let s = AccountSettings {
            basic_scan_type_version: None,
            registry_policy_scope: Some("V1".into()),
            blob_mounting: Some("ENABLED".into()),
        };
        assert_eq!(
            account_pairs(&s),
            [
                ("REGISTRY_POLICY_SCOPE", "V1".to_owned()),
                ("BLOB_MOUNTING", "ENABLED".to_owned())
            ]
        );
        assert!(account_pairs(&AccountSettings::default()).is_empty());
    }

    #[test]
    fn account_settings_write_only_what_is_set_and_differs() {
        let desired = vec![
            ("BLOB_MOUNTING", "ENABLED".to_owned()),
            ("REGISTRY_POLICY_SCOPE", "V2".to_owned()),
        ];
        let observed = vec![
            ("BLOB_MOUNTING", "DISABLED".to_owned()),
            ("REGISTRY_POLICY_SCOPE", "V2".to_owned()),
        ];
        assert_eq!(
            account_changes(&desired, &observed),
            [("BLOB_MOUNTING", "ENABLED".to_owned())]
        );
        assert!(account_changes(&desired, &desired).is_empty(), "in sync");
        assert!(account_changes(&[], &observed).is_empty(), "unset: left alone");
    }

    #[test]
    fn exclusions_become_exactly_the_list() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let cases = [
            (s(&["a", "b"]), s(&[]), (s(&["a", "b"]), s(&[]))),
            (s(&["a", "b"]), s(&["b", "c"]), (s(&["a"]), s(&["c"]))),
            (s(&["a"]), s(&["a"]), (s(&[]), s(&[]))),
            (s(&[]), s(&["a"]), (s(&[]), s(&["a"]))),
        ];
        for (desired, observed, expected) in cases {
            assert_eq!(
                exclusion_changes(&desired, &observed),
                expected,
                "{desired:?} {observed:?}"
            );
        }
    }

    #[test]
    fn signing_compares_filters_as_sets_and_rules_in_order() {
        let config: SigningConfiguration = serde_json::from_value(serde_json::json!({"rules": [
            {"signingProfileArn": "arn:aws:signer:us-east-1:123456789012:/signing-profiles/prod",
             "repositoryFilters": ["prod/*", "api*", "prod/*"]}]}))
        .unwrap();
        let want = desired_signing(&config);
        assert_eq!(want[0].filters, ["api*", "prod/*"]);
        assert!(signing_in_sync(Some(&want), &want));
        assert!(!signing_in_sync(None, &want), "none in ECR");
        let mut other = want.clone();
        other[0].filters.pop();
        assert!(!signing_in_sync(Some(&other), &want));
    }
}
