//! Identity fields end to end: against the real API server, with the operator running and moto,
//! every edit of a field that names what an object manages in ECR is refused at admission with
//! its message (HTTP 422), and ECR still holds exactly one of what the object made: no second
//! repository, no second replication rule, nothing in another region. docs/identities.md tables
//! every such field and the test that shows it.

use std::time::Duration;

use ecr_operator::api::v1alpha1::{ClusterPullSecret, PullSecret, Registry, ReplicationRule, Repository};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::{Value, json};

use crate::harness::env::OperatorEnv;
use crate::harness::wait::wait_condition;
use crate::support::{api_code, api_message, eventually, quiet, temp_namespace};

/// Applies `doc` and requires the API server to refuse it with 422 and `message`.
async fn refused(env: &OperatorEnv, ns: &str, doc: &Value, message: &str) {
    let err = env
        .apply(ns, doc)
        .await
        .map(|_| ())
        .expect_err(&format!("an identity edit was accepted: {doc}"));
    assert_eq!(api_code(&err), Some(422), "{err}");
    let text = api_message(&err);
    assert!(text.contains(message), "expected {message:?} in {text:?}");
}

/// The names of the ECR repositories of a region that start with `prefix`.
async fn repositories(env: &OperatorEnv, region: &str, prefix: &str) -> Vec<String> {
    let ecr = env.moto.ecr_client(region);
    let listed = ecr.describe_repositories().send().await.unwrap();
    let mut names: Vec<String> = listed
        .repositories()
        .iter()
        .filter_map(|r| r.repository_name())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// The first filter of each rule in the replication configuration of a region.
async fn replication_filters(env: &OperatorEnv, region: &str) -> Vec<String> {
    let ecr = env.moto.ecr_client(region);
    let r = ecr.describe_registry().send().await.unwrap();
    r.replication_configuration()
        .map(|c| {
            c.rules()
                .iter()
                .filter_map(|r| r.repository_filters().first().map(|f| f.filter().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Repository `spec.name`, `registryRef` and `encryption` (changed, added, removed), a
/// ReplicationRule's `registryRef`, a PullSecret's and a ClusterPullSecret's `secretName` and a
/// Registry's `region`: each edit is refused with its message, the objects keep their generation
/// and stay Ready, and ECR (and the cluster, for the Secrets) holds exactly what the objects made
/// before the edits: one of each, nothing in the other region, no second Secret.
#[tokio::test]
async fn identity_edits_are_refused_and_ecr_keeps_exactly_one_of_each() {
    let env = OperatorEnv::start("e2e-identity").await;
    env.wait_registry_ready().await;
    // A second Registry in another region of the same endpoint (moto keeps regions apart): the
    // place a refused move would have created a second repository or rule.
    let other = "e2e-identity-west";
    let west = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry", "metadata": {"name": other},
        "spec": {"region": "eu-west-1", "endpoint": env.proxy.endpoint}});
    env.apply("", &west).await.unwrap();
    let ns = temp_namespace(&env.client, "identity").await;
    let prefix = format!("{ns}/");

    // Repositories: one with encryption given, one without.
    let repository = |name: &str, spec: Value| {
        let mut spec = spec;
        spec["registryRef"] = json!({"name": env.registry});
        json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository", "metadata": {"name": name}, "spec": spec})
    };
    let app = repository(
        "app",
        json!({"name": format!("{ns}/app"), "encryption": {"type": "AES256"}}),
    );
    let plain = repository("plain", json!({"name": format!("{ns}/plain")}));
    for doc in [&app, &plain] {
        env.apply(&ns, doc).await.unwrap();
    }
    let api: Api<Repository> = Api::namespaced(env.client.clone(), &ns);
    for name in ["app", "plain"] {
        env.wait_condition(&ns, name, "Ready", "True", None).await;
    }
    let generation = api.get("app").await.unwrap().metadata.generation;

    let mut renamed = app.clone();
    renamed["spec"]["name"] = json!(format!("{ns}/renamed"));
    refused(&env, &ns, &renamed, "spec.name is immutable").await;
    let mut moved = app.clone();
    moved["spec"]["registryRef"] = json!({"name": other});
    refused(&env, &ns, &moved, "registryRef is immutable").await;
    let mut kms = app.clone();
    kms["spec"]["encryption"] = json!({"type": "KMS"});
    refused(&env, &ns, &kms, "encryption is immutable").await;
    let mut unencrypted = app.clone();
    unencrypted["spec"].as_object_mut().unwrap().remove("encryption");
    refused(&env, &ns, &unencrypted, "encryption is immutable").await;
    let mut encrypted = plain.clone();
    encrypted["spec"]["encryption"] = json!({"type": "AES256"});
    refused(&env, &ns, &encrypted, "encryption is immutable").await;
    // Unset spec.name means metadata.name; setting it to anything else is a rename too.
    let unnamed = repository("unnamed", json!({}));
    env.apply(&ns, &unnamed).await.unwrap();
    env.wait_condition(&ns, "unnamed", "Ready", "True", None).await;
    let mut named = unnamed.clone();
    named["spec"]["name"] = json!(format!("{ns}/unnamed"));
    refused(&env, &ns, &named, "spec.name is immutable").await;

    let app_now = api.get("app").await.unwrap();
    assert_eq!(
        app_now.metadata.generation, generation,
        "no refused edit was stored"
    );
    // Let the operator look again: still one repository each, all in the Registry's region.
    quiet(Duration::from_secs(3)).await;
    assert_eq!(
        repositories(&env, "us-east-1", &prefix).await,
        [format!("{ns}/app"), format!("{ns}/plain")],
        "exactly one ECR repository per Repository, none renamed"
    );
    assert_eq!(repositories(&env, "us-east-1", "unnamed").await, ["unnamed"]);
    assert!(
        repositories(&env, "us-east-1", &format!("{ns}/unnamed"))
            .await
            .is_empty()
    );
    assert!(
        repositories(&env, "eu-west-1", &prefix).await.is_empty(),
        "nothing in the other Registry's region"
    );
    for name in ["app", "plain", "unnamed"] {
        env.wait_condition(&ns, name, "Ready", "True", None).await;
    }

    // ReplicationRule: its registryRef.
    let rule_name = "e2e-identity-rule";
    let rule = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ReplicationRule", "metadata": {"name": rule_name},
        "spec": {"registryRef": {"name": env.registry},
                 "destinations": [{"region": "us-west-2", "registryId": "111122223333"}],
                 "repositoryFilters": [{"filter": "identity/", "filterType": "PREFIX_MATCH"}]}});
    env.apply("", &rule).await.unwrap();
    let rules: Api<ReplicationRule> = Api::all(env.client.clone());
    wait_condition(
        &rules,
        rule_name,
        "Ready",
        "True",
        None,
        Duration::from_secs(60),
        || env.logs(),
    )
    .await;
    let mut moved = rule.clone();
    moved["spec"]["registryRef"] = json!({"name": other});
    refused(
        &env,
        "",
        &moved,
        "registryRef is immutable: create another ReplicationRule",
    )
    .await;
    quiet(Duration::from_secs(3)).await;
    assert_eq!(replication_filters(&env, "us-east-1").await, ["identity/"]);
    assert!(replication_filters(&env, "eu-west-1").await.is_empty());

    // PullSecret and ClusterPullSecret: the Secret's name. The Secrets are counted over the whole
    // cluster, so both carry names no other test uses.
    let secrets: Api<Secret> = Api::all(env.client.clone());
    let labelled = |label: String| {
        let secrets = secrets.clone();
        async move {
            let mut names: Vec<String> = secrets
                .list(&ListParams::default().labels(&label))
                .await
                .unwrap()
                .items
                .iter()
                .map(|s| format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any()))
                .collect();
            names.sort();
            names
        }
    };
    let pull = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret", "metadata": {"name": "identity-pull"},
        "spec": {"registries": [env.registry]}});
    env.apply(&ns, &pull).await.unwrap();
    let pulls: Api<PullSecret> = Api::namespaced(env.client.clone(), &ns);
    wait_condition(
        &pulls,
        "identity-pull",
        "Ready",
        "True",
        None,
        Duration::from_secs(60),
        || env.logs(),
    )
    .await;
    let mut renamed = pull.clone();
    renamed["spec"]["secretName"] = json!("pull-renamed");
    refused(&env, &ns, &renamed, "secretName is immutable").await;
    let cps_name = "e2e-identity-cps";
    let cps = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ClusterPullSecret", "metadata": {"name": cps_name},
        "spec": {"registries": [env.registry], "namespaces": {"include": [ns]}, "secretName": "fleet"}});
    env.apply("", &cps).await.unwrap();
    let clusters: Api<ClusterPullSecret> = Api::all(env.client.clone());
    wait_condition(
        &clusters,
        cps_name,
        "Ready",
        "True",
        None,
        Duration::from_secs(60),
        || env.logs(),
    )
    .await;
    let mut renamed = cps.clone();
    renamed["spec"]["secretName"] = json!("fleet-renamed");
    refused(&env, "", &renamed, "secretName is immutable").await;
    let mut unset = cps.clone();
    unset["spec"].as_object_mut().unwrap().remove("secretName");
    refused(&env, "", &unset, "secretName is immutable").await;
    quiet(Duration::from_secs(2)).await;
    assert_eq!(
        labelled("ecr-operator.dev/pullsecret=identity-pull".into()).await,
        [format!("{ns}/identity-pull")]
    );
    assert_eq!(
        labelled(format!("ecr-operator.dev/clusterpullsecret={cps_name}")).await,
        [format!("{ns}/fleet")]
    );

    // Registry: its region.
    let mut moved = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry", "metadata": {"name": env.registry},
        "spec": {"region": "eu-west-1", "endpoint": env.proxy.endpoint}});
    refused(&env, "", &moved, "region is immutable").await;
    moved["metadata"]["name"] = json!(other);
    moved["spec"]["region"] = json!("us-east-1");
    refused(&env, "", &moved, "region is immutable").await;
    let registry = Api::<Registry>::all(env.client.clone())
        .get(&env.registry)
        .await
        .unwrap();
    assert_eq!(registry.spec.region, "us-east-1");
    assert_eq!(
        registry.status.unwrap().registry_host.as_deref(),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com")
    );

    // Clean up what is cluster-scoped (the shared cluster keeps it otherwise).
    clusters.delete(cps_name, &DeleteParams::default()).await.unwrap();
    rules.delete(rule_name, &DeleteParams::default()).await.unwrap();
    eventually(
        Duration::from_secs(60),
        "the rule's entry to leave ECR",
        || async {
            replication_filters(&env, "us-east-1")
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;
    let _ = Api::<Registry>::all(env.client.clone())
        .delete(other, &DeleteParams::default())
        .await;
    env.delete_registry().await;
}
