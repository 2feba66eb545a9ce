//! Per-tenant identities (`PullSecret.spec.identity`) against the real API server, which mints
//! the ServiceAccount tokens, and moto's STS behind a counting proxy, the operator as a process:
//! each namespace's token is requested for its own ServiceAccount with audience
//! `sts.amazonaws.com` and exchanged with `AssumeRoleWithWebIdentity` for its role; ECR tokens
//! are shared per role (two namespaces with one role: one `GetAuthorizationToken`); what cannot
//! be assumed is `Stalled` with a reason; and no web-identity token or session credential
//! reaches the log, events, status or metrics.
//!
//! What the local endpoint does not do: moto's STS checks neither the token's signature nor the
//! role's trust policy (real STS checks both, which is what confines each namespace to the roles
//! that trust its ServiceAccount: docs/security.md). The proxy reads the token's claims, so the
//! test shows what the operator presents.

use std::time::Duration;

use ecr_operator::api::v1alpha1::{ClusterPullSecret, PullSecret, Registry};
use ecr_operator_testenv::{AwsIdentity, FaultProxy, Moto};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde_json::json;

use crate::harness::env::OperatorEnv;
use crate::harness::wait::wait_condition;
use crate::support::{apply, temp_namespace};

const ROLE_A: &str = "arn:aws:iam::123456789012:role/tenant-a";
const ROLE_C: &str = "arn:aws:iam::123456789012:role/tenant-c";

async fn service_account(client: &kube::Client, ns: &str, name: &str, role: Option<&str>) {
    let annotations = role.map_or(json!({}), |r| json!({"eks.amazonaws.com/role-arn": r}));
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "annotations": annotations}});
    apply(client, ns, &sa).await.unwrap();
}

fn pull_secret(name: &str, registry: &str, identity: Option<&str>) -> serde_json::Value {
    let mut spec = json!({"registries": [registry]});
    if let Some(sa) = identity {
        spec["identity"] = json!({"serviceAccountName": sa});
    }
    json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret", "metadata": {"name": name}, "spec": spec})
}

async fn wait(env: &OperatorEnv, ns: &str, name: &str, type_: &str, reason: Option<&str>) -> PullSecret {
    let api: Api<PullSecret> = Api::namespaced(env.client.clone(), ns);
    wait_condition(&api, name, type_, "True", reason, Duration::from_secs(90), || {
        env.logs()
    })
    .await
}

#[tokio::test]
async fn tenant_identities_assume_each_namespaces_role_and_share_ecr_tokens_per_role() {
    // STS behind its own counting proxy; the operator's own identity is the static test keys.
    let moto_for_sts = Moto::start().unwrap();
    let sts = FaultProxy::start(&moto_for_sts.endpoint).unwrap();
    let env = OperatorEnv::start_as("e2e-tenant", AwsIdentity::StaticKeys, &sts.endpoint).await;
    env.wait_registry_ready().await;

    // Three namespaces: a and b with one role, c with another.
    let mut namespaces = Vec::new();
    for role in [ROLE_A, ROLE_A, ROLE_C] {
        let ns = temp_namespace(&env.client, "tenant").await;
        service_account(&env.client, &ns, "puller", Some(role)).await;
        env.apply(&ns, &pull_secret("ecr", "e2e-tenant", Some("puller")))
            .await
            .unwrap();
        namespaces.push((ns, role));
    }
    for (ns, role) in &namespaces {
        let ready = wait(&env, ns, "ecr", "Ready", None).await;
        let status = ready.status.unwrap();
        assert_eq!(
            status.role_arn.as_deref(),
            Some(*role),
            "{ns}: the status names the role"
        );
        let secret = Api::<Secret>::namespaced(env.client.clone(), ns)
            .get("ecr")
            .await
            .unwrap();
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
    }
    // Two roles, two ECR tokens: namespaces a and b share one.
    assert_eq!(
        env.proxy.forwarded("GetAuthorizationToken"),
        2,
        "{:?}",
        env.proxy.calls()
    );
    // Each namespace exchanged a token of its own ServiceAccount, from the real API server, with
    // audience sts.amazonaws.com, for its role.
    let exchanged = sts.web_identities();
    assert_eq!(exchanged.len(), 3, "{exchanged:?}");
    for (ns, role) in &namespaces {
        let subject = format!("system:serviceaccount:{ns}:puller");
        let web = exchanged
            .iter()
            .find(|w| w.subject == subject)
            .unwrap_or_else(|| panic!("no exchange for {subject}: {exchanged:?}"));
        assert_eq!(web.audiences, ["sts.amazonaws.com"]);
        assert_eq!(web.role_arn, *role);
        assert_eq!(web.session_name, format!("ecr-operator@{ns}.puller"));
        assert!(!web.issuer.is_empty(), "a token the API server issued: {web:?}");
    }

    // A ServiceAccount of another namespace cannot be used: "other" exists only in the first
    // namespace, so a PullSecret elsewhere naming it is Stalled.
    service_account(&env.client, &namespaces[0].0, "other", Some(ROLE_A)).await;
    let elsewhere = temp_namespace(&env.client, "tenant-elsewhere").await;
    env.apply(&elsewhere, &pull_secret("ecr", "e2e-tenant", Some("other")))
        .await
        .unwrap();
    let stalled = wait(&env, &elsewhere, "ecr", "Stalled", Some("IdentityNotFound")).await;
    let message = &stalled.status.unwrap().conditions[0].message;
    assert!(
        message.starts_with(&format!(
            "ServiceAccount other named by spec.identity does not exist in namespace {elsewhere}"
        )),
        "{message}"
    );
    // One without the role annotation (and no roleArn) is Stalled too.
    service_account(&env.client, &elsewhere, "no-role", None).await;
    env.apply(&elsewhere, &pull_secret("no-role", "e2e-tenant", Some("no-role")))
        .await
        .unwrap();
    wait(&env, &elsewhere, "no-role", "Stalled", Some("InvalidIdentity")).await;

    // A Registry that requires tenant identity refuses a PullSecret without one, and serves one
    // with one (the same role and region: the token already held, no new call).
    let tenants_only = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "e2e-tenant-only"},
        "spec": {"region": "us-east-1", "endpoint": env.proxy.endpoint, "requireTenantIdentity": true}});
    env.apply("", &tenants_only).await.unwrap();
    let (first, _) = &namespaces[0];
    env.apply(first, &pull_secret("without", "e2e-tenant-only", None))
        .await
        .unwrap();
    let refused = wait(&env, first, "without", "Stalled", Some("TenantIdentityRequired")).await;
    assert!(
        refused.status.unwrap().conditions[0]
            .message
            .starts_with("Registry e2e-tenant-only requires tenant identity")
    );
    assert!(
        Api::<Secret>::namespaced(env.client.clone(), first)
            .get_opt("without")
            .await
            .unwrap()
            .is_none(),
        "no Secret minted with the operator's identity"
    );
    env.apply(first, &pull_secret("with", "e2e-tenant-only", Some("puller")))
        .await
        .unwrap();
    wait(&env, first, "with", "Ready", None).await;
    assert_eq!(env.proxy.forwarded("GetAuthorizationToken"), 2);

    // A ClusterPullSecret with the same identity in two of the namespaces: each namespace's
    // Secret as its own ServiceAccount; the sessions and tokens held serve them (no new call).
    let (a, c) = (&namespaces[0].0, &namespaces[2].0);
    let cps_name = format!("{a}-tenants");
    let cps = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ClusterPullSecret", "metadata": {"name": cps_name},
        "spec": {"registries": ["e2e-tenant"], "secretName": "ecr-cluster", "namespaces": {"include": [a, c]},
            "identity": {"serviceAccountName": "puller"}}});
    env.apply("", &cps).await.unwrap();
    let cluster: Api<ClusterPullSecret> = Api::all(env.client.clone());
    let ready = wait_condition(
        &cluster,
        &cps_name,
        "Ready",
        "True",
        None,
        Duration::from_secs(90),
        || env.logs(),
    )
    .await;
    let status = ready.status.unwrap();
    assert_eq!(status.role_arns, [ROLE_A, ROLE_C]);
    assert_eq!(status.namespace_count, Some(2));
    assert_eq!(env.proxy.forwarded("GetAuthorizationToken"), 2);
    assert_eq!(sts.web_identities().len(), 3, "the sessions held are used");
    cluster.delete(&cps_name, &Default::default()).await.unwrap();

    // A Registry served as the role of a ServiceAccount (auth.webIdentity): its identity is that
    // role, assumed with the ServiceAccount's token, not chained from the operator's own.
    let role_r = "arn:aws:iam::123456789012:role/registry-r";
    service_account(&env.client, a, "ecr-registry", Some(role_r)).await;
    let webid = format!("{a}-webid");
    let registry = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry", "metadata": {"name": webid},
        "spec": {"region": "us-east-1", "endpoint": env.proxy.endpoint,
            "auth": {"webIdentity": {"serviceAccount": {"name": "ecr-registry", "namespace": a}}}}});
    env.apply("", &registry).await.unwrap();
    let registries: Api<Registry> = Api::all(env.client.clone());
    let served = wait_condition(
        &registries,
        &webid,
        "Ready",
        "True",
        None,
        Duration::from_secs(90),
        || env.logs(),
    )
    .await;
    let identity = served.status.unwrap().identity.unwrap_or_default();
    assert!(
        identity.starts_with("arn:aws:sts::123456789012:assumed-role/registry-r/"),
        "status.identity is {identity}"
    );
    let subject = format!("system:serviceaccount:{a}:ecr-registry");
    let exchange = sts
        .web_identities()
        .into_iter()
        .find(|w| w.subject == subject)
        .unwrap_or_else(|| panic!("no exchange for {subject}"));
    assert_eq!(
        (exchange.role_arn.as_str(), exchange.audiences.as_slice()),
        (role_r, &["sts.amazonaws.com".to_owned()][..])
    );
    env.apply(a, &json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository", "metadata": {"name": "via-webid"},
        "spec": {"registryRef": {"name": webid}}}))
        .await
        .unwrap();
    let repositories: Api<ecr_operator::api::v1alpha1::Repository> = Api::namespaced(env.client.clone(), a);
    wait_condition(
        &repositories,
        "via-webid",
        "Ready",
        "True",
        None,
        Duration::from_secs(90),
        || env.logs(),
    )
    .await;
    // Its ServiceAccount's token was exchanged once: the session serves the Registry's users.
    assert_eq!(
        sts.web_identities()
            .iter()
            .filter(|w| w.subject == subject)
            .count(),
        1
    );

    // No web-identity token and no session credential in the log, the events, the statuses or
    // the metrics.
    let issued = sts.issued_secrets();
    assert!(
        issued.len() >= 3 * 4,
        "three tokens and three sessions' keys: {} values",
        issued.len()
    );
    let log = env.logs();
    let events = serde_json::to_string(
        &Api::<k8s_openapi::api::events::v1::Event>::all(env.client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    let statuses = serde_json::to_string(
        &Api::<PullSecret>::all(env.client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|p| p.status)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let (code, metrics) = env.operator.as_ref().unwrap().http_get("/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("AssumeRoleWithWebIdentity"),
        "the exchange is counted"
    );
    for secret in &issued {
        for (place, text) in [
            ("log", &log),
            ("events", &events),
            ("status", &statuses),
            ("metrics", &metrics),
        ] {
            assert!(!text.contains(secret.as_str()), "a credential is in the {place}");
        }
    }
    repositories
        .delete("via-webid", &Default::default())
        .await
        .unwrap();
    env.delete_registry().await;
}
