//! ECR Public: the local endpoint's extension (tests/moto/ecr_public.py) through its own Python
//! tests and through the real aws-sdk-ecrpublic client; then PublicRepository and the
//! public.ecr.aws pull credentials against the real control plane and that endpoint, with the
//! operator as a process and the counting fault proxy in front of ECR Public
//! (`--ecr-public-endpoint`, set by every OperatorEnv): Ready with the public URI, catalog data
//! converging, drift reverted within the interval, silence in sync and after a restart; adoption,
//! OwnedElsewhere, deletion refused with images, forceDelete and Retain; one Secret with two
//! `auths` entries from one token call per kind, and one public token for 50 namespaces; and
//! convergence through throttling and server errors injected on ECR Public's calls.

use crate::harness::env::{OperatorEnv, tail};
use crate::harness::wait::wait_condition;
use crate::support::{eventually, quiet, temp_namespace};
use ecr_operator::api::v1alpha1::{ClusterPullSecret, PublicRepository, PullSecret};
use ecr_operator_testenv::{Moto, moto_python, repo_root};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn ecr_public_extension_refuses_what_ecr_public_refuses() {
    let python = moto_python().unwrap();
    let out = std::process::Command::new(python)
        .args(["-m", "unittest", "tests/moto/test_ecr_public.py"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Ran 3 tests"), "{stderr}");
}

#[tokio::test]
async fn ecr_public_answers_through_aws_sdk_ecrpublic() {
    let moto = Moto::start().unwrap();
    let public = moto.ecr_public_client();
    let created = public
        .create_repository()
        .repository_name("e2e/public-app")
        .send()
        .await
        .unwrap();
    let repo = created.repository().unwrap();
    let registries = public.describe_registries().send().await.unwrap();
    let alias = registries.registries()[0].aliases()[0].name();
    assert_eq!(
        repo.repository_uri(),
        Some(format!("public.ecr.aws/{alias}/e2e/public-app").as_str())
    );
    public
        .put_image()
        .repository_name("e2e/public-app")
        .image_manifest("{\"schemaVersion\":2}")
        .send()
        .await
        .unwrap();
    let refused = public
        .delete_repository()
        .repository_name("e2e/public-app")
        .send()
        .await
        .unwrap_err();
    assert!(
        refused
            .as_service_error()
            .is_some_and(|e| e.is_repository_not_empty_exception()),
        "{refused:?}"
    );
    let token = public.get_authorization_token().send().await.unwrap();
    assert!(
        token
            .authorization_data()
            .and_then(|d| d.authorization_token())
            .is_some()
    );
}

// ---- PublicRepository and public.ecr.aws pull credentials, operator as a process ----

const OWNER_TAG: &str = "ecr-operator.dev/owner";

fn public_doc(name: &str, registry: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["registryRef"] = json!({"name": registry});
    json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PublicRepository",
        "metadata": {"name": name}, "spec": spec})
}

async fn wait_public(
    env: &OperatorEnv,
    ns: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> PublicRepository {
    let api: Api<PublicRepository> = Api::namespaced(env.client.clone(), ns);
    wait_condition(&api, name, type_, status, reason, Duration::from_secs(90), || {
        env.logs()
    })
    .await
}

async fn catalog(env: &OperatorEnv, name: &str) -> Option<aws_sdk_ecrpublic::types::RepositoryCatalogData> {
    env.moto
        .ecr_public_client()
        .get_repository_catalog_data()
        .repository_name(name)
        .send()
        .await
        .ok()?
        .catalog_data()
        .cloned()
}

async fn exists(env: &OperatorEnv, name: &str) -> bool {
    env.moto
        .ecr_public_client()
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .is_ok()
}

async fn push(env: &OperatorEnv, name: &str) {
    env.moto
        .ecr_public_client()
        .put_image()
        .repository_name(name)
        .image_manifest(format!("{{\"schemaVersion\":2,\"n\":\"{name}\"}}"))
        .image_tag("v1")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_public_repository_is_ready_converges_reverts_drift_and_a_restart_writes_nothing() {
    let mut env = OperatorEnv::start("e2e-public").await;
    env.wait_registry_ready().await;
    let ns = temp_namespace(&env.client, "public").await;
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Ci", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:role/ci"}, "Action": ["ecr-public:PutImage", "ecr-public:UploadLayerPart"]}]});
    let spec = json!({"name": "e2e/web", "interval": "10s",
        "catalogData": {"description": "first", "aboutText": "# About", "architectures": ["ARM 64", "x86-64"], "operatingSystems": ["Linux"]},
        "tags": {"team": "oss"}, "policy": policy});
    env.apply(&ns, &public_doc("web", &env.registry, spec.clone()))
        .await
        .unwrap();
    let ready = wait_public(&env, &ns, "web", "Ready", "True", Some("Succeeded")).await;
    let status = ready.status.unwrap();
    let alias = status.registry_alias.clone().expect("the alias in status");
    assert_eq!(
        status.repository_uri.as_deref(),
        Some(format!("public.ecr.aws/{alias}/e2e/web").as_str())
    );
    assert_eq!(
        env.proxy.forwarded_of("CreateRepository", true),
        1,
        "through the proxy"
    );
    assert_eq!(env.proxy.forwarded_of("CreateRepository", false), 0);
    let c = catalog(&env, "e2e/web").await.unwrap();
    assert_eq!(c.description(), Some("first"));
    assert_eq!(c.architectures(), ["ARM 64", "x86-64"]);

    // A display name set in the console shows in status at the next re-check.
    env.moto
        .ecr_public_client()
        .put_registry_catalog_data()
        .display_name("Example Corp")
        .send()
        .await
        .unwrap();
    wait_public(&env, &ns, "web", "Ready", "True", None).await;
    eventually(Duration::from_secs(60), "the display name in status", || async {
        let api: Api<PublicRepository> = Api::namespaced(env.client.clone(), &ns);
        let p = api.get("web").await.ok()?;
        (p.status?.registry_display_name.as_deref() == Some("Example Corp")).then_some(())
    })
    .await;

    // Catalog data changed in the spec converges.
    let mut changed = spec.clone();
    changed["catalogData"]["description"] = json!("second");
    changed["catalogData"]["operatingSystems"] = json!(["Linux", "Windows"]);
    env.apply(&ns, &public_doc("web", &env.registry, changed))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "the new catalog data in ECR Public",
        || async {
            let c = catalog(&env, "e2e/web").await?;
            (c.description() == Some("second") && c.operating_systems().len() == 2).then_some(())
        },
    )
    .await;

    // Catalog data and policy changed behind the operator's back: reverted within the interval.
    let public = env.moto.ecr_public_client();
    public
        .put_repository_catalog_data()
        .repository_name("e2e/web")
        .catalog_data(
            aws_sdk_ecrpublic::types::RepositoryCatalogDataInput::builder()
                .description("by hand")
                .build(),
        )
        .send()
        .await
        .unwrap();
    public
        .set_repository_policy()
        .repository_name("e2e/web")
        .policy_text(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr-public:*"}]}"#)
        .send()
        .await
        .unwrap();
    eventually(Duration::from_secs(60), "the drift reverted", || async {
        let c = catalog(&env, "e2e/web").await?;
        let p = public
            .get_repository_policy()
            .repository_name("e2e/web")
            .send()
            .await
            .ok()?;
        let p: Value = serde_json::from_str(p.policy_text()?).ok()?;
        (c.description() == Some("second") && p["Statement"][0]["Sid"] == "Ci").then_some(())
    })
    .await;

    // In sync: a re-check within the interval and a restart write nothing.
    env.proxy.clear();
    quiet(Duration::from_secs(12)).await;
    assert!(
        env.proxy.forwarded_of("DescribeRepositories", true) >= 1,
        "the interval's re-check ran"
    );
    let writes = env.proxy.forwarded_writes();
    assert!(
        writes.is_empty(),
        "in sync, it wrote {writes:?}\n{}",
        tail(&env.logs(), 30)
    );
    env.restart_and_settle("DescribeRegistries", 1).await;
    let writes = env.proxy.forwarded_writes();
    assert!(
        writes.is_empty(),
        "a restart wrote {writes:?}\n{}",
        tail(&env.logs(), 30)
    );
}

#[tokio::test]
async fn public_repositories_adopt_refuse_others_guard_deletion_and_retain() {
    let env = OperatorEnv::start("e2e-public-own").await;
    env.wait_registry_ready().await;
    let ns = temp_namespace(&env.client, "public-own").await;
    let public = env.moto.ecr_public_client();
    let api: Api<PublicRepository> = Api::namespaced(env.client.clone(), &ns);

    // Adoption: an existing repository without an owner tag gets ours.
    public
        .create_repository()
        .repository_name("e2e/adopted")
        .send()
        .await
        .unwrap();
    env.apply(
        &ns,
        &public_doc(
            "adopted",
            &env.registry,
            json!({"name": "e2e/adopted", "deletionPolicy": "Delete"}),
        ),
    )
    .await
    .unwrap();
    let ready = wait_public(&env, &ns, "adopted", "Ready", "True", None).await;
    let arn = ready.status.unwrap().repository_arn.unwrap();
    let tags: BTreeMap<String, String> = public
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        tags.get(OWNER_TAG)
            .is_some_and(|o| o.ends_with(&format!("/{ns}/adopted"))),
        "{tags:?}"
    );

    // OwnedElsewhere: another owner's repository is refused and never written.
    public
        .create_repository()
        .repository_name("e2e/theirs")
        .tags(
            aws_sdk_ecrpublic::types::Tag::builder()
                .key(OWNER_TAG)
                .value("other-cluster/ns/x")
                .build(),
        )
        .send()
        .await
        .unwrap();
    env.proxy.clear();
    env.apply(
        &ns,
        &public_doc(
            "theirs",
            &env.registry,
            json!({"name": "e2e/theirs", "catalogData": {"description": "mine"}}),
        ),
    )
    .await
    .unwrap();
    wait_public(&env, &ns, "theirs", "Stalled", "True", Some("OwnedElsewhere")).await;
    let writes = env.proxy.forwarded_writes();
    assert!(
        writes.is_empty(),
        "wrote {writes:?} to another owner's repository"
    );

    // Deletion with images present: Stalled RepositoryNotEmpty, nothing deleted.
    push(&env, "e2e/adopted").await;
    api.delete("adopted", &DeleteParams::default()).await.unwrap();
    wait_public(
        &env,
        &ns,
        "adopted",
        "Stalled",
        "True",
        Some("RepositoryNotEmpty"),
    )
    .await;
    assert!(exists(&env, "e2e/adopted").await, "nothing deleted");
    assert_eq!(env.proxy.forwarded_of("DeleteRepository", true), 0);

    // forceDelete: the repository and its images go, and so does the object.
    env.apply(
        &ns,
        &public_doc(
            "adopted",
            &env.registry,
            json!({"name": "e2e/adopted", "deletionPolicy": "Delete", "forceDelete": true}),
        ),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(60), "the forced deletion", || async {
        (!exists(&env, "e2e/adopted").await && api.get_opt("adopted").await.ok()?.is_none()).then_some(())
    })
    .await;

    // Retain (the default): the object goes, the repository and its images stay.
    env.apply(
        &ns,
        &public_doc("kept", &env.registry, json!({"name": "e2e/kept"})),
    )
    .await
    .unwrap();
    wait_public(&env, &ns, "kept", "Ready", "True", None).await;
    push(&env, "e2e/kept").await;
    api.delete("kept", &DeleteParams::default()).await.unwrap();
    eventually(Duration::from_secs(60), "the retained object gone", || async {
        api.get_opt("kept").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(exists(&env, "e2e/kept").await, "retained");
    assert_eq!(
        env.proxy.forwarded_of("DeleteRepository", true),
        1,
        "only the forced one"
    );
}

fn auths(secret: &Secret) -> Vec<String> {
    let data = secret.data.as_ref().unwrap().get(".dockerconfigjson").unwrap();
    let json: Value = serde_json::from_slice(&data.0).unwrap();
    json["auths"].as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn pull_secrets_include_public_ecr_with_one_token_call_per_kind_and_identity() {
    let env = OperatorEnv::start("e2e-public-pull").await;
    env.wait_registry_ready().await;
    let ns = temp_namespace(&env.client, "public-pull").await;
    env.proxy.clear();
    let ps = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret", "metadata": {"name": "both"},
        "spec": {"registries": [env.registry], "ecrPublic": {"registry": env.registry}}});
    env.apply(&ns, &ps).await.unwrap();
    let api: Api<PullSecret> = Api::namespaced(env.client.clone(), &ns);
    wait_condition(
        &api,
        "both",
        "Ready",
        "True",
        None,
        Duration::from_secs(90),
        || env.logs(),
    )
    .await;
    let secret = Api::<Secret>::namespaced(env.client.clone(), &ns)
        .get("both")
        .await
        .unwrap();
    let mut hosts = auths(&secret);
    hosts.sort();
    assert_eq!(hosts.len(), 2, "{hosts:?}");
    assert!(hosts.contains(&"public.ecr.aws".to_owned()), "{hosts:?}");
    assert!(
        hosts.iter().any(|h| h.contains(".dkr.ecr.us-east-1.")),
        "{hosts:?}"
    );
    assert_eq!(env.proxy.forwarded_of("GetAuthorizationToken", true), 1);
    assert_eq!(env.proxy.forwarded_of("GetAuthorizationToken", false), 1);

    // A ClusterPullSecret over 50 namespaces: still no new public token (same identity, cached).
    let label = format!("public-fan-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let mut names = Vec::new();
    for i in 0..50 {
        let name = format!("{label}-{i}");
        let n: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"e2e-public-fan": label}}}))
                .unwrap();
        namespaces.create(&PostParams::default(), &n).await.unwrap();
        names.push(name);
    }
    let cps = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ClusterPullSecret", "metadata": {"name": format!("{label}-cps")},
        "spec": {"registries": [env.registry], "ecrPublic": {"registry": env.registry},
            "namespaceSelector": {"matchLabels": {"e2e-public-fan": label}}}});
    env.apply("", &cps).await.unwrap();
    let capi: Api<ClusterPullSecret> = Api::all(env.client.clone());
    let ready = wait_condition(
        &capi,
        &format!("{label}-cps"),
        "Ready",
        "True",
        None,
        Duration::from_secs(120),
        || env.logs(),
    )
    .await;
    assert_eq!(ready.status.unwrap().namespace_count, Some(50));
    for name in [&names[0], &names[49]] {
        let secret = Api::<Secret>::namespaced(env.client.clone(), name)
            .get(&format!("{label}-cps"))
            .await
            .unwrap();
        assert!(auths(&secret).contains(&"public.ecr.aws".to_owned()));
    }
    assert_eq!(
        env.proxy.forwarded_of("GetAuthorizationToken", true),
        1,
        "one public token for the PullSecret and 50 namespaces"
    );
}

#[tokio::test]
async fn a_public_repository_converges_through_injected_throttling_and_server_errors() {
    use ecr_operator_testenv::FaultPlan;
    let env = OperatorEnv::start("e2e-public-faults").await;
    env.wait_registry_ready().await;
    let ns = temp_namespace(&env.client, "public-faults").await;
    // Every call throttled until the operator has met a fault on ECR Public, then half of them
    // throttled or failed.
    env.proxy.set_plan(FaultPlan {
        throttle_percent: 100,
        ..FaultPlan::default()
    });
    let spec = json!({"name": "e2e/faulty", "catalogData": {"description": "despite faults", "architectures": ["x86-64"]},
        "tags": {"team": "oss"}});
    env.apply(&ns, &public_doc("faulty", &env.registry, spec))
        .await
        .unwrap();
    eventually(Duration::from_secs(60), "a throttled ECR Public call", || async {
        env.proxy
            .calls()
            .iter()
            .any(|c| c.ecr_public && c.injected.is_some())
            .then_some(())
    })
    .await;
    env.proxy.set_plan(FaultPlan {
        throttle_percent: 35,
        error_percent: 15,
        ..FaultPlan::default()
    });
    let api: Api<PublicRepository> = Api::namespaced(env.client.clone(), &ns);
    wait_condition(
        &api,
        "faulty",
        "Ready",
        "True",
        None,
        Duration::from_secs(180),
        || env.logs(),
    )
    .await;
    env.proxy.set_plan(FaultPlan::default());
    let c = catalog(&env, "e2e/faulty").await.unwrap();
    assert_eq!(c.description(), Some("despite faults"));
    assert_eq!(
        env.proxy.forwarded_of("CreateRepository", true),
        1,
        "created once"
    );
}
