//! Waiting for the operator: one waiter for any kind with `status.conditions`.

use std::fmt::Debug;
use std::time::Duration;

use ecr_operator::api::v1alpha1::{
    ClusterPullSecret, LifecyclePolicy, PublicRepository, PullSecret, PullThroughCacheRule, Registry,
    ReplicationRule, Repository, RepositoryCreationTemplate,
};
use ecr_operator::status::kstatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::env::tail;

/// A kind whose status carries `observedGeneration` and `conditions`.
pub trait Conditioned: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug {
    /// `(status.observedGeneration, status.conditions)`; `None` before the first status.
    fn status_conditions(&self) -> Option<(Option<i64>, &[Condition])>;
}

macro_rules! conditioned {
    ($($kind:ty),* $(,)?) => {$(
        impl Conditioned for $kind {
            fn status_conditions(&self) -> Option<(Option<i64>, &[Condition])> {
                self.status
                    .as_ref()
                    .map(|s| (s.observed_generation, s.conditions.as_slice()))
            }
        }
    )*};
}

conditioned!(
    Registry,
    Repository,
    LifecyclePolicy,
    PullSecret,
    ClusterPullSecret,
    ReplicationRule,
    PullThroughCacheRule,
    RepositoryCreationTemplate,
    PublicRepository
);

/// The condition of `type_`, if there is one.
pub fn condition<'a, K: Conditioned>(obj: &'a K, type_: &str) -> Option<&'a Condition> {
    obj.status_conditions()?.1.iter().find(|c| c.type_ == type_)
}

/// Whether a condition `type_` has `status` (and `reason`, when given).
pub fn has_condition<K: Conditioned>(obj: &K, type_: &str, status: &str, reason: Option<&str>) -> bool {
    obj.status_conditions().is_some_and(|(_, conditions)| {
        conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == status && reason.is_none_or(|r| c.reason == r))
    })
}

/// Whether the status is for the object's current generation.
pub fn is_observed<K: Conditioned>(obj: &K) -> bool {
    obj.status_conditions()
        .is_some_and(|(observed, _)| observed == obj.meta().generation)
}

/// kstatus's verdict: `Current`, `InProgress`, `Failed` or `Terminating`.
pub fn verdict<K: Conditioned>(obj: &K) -> ecr_operator::status::KStatus {
    let (observed, conditions) = obj.status_conditions().unwrap_or((None, &[]));
    kstatus(
        obj.meta().generation,
        observed,
        conditions,
        obj.meta().deletion_timestamp.is_some(),
    )
}

/// Polls `name` every 250 ms until its status is for its current generation and `check` holds;
/// returns it. Panics after `limit` with `what`, the last status seen and the end of `logs`.
pub async fn wait_for<K: Conditioned>(
    api: &Api<K>,
    name: &str,
    limit: Duration,
    what: &str,
    logs: impl Fn() -> String,
    check: impl Fn(&K) -> bool,
) -> K {
    let mut last: Option<K> = None;
    let poll = async {
        loop {
            if let Ok(Some(obj)) = api.get_opt(name).await {
                if is_observed(&obj) && check(&obj) {
                    return obj;
                }
                last = Some(obj);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    match tokio::time::timeout(limit, poll).await {
        Ok(obj) => obj,
        Err(_) => panic!(
            "timed out after {limit:?} waiting for {what}\nlast status: {:?}\noperator log:\n{}",
            last.as_ref().and_then(|o| o.status_conditions()),
            tail(&logs(), 40)
        ),
    }
}

/// Waits (at most `limit`) until condition `type_` of `name` has `status`, and `reason` when
/// given, for the object's current generation; returns the object.
pub async fn wait_condition<K: Conditioned>(
    api: &Api<K>,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
    limit: Duration,
    logs: impl Fn() -> String,
) -> K {
    let what = format!("{} {name}: {type_}={status} {reason:?}", K::kind(&()));
    wait_for(api, name, limit, &what, logs, |obj| {
        has_condition(obj, type_, status, reason)
    })
    .await
}

/// Waits (at most `limit`) until `api` lists exactly `n` objects and every one is observed at
/// its generation, Ready and Current (kstatus alone would pass an object without a status);
/// panics with the stragglers.
pub async fn wait_all_current<K: Conditioned>(
    api: &Api<K>,
    n: usize,
    limit: Duration,
    logs: impl Fn() -> String,
) {
    let mut pending: Vec<String> = Vec::new();
    let poll = async {
        loop {
            let list = api
                .list(&Default::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            pending = list
                .iter()
                .filter(|obj| {
                    !(is_observed(*obj)
                        && verdict(*obj) == "Current"
                        && has_condition(*obj, "Ready", "True", None))
                })
                .map(|obj| {
                    let reason = obj
                        .status_conditions()
                        .and_then(|(_, c)| c.first())
                        .map(|c| c.reason.clone());
                    format!("{}: {reason:?}", obj.name_any())
                })
                .collect();
            if list.len() == n && pending.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    if tokio::time::timeout(limit, poll).await.is_err() {
        panic!(
            "not converged after {limit:?}: {pending:?}\noperator log:\n{}",
            tail(&logs(), 40)
        );
    }
}
