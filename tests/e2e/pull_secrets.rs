//! PullSecret and ClusterPullSecret against the real control plane and moto.

use std::time::Duration;

use base64::Engine;
use ecr_operator::api::v1alpha1::{ClusterPullSecret, PullSecret};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};

use crate::harness::env::OperatorEnv;
use crate::harness::wait::{Conditioned, wait_condition};
use crate::support::{eventually, quiet, temp_namespace};

/// moto's token for account 123456789012: base64("AWS:123456789012-auth-token").
const MOTO_PASSWORD: &str = "123456789012-auth-token";

fn dockerconfig(secret: &Secret) -> Value {
    let data = secret.data.as_ref().unwrap().get(".dockerconfigjson").unwrap();
    serde_json::from_slice(&data.0).unwrap()
}

async fn wait_ready<K: Conditioned>(api: &Api<K>, name: &str, env: &OperatorEnv) -> K {
    let limit = Duration::from_secs(90);
    wait_condition(api, name, "Ready", "True", None, limit, || env.logs()).await
}

async fn service_account(client: &kube::Client, ns: &str, name: &str, pull: &[&str]) {
    let pulls: Vec<Value> = pull.iter().map(|n| json!({"name": n})).collect();
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": name}, "imagePullSecrets": pulls})).unwrap();
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    if api.get_opt(name).await.unwrap().is_some() {
        api.replace(name, &PostParams::default(), &{
            let mut cur = api.get(name).await.unwrap();
            cur.image_pull_secrets = sa.image_pull_secrets.clone();
            cur
        })
        .await
        .unwrap();
    } else {
        api.create(&PostParams::default(), &sa).await.unwrap();
    }
}

/// The reasons of the Warning events about the object `name` in `namespace` (events about a
/// cluster-scoped object are in `default`), oldest first.
async fn warnings(client: &kube::Client, namespace: &str, name: &str) -> Vec<String> {
    let mut events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    events.retain(|e| {
        e.type_.as_deref() == Some("Warning")
            && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
    });
    events.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
    events.into_iter().filter_map(|e| e.reason).collect()
}

async fn pull_secrets_of(client: &kube::Client, ns: &str, name: &str) -> Vec<String> {
    let sa = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap();
    sa.image_pull_secrets
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.name)
        .collect()
}

#[tokio::test]
async fn pull_secret_over_two_registries_patches_only_its_service_account_entries() {
    let env = OperatorEnv::start("e2e-ps-east").await;
    // A second Registry in another region (moto keeps regions apart, like ECR).
    let west = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry", "metadata": {"name": "e2e-ps-west"},
        "spec": {"region": "eu-west-1", "endpoint": env.proxy.endpoint}});
    env.apply("", &west).await.unwrap();
    let ns = temp_namespace(&env.client, "pullsecret").await;
    service_account(&env.client, &ns, "builder", &["theirs"]).await;

    let ps = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret", "metadata": {"name": "ecr-login"},
        "spec": {"registries": ["e2e-ps-east", "e2e-ps-west"], "serviceAccounts": ["builder", "runner"]}});
    env.apply(&ns, &ps).await.unwrap();
    let api: Api<PullSecret> = Api::namespaced(env.client.clone(), &ns);
    // `runner` does not exist yet: the Secret is written and `builder` gets it, but the
    // PullSecret is not Ready, names `runner`, and says so once in a Warning event.
    let waiting = wait_condition(
        &api,
        "ecr-login",
        "Reconciling",
        "True",
        Some("ServiceAccountNotFound"),
        Duration::from_secs(90),
        || env.logs(),
    )
    .await;
    let message = &waiting.status.unwrap().conditions[0].message;
    assert!(
        message.starts_with(&format!("ServiceAccount runner does not exist in namespace {ns}")),
        "{message}"
    );
    assert!(
        Api::<Secret>::namespaced(env.client.clone(), &ns)
            .get_opt("ecr-login")
            .await
            .unwrap()
            .is_some(),
        "the Secret is written anyway"
    );
    eventually(
        Duration::from_secs(30),
        "a Warning event ServiceAccountNotFound",
        || async {
            let reasons = warnings(&env.client, &ns, "ecr-login").await;
            reasons
                .iter()
                .any(|r| r == "ServiceAccountNotFound")
                .then_some(())
        },
    )
    .await;
    // A ServiceAccount created later gets the entry, and the PullSecret becomes Ready.
    service_account(&env.client, &ns, "runner", &[]).await;
    let ready = wait_ready(&api, "ecr-login", &env).await;
    let status = ready.status.unwrap();
    assert_eq!(status.secret_name.as_deref(), Some("ecr-login"));
    assert_eq!(status.registries.len(), 2);
    assert!(status.expires_at.is_some() && status.last_refresh_time.is_some());

    let secret = Api::<Secret>::namespaced(env.client.clone(), &ns)
        .get("ecr-login")
        .await
        .unwrap();
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
    assert_eq!(
        secret
            .labels()
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("ecr-operator")
    );
    assert_eq!(
        secret.owner_references()[0].uid,
        api.get("ecr-login").await.unwrap().uid().unwrap()
    );
    let config = dockerconfig(&secret);
    let auths = config["auths"].as_object().unwrap();
    let hosts: Vec<&String> = auths.keys().collect();
    assert_eq!(
        hosts,
        [
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        ]
    );
    for (_, entry) in auths {
        // Exactly what kubelet reads: username, password, and auth = base64(username:password).
        assert_eq!(entry.as_object().unwrap().len(), 3, "{entry}");
        assert_eq!(entry["username"], "AWS");
        assert_eq!(entry["password"], MOTO_PASSWORD);
        let auth = base64::engine::general_purpose::STANDARD
            .decode(entry["auth"].as_str().unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(auth).unwrap(), format!("AWS:{MOTO_PASSWORD}"));
    }
    assert_eq!(
        env.proxy.forwarded("GetAuthorizationToken"),
        2,
        "one token per region"
    );

    // Only our entry is added; theirs stays. The ServiceAccount created later has it too.
    eventually(
        Duration::from_secs(30),
        "the builder ServiceAccount to get our entry",
        || async {
            (pull_secrets_of(&env.client, &ns, "builder").await == ["theirs", "ecr-login"]).then_some(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "a new ServiceAccount to get our entry",
        || async { (pull_secrets_of(&env.client, &ns, "runner").await == ["ecr-login"]).then_some(()) },
    )
    .await;

    // A Secret of that name that is not ours is never overwritten.
    let theirs: Secret =
        serde_json::from_value(json!({"metadata": {"name": "taken"}, "stringData": {"k": "v"}})).unwrap();
    Api::<Secret>::namespaced(env.client.clone(), &ns)
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    let taken = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret", "metadata": {"name": "second"},
        "spec": {"registries": ["e2e-ps-east"], "secretName": "taken"}});
    env.apply(&ns, &taken).await.unwrap();
    eventually(Duration::from_secs(60), "SecretExists", || async {
        let p = api.get("second").await.ok()?;
        p.status?
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled" && c.reason == "SecretExists")
            .cloned()
    })
    .await;
    let still = Api::<Secret>::namespaced(env.client.clone(), &ns)
        .get("taken")
        .await
        .unwrap();
    assert_eq!(
        still.data.unwrap().get("k").map(|b| b.0.clone()),
        Some(b"v".to_vec())
    );

    // Deleting the PullSecret removes the Secret (garbage collection) and only our entries.
    api.delete("ecr-login", &DeleteParams::default()).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    eventually(
        Duration::from_secs(60),
        "the Secret to be garbage-collected",
        || async {
            secrets
                .get_opt("ecr-login")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert_eq!(pull_secrets_of(&env.client, &ns, "builder").await, ["theirs"]);
    assert!(pull_secrets_of(&env.client, &ns, "runner").await.is_empty());
    let _ = Api::<ecr_operator::api::v1alpha1::Registry>::all(env.client.clone())
        .delete("e2e-ps-west", &DeleteParams::default())
        .await;
    env.delete_registry().await;
}

#[tokio::test]
async fn cluster_pull_secret_fans_out_to_fifty_namespaces_with_one_token_call() {
    let env = OperatorEnv::start("e2e-cps").await;
    let label = "e2e-cps-pull";
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let names: Vec<String> = (0..50).map(|i| format!("cps-{i}")).collect();
    futures::stream::iter(names.clone())
        .for_each_concurrent(10, |n| {
            let namespaces = namespaces.clone();
            async move {
                let ns: Namespace =
                    serde_json::from_value(json!({"metadata": {"name": n, "labels": {label: "yes"}}}))
                        .unwrap();
                namespaces.create(&PostParams::default(), &ns).await.unwrap();
            }
        })
        .await;
    let cps = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ClusterPullSecret", "metadata": {"name": "e2e-teams"},
        "spec": {"namespaceSelector": {"matchLabels": {label: "yes"}}, "registries": ["e2e-cps"], "secretName": "ecr-pull"}});
    env.apply("", &cps).await.unwrap();
    let api: Api<ClusterPullSecret> = Api::all(env.client.clone());
    eventually(Duration::from_secs(120), "50 namespaces served", || async {
        let c = api.get("e2e-teams").await.ok()?;
        (c.status?.namespace_count == Some(50)).then_some(())
    })
    .await;
    let secrets: Api<Secret> = Api::all(env.client.clone());
    let ours = || async {
        secrets
            .list(&ListParams::default().labels("ecr-operator.dev/clusterpullsecret=e2e-teams"))
            .await
            .unwrap()
            .items
    };
    assert_eq!(ours().await.len(), 50);
    assert_eq!(
        env.proxy.forwarded("GetAuthorizationToken"),
        1,
        "one token call for 50 namespaces"
    );

    // A new labelled namespace gets the Secret within seconds; a relabelled one loses it.
    let extra: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "cps-late", "labels": {label: "yes"}}})).unwrap();
    namespaces.create(&PostParams::default(), &extra).await.unwrap();
    let start = std::time::Instant::now();
    let ns_secrets: Api<Secret> = Api::namespaced(env.client.clone(), "cps-late");
    eventually(Duration::from_secs(30), "the new namespace's Secret", || async {
        ns_secrets.get_opt("ecr-pull").await.ok().flatten()
    })
    .await;
    eprintln!("new namespace served after {:?}", start.elapsed());
    let unlabel = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cps-0", "labels": {label: "no"}}});
    env.apply("", &unlabel).await.unwrap();
    let gone: Api<Secret> = Api::namespaced(env.client.clone(), "cps-0");
    eventually(
        Duration::from_secs(30),
        "the relabelled namespace to lose the Secret",
        || async { gone.get_opt("ecr-pull").await.unwrap().is_none().then_some(()) },
    )
    .await;
    assert_eq!(
        env.proxy.forwarded("GetAuthorizationToken"),
        1,
        "still one token call"
    );

    // Deleting the ClusterPullSecret removes every Secret (garbage collection).
    api.delete("e2e-teams", &DeleteParams::default()).await.unwrap();
    eventually(
        Duration::from_secs(120),
        "every Secret to be garbage-collected",
        || async { ours().await.is_empty().then_some(()) },
    )
    .await;
    env.delete_registry().await;
}

/// A ClusterPullSecret tells the truth about what it names: an included namespace that does not
/// exist is reported (`NamespaceNotFound`, naming it, and a Warning event) until it is created;
/// the cluster's own namespaces get the Secret only when `include` names them, whatever the
/// selector matches; and deleting it garbage-collects its Secrets without the operator referring
/// to it as a namespaced object in its log.
#[tokio::test]
async fn cluster_pull_secret_names_missing_namespaces_and_serves_system_namespaces_only_by_name() {
    let env = OperatorEnv::start("e2e-cps-edges").await;
    let ns = temp_namespace(&env.client, "cps-edges").await;
    let late = format!("{ns}-late");
    let system = ["kube-system", "kube-public", "kube-node-lease"];
    let mut names: Vec<&str> = system.to_vec();
    names.extend([ns.as_str(), late.as_str()]);
    // A selector that matches the system namespaces too (as `{}` does).
    let selector = json!({"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": names}]});
    let cps = |include: Option<Vec<&str>>| {
        let mut spec = json!({"namespaceSelector": selector, "registries": ["e2e-cps-edges"], "secretName": "ecr-edges"});
        if let Some(include) = include {
            spec["namespaces"] = json!({"include": include});
        }
        json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ClusterPullSecret",
            "metadata": {"name": "e2e-cps-edges"}, "spec": spec})
    };
    let has_secret = |namespace: String| {
        let client = env.client.clone();
        async move {
            Api::<Secret>::namespaced(client, &namespace)
                .get_opt("ecr-edges")
                .await
                .unwrap()
                .is_some()
        }
    };
    env.apply("", &cps(None)).await.unwrap();
    let api: Api<ClusterPullSecret> = Api::all(env.client.clone());
    let ready = wait_ready(&api, "e2e-cps-edges", &env).await;
    assert_eq!(ready.status.unwrap().namespace_count, Some(1), "only {ns}");
    assert!(has_secret(ns.clone()).await);
    for system in system {
        assert!(!has_secret(system.to_owned()).await, "{system} is not served");
    }

    // `include` names kube-public (served, by name) and a namespace that does not exist yet.
    env.apply("", &cps(Some(vec![&ns, &late, "kube-public"])))
        .await
        .unwrap();
    let waiting = wait_condition(
        &api,
        "e2e-cps-edges",
        "Reconciling",
        "True",
        Some("NamespaceNotFound"),
        Duration::from_secs(90),
        || env.logs(),
    )
    .await;
    let status = waiting.status.unwrap();
    assert_eq!(status.namespace_count, Some(2), "{ns} and kube-public");
    let message = &status.conditions[0].message;
    assert!(
        message.starts_with(&format!("namespaces.include names {late}, which does not exist")),
        "{message}"
    );
    assert!(has_secret("kube-public".to_owned()).await);
    assert!(!has_secret("kube-system".to_owned()).await);
    eventually(
        Duration::from_secs(30),
        "a Warning event NamespaceNotFound",
        || async {
            let reasons = warnings(&env.client, "default", "e2e-cps-edges").await;
            reasons.iter().any(|r| r == "NamespaceNotFound").then_some(())
        },
    )
    .await;

    // The namespace is created: it gets the Secret and the ClusterPullSecret is Ready.
    let created: Namespace = serde_json::from_value(json!({"metadata": {"name": late}})).unwrap();
    Api::<Namespace>::all(env.client.clone())
        .create(&PostParams::default(), &created)
        .await
        .unwrap();
    let ready = wait_ready(&api, "e2e-cps-edges", &env).await;
    assert_eq!(ready.status.unwrap().namespace_count, Some(3));
    assert!(has_secret(late.clone()).await);

    // Deleting it garbage-collects every Secret, and the operator logs no controller error.
    api.delete("e2e-cps-edges", &DeleteParams::default())
        .await
        .unwrap();
    for namespace in [ns.clone(), late.clone(), "kube-public".to_owned()] {
        eventually(
            Duration::from_secs(60),
            "the Secrets to be garbage-collected",
            || async { (!has_secret(namespace.clone()).await).then_some(()) },
        )
        .await;
    }
    // kube's `owns` named the owner within each Secret's namespace
    // (`ClusterPullSecret.v1alpha1.ecr-operator.dev/e2e-cps-edges.<namespace>`), an object no
    // store holds, and every garbage-collected Secret was logged as a controller error.
    quiet(Duration::from_secs(2)).await;
    let logs = env.logs();
    let namespaced_reference = "ClusterPullSecret.v1alpha1.ecr-operator.dev/e2e-cps-edges.";
    let errors: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(namespaced_reference))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    env.delete_registry().await;
}

#[tokio::test]
async fn tokens_refresh_on_schedule_secrets_are_written_only_on_change_and_never_leak() {
    // A test-only flag shortens the token lifetime: refresh at about half of 20 s.
    let env = OperatorEnv::start_with(
        "e2e-refresh",
        &["--assume-token-lifetime", "20s", "--log-filter", "trace"],
    )
    .await;
    let ns = temp_namespace(&env.client, "refresh").await;
    // Unrelated Secrets are never cached: the operator watches Secrets only by our label.
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    futures::stream::iter(0..2000)
        .for_each_concurrent(50, |i| {
            let secrets = secrets.clone();
            async move {
                let s: Secret = serde_json::from_value(
                    json!({"metadata": {"name": format!("unrelated-{i}")}, "stringData": {"k": "v"}}),
                )
                .unwrap();
                secrets.create(&PostParams::default(), &s).await.unwrap();
            }
        })
        .await;
    let ps = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret", "metadata": {"name": "fresh"},
        "spec": {"registries": ["e2e-refresh"]}});
    env.apply(&ns, &ps).await.unwrap();
    let api: Api<PullSecret> = Api::namespaced(env.client.clone(), &ns);
    let first = wait_ready(&api, "fresh", &env).await.status.unwrap();
    let rv = secrets.get("fresh").await.unwrap().resource_version();

    // The second fetch comes at about half the (shortened) lifetime, without any change to the object.
    eventually(Duration::from_secs(40), "a scheduled token refresh", || async {
        (env.proxy.forwarded("GetAuthorizationToken") >= 2).then_some(())
    })
    .await;
    let refreshed = eventually(
        Duration::from_secs(20),
        "the status to show the refresh",
        || async {
            let s = api.get("fresh").await.ok()?.status?;
            (s.last_refresh_time != first.last_refresh_time).then_some(s)
        },
    )
    .await;
    assert!(refreshed.expires_at > first.expires_at);
    // moto returns the same token every time, so the content did not change: no write.
    assert_eq!(
        secrets.get("fresh").await.unwrap().resource_version(),
        rv,
        "unchanged content is not rewritten"
    );

    // A Secret edited behind the operator's back is restored.
    let broken = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "fresh"}, "data": {".dockerconfigjson": "e30="}});
    env.apply(&ns, &broken).await.unwrap();
    eventually(Duration::from_secs(40), "the Secret to be restored", || async {
        let s = secrets.get("fresh").await.ok()?;
        dockerconfig(&s)["auths"]
            .as_object()
            .is_some_and(|a| !a.is_empty())
            .then_some(())
    })
    .await;

    // No token in the trace log, the events, the status or the metrics.
    let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{MOTO_PASSWORD}"));
    let logs = env.logs();
    assert!(logs.contains("TRACE"), "the operator logged at trace level");
    assert!(
        !logs.contains(MOTO_PASSWORD) && !logs.contains(&token),
        "a token leaked into the logs"
    );
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(env.client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let events = serde_json::to_string(&events.items).unwrap();
    assert!(events.contains("TokenRefreshed"), "events were published");
    assert!(!events.contains(MOTO_PASSWORD) && !events.contains(&token));
    let status = serde_json::to_string(&api.get("fresh").await.unwrap().status).unwrap();
    assert!(!status.contains(MOTO_PASSWORD) && !status.contains(&token));
    let (code, metrics) = env.operator.as_ref().unwrap().http_get("/metrics").unwrap();
    assert!(
        code == 200 && metrics.contains("ecr_operator_pull_secret"),
        "{code}"
    );
    assert!(!metrics.contains(MOTO_PASSWORD) && !metrics.contains(&token));
    // Every Secret list or watch the operator made carried our label selector.
    let secret_requests: Vec<&str> = logs.lines().filter(|l| l.contains("/api/v1/secrets?")).collect();
    assert!(
        !secret_requests.is_empty(),
        "the trace log shows the operator's Secret requests"
    );
    assert!(
        secret_requests
            .iter()
            .all(|l| l.contains("labelSelector=app.kubernetes.io%2Fmanaged-by%3Decr-operator")),
        "{secret_requests:#?}"
    );
    env.delete_registry().await;
}
