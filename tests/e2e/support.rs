//! Helpers shared by the e2e tests.

use std::future::Future;
use std::time::{Duration, Instant};

use ecr_operator_testenv::{ControlPlane, TEST_FIELD_MANAGER, apply_document, shared_control_plane};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};

/// The control plane shared by every test of this process (CRDs installed).
pub fn cluster() -> &'static ControlPlane {
    match shared_control_plane() {
        Ok(cp) => cp,
        Err(e) => panic!("the test control plane did not start: {e}"),
    }
}

/// A fresh namespace named `<prefix>-<n>`; namespaces are not deleted so that a failed test
/// leaves its objects to inspect (the control plane itself is thrown away after the run).
pub async fn temp_namespace(client: &kube::Client, prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    name
}

/// Server-side applies one document as the test field manager; namespaced objects go to `namespace`.
pub async fn apply(
    client: &kube::Client,
    namespace: &str,
    doc: &Value,
) -> Result<DynamicObject, kube::Error> {
    apply_document(client, namespace, doc, TEST_FIELD_MANAGER).await
}

/// The documents of a multi-document YAML file.
pub fn yaml_documents(text: &str) -> Vec<Value> {
    ecr_operator_testenv::yaml_documents(text).unwrap()
}

/// The message of an API error (what `kubectl apply` shows the user).
pub fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// The HTTP code of an API error.
pub fn api_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Polls `check` every 250 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Gives the operator time to (wrongly) act before a test checks that nothing happened: at least
/// `base`, which is what the check needs on an idle machine. Tests run side by side (several
/// operators, moto servers and the API server share a few cores), so the operator may take
/// longer to act than alone: the window is twice `base`. A quiet window may grow under load; it
/// never shrinks, so a check that follows it asserts no less than before.
pub async fn quiet(base: Duration) {
    tokio::time::sleep(base * 2).await;
}
