//! Argo CD repository Secrets (`format: argocd-repository` / `argocd-repo-creds`) against the
//! real control plane and moto, the operator as a process: the Secret field by field, read back
//! with the rules Argo CD applies to repository Secrets, a refresh that rewrites only the
//! password, and a field another writer added that survives it.
//!
//! moto returns the same password on every `GetAuthorizationToken`; the proxy's
//! `rotate_tokens` appends the call number to it, so a refresh changes the password as ECR's
//! does. Argo CD itself does not run here: "Argo CD runs in this namespace" is what the operator
//! looks for (a ServiceAccount labelled `app.kubernetes.io/part-of=argocd`, as its manifests
//! and its Helm chart label them).

use std::collections::BTreeMap;
use std::time::Duration;

use ecr_operator::api::v1alpha1::{ClusterPullSecret, PullSecret};
use ecr_operator_testenv::{FaultPlan, repo_root};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::harness::env::OperatorEnv;
use crate::harness::wait::wait_condition;
use crate::support::{apply, eventually, temp_namespace, yaml_documents};

/// moto's password for account 123456789012 (the proxy appends `-<call number>`).
const MOTO_PASSWORD: &str = "123456789012-auth-token";
const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// A repository as Argo CD reads it from a Secret (`util/db` in Argo CD: `secretToRepository`
/// and `secretToRepoCred`), with the checks its Helm OCI and OCI clients add.
#[derive(Debug, PartialEq)]
struct ArgoRepository {
    secret_type: String,
    url: String,
    type_: String,
    enable_oci: bool,
    username: String,
    password: String,
    project: Option<String>,
    name: Option<String>,
}

/// Go's `strconv.ParseBool`, which Argo CD applies to `enableOCI`.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        other => Err(format!("enableOCI {other:?} is not a bool")),
    }
}

/// Argo CD's rules: the `argocd.argoproj.io/secret-type` label says whether it is a repository
/// or a credential template; `url` is required; `type` defaults to `git`; `enableOCI` is a Go
/// bool; a Helm repository with `enableOCI` is a registry host without a scheme (Argo CD puts
/// `oci://` in front itself); an `oci` repository's `url` starts with `oci://`.
fn argocd_reads(secret: &Secret) -> Result<ArgoRepository, String> {
    let secret_type = secret
        .labels()
        .get("argocd.argoproj.io/secret-type")
        .cloned()
        .ok_or("no argocd.argoproj.io/secret-type label: Argo CD does not see it")?;
    if secret_type != "repository" && secret_type != "repo-creds" {
        return Err(format!("secret-type {secret_type} is not a repository"));
    }
    let data: BTreeMap<String, String> = secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect();
    let get = |k: &str| data.get(k).cloned().filter(|v| !v.is_empty());
    let url = get("url").ok_or("no url")?;
    let type_ = get("type").unwrap_or_else(|| "git".into());
    let enable_oci = get("enableOCI")
        .map(|v| parse_bool(&v))
        .transpose()?
        .unwrap_or(false);
    match type_.as_str() {
        "helm" if enable_oci && url.contains("://") => {
            return Err(format!("a Helm OCI url has no scheme: {url}"));
        }
        "oci" if !url.starts_with("oci://") => return Err(format!("an oci url starts with oci://: {url}")),
        "git" | "helm" | "oci" => {}
        other => return Err(format!("unknown repository type {other}")),
    }
    Ok(ArgoRepository {
        secret_type,
        url,
        type_,
        enable_oci,
        username: get("username").ok_or("no username")?,
        password: get("password").ok_or("no password")?,
        project: get("project"),
        name: get("name"),
    })
}

fn data(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

/// Argo CD "installed" in `ns`: one of its ServiceAccounts, labelled as its manifests label it.
async fn install_argocd(client: &kube::Client, ns: &str) {
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "argocd-repo-server",
        "labels": {"app.kubernetes.io/part-of": "argocd", "app.kubernetes.io/name": "argocd-repo-server"}}});
    apply(client, ns, &sa).await.unwrap();
}

#[tokio::test]
async fn argocd_repository_secret_is_what_argocd_reads_and_a_refresh_rewrites_only_the_password() {
    // Refresh at about half of a 20 s token.
    let env = OperatorEnv::start_with("e2e-argocd", &["--assume-token-lifetime", "20s"]).await;
    env.proxy.set_plan(FaultPlan {
        rotate_tokens: true,
        ..FaultPlan::default()
    });
    let ns = temp_namespace(&env.client, "argocd").await;
    install_argocd(&env.client, &ns).await;
    // The example as a user applies it, in Argo CD's namespace, on this test's Registry.
    let example =
        std::fs::read_to_string(repo_root().join("examples/argocd/pullsecret-helm-oci.yaml")).unwrap();
    let mut ps = yaml_documents(&example).remove(0);
    ps["metadata"] = json!({"name": "ecr-charts"});
    ps["spec"]["registries"] = json!(["e2e-argocd"]);
    ps["spec"]["argocd"]["project"] = json!("team-a");
    env.apply(&ns, &ps).await.unwrap();
    let api: Api<PullSecret> = Api::namespaced(env.client.clone(), &ns);
    let ready = wait_condition(
        &api,
        "ecr-charts",
        "Ready",
        "True",
        None,
        Duration::from_secs(90),
        || env.logs(),
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    let secret = secrets.get("ecr-charts").await.unwrap();

    // Field by field.
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    let labels: Vec<(&str, &str)> = secret
        .labels()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("app.kubernetes.io/managed-by", "ecr-operator"),
            ("argocd.argoproj.io/secret-type", "repository"),
            ("ecr-operator.dev/pullsecret", "ecr-charts"),
        ]
    );
    assert_eq!(secret.owner_references()[0].uid, ready.uid().unwrap());
    let first = data(&secret);
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "enableOCI",
            "name",
            "password",
            "project",
            "type",
            "url",
            "username"
        ]
    );
    assert_eq!(first["type"], "helm");
    assert_eq!(first["enableOCI"], "true");
    assert_eq!(first["url"], HOST, "the registry host, no oci://");
    assert_eq!(first["username"], "AWS");
    assert_eq!(first["name"], "ecr-charts");
    assert_eq!(first["project"], "team-a");
    assert!(
        first["password"].starts_with(&format!("{MOTO_PASSWORD}-")),
        "the password of the (rotated) token"
    );

    // Read back with Argo CD's rules.
    let repo = argocd_reads(&secret).unwrap();
    assert_eq!(
        repo,
        ArgoRepository {
            secret_type: "repository".into(),
            url: HOST.into(),
            type_: "helm".into(),
            enable_oci: true,
            username: "AWS".into(),
            password: first["password"].clone(),
            project: Some("team-a".into()),
            name: Some("ecr-charts".into()),
        }
    );
    // The parser is not a rubber stamp: it refuses what Argo CD would not read.
    let mut with_scheme = secret.clone();
    with_scheme.data.as_mut().unwrap().insert(
        "url".into(),
        k8s_openapi::ByteString(format!("oci://{HOST}").into_bytes()),
    );
    assert!(argocd_reads(&with_scheme).is_err());
    let mut unlabelled = secret.clone();
    unlabelled.labels_mut().remove("argocd.argoproj.io/secret-type");
    assert!(argocd_reads(&unlabelled).is_err());

    // Another writer (Argo CD's UI, a user) adds a field and a label under its own field manager.
    let theirs = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ecr-charts", "labels": {"team": "platform"}},
        "stringData": {"insecure": "false"}});
    secrets
        .patch(
            "ecr-charts",
            &PatchParams::apply("argocd-server"),
            &Patch::Apply(&theirs),
        )
        .await
        .unwrap();

    // The scheduled refresh: a new password, everything else as it was, their field kept.
    let refreshed = eventually(Duration::from_secs(60), "a refreshed password", || async {
        let s = secrets.get("ecr-charts").await.ok()?;
        (data(&s)["password"] != first["password"]).then_some(s)
    })
    .await;
    let after = data(&refreshed);
    assert!(after["password"].starts_with(&format!("{MOTO_PASSWORD}-")));
    for (key, value) in &first {
        if key != "password" {
            assert_eq!(&after[key], value, "{key} unchanged by the refresh");
        }
    }
    assert_eq!(
        after.get("insecure").map(String::as_str),
        Some("false"),
        "their field survives"
    );
    assert_eq!(after.len(), first.len() + 1, "{:?}", after.keys());
    assert_eq!(
        refreshed.labels().get("team").map(String::as_str),
        Some("platform")
    );
    // Their field is still theirs: the operator's field manager never took it.
    let managers: Vec<(String, String)> = refreshed
        .metadata
        .managed_fields
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                serde_json::to_string(&m.fields_v1.map(|f| f.0)).unwrap(),
            )
        })
        .collect();
    let owns = |manager: &str, field: &str| {
        managers
            .iter()
            .any(|(m, fields)| m == manager && fields.contains(field))
    };
    assert!(owns("argocd-server", "f:insecure"), "{managers:?}");
    assert!(!owns("ecr-operator/pull-secret", "f:insecure"), "{managers:?}");
    assert!(owns("ecr-operator/pull-secret", "f:password"), "{managers:?}");
    // The reconcile writes the Secret, then its status: the refresh shows there right after.
    let before = ready.status.unwrap().last_refresh_time;
    eventually(
        Duration::from_secs(30),
        "the refresh recorded in status.lastRefreshTime",
        || async {
            let status = api.get("ecr-charts").await.ok()?.status?;
            (status.last_refresh_time > before).then_some(())
        },
    )
    .await;
    let status = api.get("ecr-charts").await.unwrap().status.unwrap();
    // No password, old or new, in the status, the operator's log or the namespace's events.
    let events = serde_json::to_string(
        &Api::<k8s_openapi::api::events::v1::Event>::namespaced(env.client.clone(), &ns)
            .list(&Default::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    assert!(events.contains("TokenRefreshed"), "events were published");
    let (status, log) = (serde_json::to_string(&status).unwrap(), env.logs());
    for place in [&status, &log, &events] {
        assert!(!place.contains(MOTO_PASSWORD), "a password leaked");
    }

    // A credential template for OCI (Argo CD 3.1+) from a ClusterPullSecret, in a namespace with
    // Argo CD and one without: written in both, and the one without is named.
    let bare = temp_namespace(&env.client, "argocd-none").await;
    let cps_name = format!("{ns}-creds");
    let cps = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ClusterPullSecret", "metadata": {"name": cps_name},
        "spec": {"registries": ["e2e-argocd"], "format": "argocd-repo-creds", "secretName": "ecr-creds",
            "namespaces": {"include": [ns, bare]}, "argocd": {"type": "oci", "path": "charts"}}});
    env.apply("", &cps).await.unwrap();
    let cluster: Api<ClusterPullSecret> = Api::all(env.client.clone());
    let waiting = wait_condition(
        &cluster,
        &cps_name,
        "Reconciling",
        "True",
        Some("ArgoCdNotFound"),
        Duration::from_secs(90),
        || env.logs(),
    )
    .await;
    let message = &waiting.status.unwrap().conditions[0].message;
    assert!(
        message.starts_with(&format!("Argo CD does not run in namespace {bare} ")),
        "{message}"
    );
    for namespace in [&ns, &bare] {
        let creds = Api::<Secret>::namespaced(env.client.clone(), namespace)
            .get("ecr-creds")
            .await
            .unwrap();
        let read = argocd_reads(&creds).unwrap();
        assert_eq!(read.secret_type, "repo-creds");
        assert_eq!(read.type_, "oci");
        assert_eq!(read.url, format!("oci://{HOST}/charts"));
        assert!(!read.enable_oci && read.name.is_none() && read.project.is_none());
        assert_eq!(data(&creds).len(), 4, "type, url, username, password");
    }
    // Argo CD installed there too: the ClusterPullSecret becomes Ready.
    install_argocd(&env.client, &bare).await;
    wait_condition(
        &cluster,
        &cps_name,
        "Ready",
        "True",
        None,
        Duration::from_secs(60),
        || env.logs(),
    )
    .await;
    Api::<ClusterPullSecret>::all(env.client.clone())
        .delete(&cps_name, &Default::default())
        .await
        .unwrap();
    env.delete_registry().await;
}
