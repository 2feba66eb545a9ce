//! The operator's default credential chain with EKS workload identities, against the real API
//! server (which mints the ServiceAccount tokens) and moto's STS behind a counting proxy.
//!
//! - IRSA: the operator process gets what the EKS Pod Identity webhook injects into the Pod
//!   (`AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE` holding a ServiceAccount token with audience
//!   `sts.amazonaws.com`), and the SDK's default chain exchanges the token with STS
//!   `AssumeRoleWithWebIdentity`.
//! - EKS Pod Identity: the process gets `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
//!   `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, served by `testenv::PodIdentityAgent`, a local
//!   stand-in for the agent (the EKS Auth API it calls on EKS does not exist locally; the
//!   stand-in asks moto's STS for the role's credentials instead).
//!
//! What the local endpoint does not do: moto's STS does not verify the web-identity token's
//! signature, issuer or audience (real STS checks them against the cluster's OIDC provider), so
//! these tests show that the operator presents the token and uses what STS returns, not that STS
//! would accept this cluster's tokens. The operator runs as a process here, not as a Pod: the
//! token file is written by the test, as the kubelet's projected volume would.

use std::time::Duration;

use ecr_operator::api::v1alpha1::Registry;
use ecr_operator_testenv::{AwsIdentity, FaultProxy, PodIdentityAgent};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::harness::env::OperatorEnv;
use crate::support::{apply, cluster, temp_namespace};

/// A ServiceAccount token with `audience`, as the kubelet projects it into a Pod.
async fn projected_token(client: &kube::Client, ns: &str, audience: &str) -> String {
    apply(
        client,
        ns,
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ecr-operator"}}),
    )
    .await
    .unwrap();
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![audience.to_owned()],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request("ecr-operator", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
}

/// Waits until the env's Registry is Ready and returns its `status.identity`.
async fn identity(env: &OperatorEnv) -> String {
    env.wait_registry_ready().await;
    let registry = env
        .wait_registry(|r: &Registry| r.status.as_ref().is_some_and(|s| s.identity.is_some()))
        .await;
    registry.status.unwrap().identity.unwrap()
}

/// Neither the token nor `secrets` appear in the operator's log, the Registry's status, the
/// events of its namespace-less objects or the metrics.
async fn nothing_leaks(env: &OperatorEnv, secrets: &[String]) {
    let log = env.logs();
    let status = serde_json::to_string(
        &Api::<Registry>::all(env.client.clone())
            .get(&env.registry)
            .await
            .unwrap()
            .status,
    )
    .unwrap();
    let events = serde_json::to_string(
        &Api::<k8s_openapi::api::events::v1::Event>::all(env.client.clone())
            .list(&Default::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    let (_, metrics) = env.operator.as_ref().unwrap().http_get("/metrics").unwrap();
    assert!(metrics.contains("ecr_operator_"), "the metrics were read");
    for secret in secrets {
        assert!(
            !metrics.contains(secret.as_str()),
            "a credential is in the metrics"
        );
        assert!(
            !log.contains(secret.as_str()),
            "a credential is in the operator's log"
        );
        assert!(
            !status.contains(secret.as_str()),
            "a credential is in the Registry's status"
        );
        assert!(!events.contains(secret.as_str()), "a credential is in an event");
    }
}

#[tokio::test]
async fn irsa_the_default_chain_exchanges_the_projected_token_for_the_role() {
    let client = cluster().client().await.unwrap();
    let ns = temp_namespace(&client, "irsa").await;
    let token = projected_token(&client, &ns, "sts.amazonaws.com").await;
    let dir = tempdir("irsa");
    let token_file = dir.join("token");
    std::fs::write(&token_file, &token).unwrap();
    let role = "arn:aws:iam::123456789012:role/ecr-operator-irsa";
    // STS behind its own counting proxy: the exchange is seen by operation, not by its body.
    let moto_for_sts = ecr_operator_testenv::Moto::start().unwrap();
    let sts = FaultProxy::start(&moto_for_sts.endpoint).unwrap();
    let env = OperatorEnv::start_as(
        "e2e-irsa",
        AwsIdentity::WebIdentity {
            role_arn: role.into(),
            token_file: token_file.clone(),
        },
        &sts.endpoint,
    )
    .await;

    let who = identity(&env).await;
    assert!(
        who.starts_with("arn:aws:sts::123456789012:assumed-role/ecr-operator-irsa/"),
        "status.identity is {who}"
    );
    assert!(
        sts.forwarded("AssumeRoleWithWebIdentity") >= 1,
        "{:?}",
        sts.calls()
    );
    // The ECR side works with the exchanged credentials too.
    env.apply_repository(&ns, "app", json!({})).await;
    env.wait_condition(&ns, "app", "Ready", "True", None).await;
    nothing_leaks(&env, &[token]).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn pod_identity_the_default_chain_uses_the_agents_credentials() {
    let client = cluster().client().await.unwrap();
    let ns = temp_namespace(&client, "podidentity").await;
    let token = projected_token(&client, &ns, "pods.eks.amazonaws.com").await;
    let dir = tempdir("podidentity");
    let token_file = dir.join("eks-pod-identity-token");
    std::fs::write(&token_file, &token).unwrap();
    let role = "arn:aws:iam::123456789012:role/ecr-operator-pod-identity";
    let moto_for_sts = ecr_operator_testenv::Moto::start().unwrap();
    let sts = FaultProxy::start(&moto_for_sts.endpoint).unwrap();
    let agent = PodIdentityAgent::start(&sts.endpoint, role, &token).unwrap();
    let env = OperatorEnv::start_as(
        "e2e-podidentity",
        AwsIdentity::ContainerCredentials {
            full_uri: agent.uri.clone(),
            token_file,
        },
        &sts.endpoint,
    )
    .await;

    let who = identity(&env).await;
    assert!(
        who.starts_with("arn:aws:sts::123456789012:assumed-role/ecr-operator-pod-identity/"),
        "status.identity is {who}"
    );
    assert!(agent.served() >= 1);
    assert_eq!(
        agent.refused(),
        0,
        "the operator presented the token file's content"
    );
    assert!(sts.forwarded("AssumeRole") >= 1, "{:?}", sts.calls());
    env.apply_repository(&ns, "app", json!({})).await;
    env.wait_condition(&ns, "app", "Ready", "True", None).await;
    let mut secrets = agent.issued_secrets();
    secrets.push(token);
    nothing_leaks(&env, &secrets).await;

    // The stand-in refuses another token, as the agent does.
    let refused_before = agent.refused();
    let status = http_status(&agent.uri, "not-the-token").await;
    assert_eq!(status, 401);
    assert_eq!(agent.refused(), refused_before + 1);
    let _ = std::fs::remove_dir_all(dir);
}

/// The HTTP status of a GET of `uri` with `authorization`.
async fn http_status(uri: &str, authorization: &str) -> u16 {
    let addr = uri
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "GET /v1/credentials HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n"
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    response.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn tempdir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ecr-operator-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
