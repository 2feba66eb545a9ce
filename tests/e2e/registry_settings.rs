//! A Registry's account settings, pull-time update exclusions and signing configuration against
//! the real control plane and moto with the registry-settings extension
//! (tests/moto/ecr_registry_settings.py): set, drift made behind the operator's back reverted,
//! unset leaves ECR alone.

use std::time::Duration;

use serde_json::json;

use crate::harness::env::OperatorEnv;
use crate::support::{eventually, quiet};

const SCANNER: &str = "arn:aws:iam::123456789012:role/e2e-scanner";
const PROFILE: &str = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/e2e";

async fn blob_mounting(env: &OperatorEnv) -> String {
    let out = env
        .ecr
        .get_account_setting()
        .name("BLOB_MOUNTING")
        .send()
        .await
        .unwrap();
    out.value().unwrap_or_default().to_owned()
}

async fn exclusions(env: &OperatorEnv) -> Vec<String> {
    let out = env.ecr.list_pull_time_update_exclusions().send().await.unwrap();
    out.pull_time_update_exclusions().to_vec()
}

async fn signing_profiles(env: &OperatorEnv) -> Vec<String> {
    match env.ecr.get_signing_configuration().send().await {
        Ok(out) => out
            .signing_configuration()
            .map(|c| {
                c.rules()
                    .iter()
                    .map(|r| r.signing_profile_arn().to_owned())
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => vec![],
    }
}

#[tokio::test]
async fn account_settings_exclusions_and_signing_are_owned_when_set_and_left_alone_when_unset() {
    let env = OperatorEnv::start("e2e-regset").await;
    env.wait_registry_ready().await;
    // Someone registered an exclusion before: the spec's list is authoritative.
    env.ecr
        .register_pull_time_update_exclusion()
        .principal_arn("arn:aws:iam::123456789012:role/e2e-old")
        .send()
        .await
        .unwrap();
    env.apply_registry(json!({
        "interval": "10s",
        "accountSettings": {"blobMounting": "ENABLED", "registryPolicyScope": "V2"},
        "pullTimeUpdateExclusions": [SCANNER],
        "signing": {"rules": [{"signingProfileArn": PROFILE, "repositoryFilters": ["e2e/*"]}]},
    }))
    .await;
    eventually(Duration::from_secs(60), "the settings in ECR", || async {
        (blob_mounting(&env).await == "ENABLED"
            && exclusions(&env).await == [SCANNER]
            && signing_profiles(&env).await == [PROFILE])
        .then_some(())
    })
    .await;
    env.wait_registry_ready().await;

    // Drift behind the operator's back, reverted within the interval.
    env.ecr
        .put_account_setting()
        .name("BLOB_MOUNTING")
        .value("DISABLED")
        .send()
        .await
        .unwrap();
    env.ecr
        .deregister_pull_time_update_exclusion()
        .principal_arn(SCANNER)
        .send()
        .await
        .unwrap();
    env.ecr.delete_signing_configuration().send().await.unwrap();
    eventually(Duration::from_secs(60), "the drift reverted", || async {
        (blob_mounting(&env).await == "ENABLED"
            && exclusions(&env).await == [SCANNER]
            && signing_profiles(&env).await == [PROFILE])
        .then_some(())
    })
    .await;

    // In sync: a re-check writes nothing.
    env.proxy.clear();
    quiet(Duration::from_secs(12)).await;
    assert!(
        env.proxy.forwarded("GetAccountSetting") >= 1,
        "the interval's re-check ran"
    );
    let writes = env.proxy.forwarded_writes();
    assert!(writes.is_empty(), "in sync, yet wrote {writes:?}");

    // Unset: ECR is left as it is, even when it changes.
    env.apply_registry(json!({"interval": "10s"})).await;
    env.wait_registry(|r| r.status.as_ref().and_then(|s| s.observed_generation) == r.metadata.generation)
        .await;
    env.ecr
        .put_account_setting()
        .name("BLOB_MOUNTING")
        .value("DISABLED")
        .send()
        .await
        .unwrap();
    env.proxy.clear();
    quiet(Duration::from_secs(12)).await;
    assert!(
        env.proxy.forwarded("DescribeRegistry") >= 1,
        "the Registry was re-checked"
    );
    for op in [
        "GetAccountSetting",
        "PutAccountSetting",
        "ListPullTimeUpdateExclusions",
        "GetSigningConfiguration",
    ] {
        assert_eq!(env.proxy.forwarded(op), 0, "{op} although unset");
    }
    assert_eq!(blob_mounting(&env).await, "DISABLED");
    assert_eq!(exclusions(&env).await, [SCANNER]);
    assert_eq!(signing_profiles(&env).await, [PROFILE]);
}
