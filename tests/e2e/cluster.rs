//! The control plane behaves like a real cluster: RBAC is enforced, garbage collection and
//! namespace deletion run.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::support::{api_code, cluster, eventually, temp_namespace};

#[tokio::test]
async fn rbac_denies_a_service_account_until_it_is_bound() {
    let cp = cluster();
    let admin = cp.client().await.unwrap();
    let ns = temp_namespace(&admin, "rbac").await;
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "reader"}})).unwrap();
    Api::<ServiceAccount>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();

    let as_sa = cp.client_as_service_account(&ns, "reader").await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(as_sa, &ns);
    let denied = secrets
        .list(&ListParams::default())
        .await
        .expect_err("an unbound ServiceAccount listed Secrets");
    assert_eq!(api_code(&denied), Some(403), "{denied}");

    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "secret-reader"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]
    }))
    .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "reader-reads-secrets"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secret-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    eventually(
        Duration::from_secs(30),
        "the RoleBinding to take effect",
        || async { secrets.list(&ListParams::default()).await.ok() },
    )
    .await;
    // Still denied outside the Role's namespace.
    let elsewhere: Api<Secret> = Api::namespaced(
        cp.client_as_service_account(&ns, "reader").await.unwrap(),
        "default",
    );
    assert_eq!(
        api_code(&elsewhere.list(&ListParams::default()).await.unwrap_err()),
        Some(403)
    );
}

#[tokio::test]
async fn garbage_collector_removes_dependents_and_namespaces_finish_deleting() {
    let cp = cluster();
    let admin = cp.client().await.unwrap();
    let ns = temp_namespace(&admin, "gc").await;
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
    let owner: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap();
    let owner = cms.create(&PostParams::default(), &owner).await.unwrap();
    let dependent: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "dependent", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.unwrap()
        }]}
    }))
    .unwrap();
    cms.create(&PostParams::default(), &dependent).await.unwrap();

    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    eventually(
        Duration::from_secs(60),
        "the garbage collector to delete the dependent",
        || async {
            match cms.get_opt("dependent").await.unwrap() {
                None => Some(()),
                Some(_) => None,
            }
        },
    )
    .await;

    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces.delete(&ns, &DeleteParams::default()).await.unwrap();
    eventually(
        Duration::from_secs(120),
        "the namespace controller to finish deleting",
        || async {
            match namespaces.get_opt(&ns).await.unwrap() {
                None => Some(()),
                Some(_) => None,
            }
        },
    )
    .await;
}
