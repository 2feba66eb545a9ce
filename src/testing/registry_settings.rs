//! A Registry's account settings, pull-time update exclusions and signing configuration against
//! the mock API server and the in-memory backend.

use serde_json::json;

use super::{Harness, Routes, with_status};
use crate::api::v1alpha1::Registry;
use crate::backend::SigningRuleSettings;
use crate::controllers::registry::RegistryController;

const SCANNER: &str = "arn:aws:iam::123456789012:role/scanner";
const PROFILE: &str = "arn:aws:signer:eu-west-1:123456789012:/signing-profiles/prod";

fn registry(extra: serde_json::Value) -> Registry {
    let mut spec = json!({"region": "eu-west-1"});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "default", "uid": "uid-default", "generation": 3,
            "finalizers": [crate::api::FINALIZER]},
        "spec": spec,
    }))
    .unwrap()
}

#[tokio::test]
async fn settings_are_written_once_drift_is_reverted_and_unset_ones_are_left_alone() {
    let h = Harness::new(Routes::default(), &[]);
    h.backend
        .state
        .lock()
        .unwrap()
        .pull_time_exclusions
        .insert("arn:aws:iam::123456789012:role/old".into());
    let r = registry(json!({
        "accountSettings": {"blobMounting": "ENABLED"},
        "pullTimeUpdateExclusions": [SCANNER],
        "signing": {"rules": [{"signingProfileArn": PROFILE, "repositoryFilters": ["prod/*"]}]},
    }));
    h.reconcile::<RegistryController>(&r).await.unwrap();
    assert_eq!(
        h.backend.writes(),
        [
            "PutAccountSetting",
            "RegisterPullTimeUpdateExclusion",
            "DeregisterPullTimeUpdateExclusion",
            "PutSigningConfiguration"
        ]
    );
    {
        let s = h.backend.state.lock().unwrap();
        assert_eq!(
            s.account_settings.get("BLOB_MOUNTING").map(String::as_str),
            Some("ENABLED")
        );
        assert!(
            !s.account_settings.contains_key("REGISTRY_POLICY_SCOPE"),
            "unset: never written"
        );
        assert_eq!(s.pull_time_exclusions.iter().collect::<Vec<_>>(), [SCANNER]);
        assert_eq!(
            s.signing,
            Some(vec![SigningRuleSettings {
                signing_profile_arn: PROFILE.into(),
                filters: vec!["prod/*".into()]
            }])
        );
    }
    let status = Harness::status_writes(&h.take_requests())[0].clone();
    let settled = with_status(&r, &status);

    // In sync: reads only.
    let before = h.backend.writes().len();
    h.reconcile::<RegistryController>(&settled).await.unwrap();
    assert_eq!(h.backend.writes().len(), before, "{:?}", h.backend.calls());

    // Drift behind the operator's back: reverted, and only what drifted is written.
    h.backend
        .state
        .lock()
        .unwrap()
        .account_settings
        .insert("BLOB_MOUNTING".into(), "DISABLED".into());
    h.reconcile::<RegistryController>(&settled).await.unwrap();
    assert_eq!(h.backend.writes()[before..], ["PutAccountSetting"]);

    // A Registry that sets none of them reads and writes none of them.
    let h = Harness::new(Routes::default(), &[]);
    h.reconcile::<RegistryController>(&registry(json!({})))
        .await
        .unwrap();
    let calls = h.backend.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.contains("AccountSetting") || c.contains("PullTimeUpdate") || c.contains("Signing")),
        "{calls:?}"
    );
}
