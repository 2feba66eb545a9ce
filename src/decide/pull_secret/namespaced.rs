//! Pure decisions of the PullSecret controller: the Secret's name and the status. No I/O (see
//! [`crate::decide`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Resource, ResourceExt};

use super::{PullCredentials, counted, time};
use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::v1alpha1::{PullSecret, PullSecretStatus};
use crate::error::{Error, Result};
use crate::status::{Outcome, summarize};

/// The Secret's name: `spec.secretName`, else the object's name.
pub fn secret_name(ps: &PullSecret) -> String {
    ps.spec.secret_name.clone().unwrap_or_else(|| ps.name_any())
}

/// What one PullSecret reconcile achieved.
pub struct Served {
    pub credentials: PullCredentials,
    pub written: bool,
    /// Named ServiceAccounts that do not exist (`ServiceAccountNotFound`): reported in the status
    /// and by a Warning event when it starts, but not retried on a timer, since the
    /// ServiceAccount watch re-queues the PullSecret the moment one appears.
    pub missing: Option<Error>,
}

/// Pure: named ServiceAccounts that do not exist: reported (the driver's Warning), never an
/// error of the reconcile.
pub fn failure(s: &Served) -> Option<&Error> {
    s.missing.as_ref()
}

/// Pure: what does not exist is not retried on a timer (the ServiceAccount watch re-queues the
/// PullSecret when it appears), so a sync that served the Secret is a success.
pub fn into_result(s: Served) -> Result<Served> {
    Ok(s)
}

/// Pure: the next PullSecret status. Times come from the cached token, so the status is stable
/// between refreshes and a no-op reconcile writes nothing. Named ServiceAccounts that do not
/// exist make it wait (`Reconciling`, `ServiceAccountNotFound`, naming them): the Secret is
/// written, but Pods running as those accounts would not get it.
pub fn next_status(ps: &PullSecret, outcome: &Result<Served>, now: &Time) -> PullSecretStatus {
    let prev = ps.status.clone().unwrap_or_default();
    let generation = ps.meta().generation;
    let mut status = PullSecretStatus {
        observed_generation: generation,
        last_handled_reconcile_at: ps.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        secret_name: Some(secret_name(ps)),
        ..prev.clone()
    };
    let summary = match outcome {
        Ok(s) => {
            status.expires_at = time(s.credentials.expires_at);
            status.last_refresh_time = time(s.credentials.refreshed_at);
            status.registries = s.credentials.registries.clone();
            status.role_arn = s.credentials.role_arn.clone();
            let holds = format!(
                "Secret {} holds credentials for {}",
                secret_name(ps),
                counted(s.credentials.registries.len(), "registry", "registries")
            );
            match &s.missing {
                None => Outcome::InSync(holds),
                Some(e) => Outcome::Waiting {
                    reason: e.reason(),
                    message: format!("{e}; {holds}"),
                },
            }
        }
        Err(e) => Outcome::Failed(e),
    };
    status.conditions = summarize(&prev.conditions, generation, &summary, now);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, SystemTime};

    /// The status after each outcome, read by kstatus: named ServiceAccounts that do not exist
    /// wait (InProgress, their reason on Ready and Reconciling, the Secret's fields kept), and the
    /// driver's Warning names the same reason without turning the reconcile into an error.
    #[test]
    fn status_table_in_sync_and_missing_service_accounts() {
        let ps: PullSecret = serde_json::from_value(json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "PullSecret",
            "metadata": {"name": "ecr", "namespace": "team-a", "generation": 4},
            "spec": {"serviceAccounts": ["default", "runner"]},
        }))
        .unwrap();
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
        let served = |missing: &[&str]| Served {
            credentials: PullCredentials {
                logins: Default::default(),
                role_arn: None,
                registries: vec![crate::api::v1alpha1::PullSecretRegistry {
                    name: "default".into(),
                    host: Some("h".into()),
                }],
                expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(7_200),
                refreshed_at: SystemTime::UNIX_EPOCH,
                refresh_at: SystemTime::UNIX_EPOCH,
            },
            written: false,
            missing: crate::decide::pull_secret::service_accounts::not_found(
                "team-a",
                &missing.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            ),
        };
        type Conditions<'a> = Vec<(&'a str, &'a str)>;
        let cases: Vec<(&[&str], &str, Conditions)> = vec![
            (&[], "Current", vec![("Ready", "Succeeded")]),
            (
                &["runner"],
                "InProgress",
                vec![
                    ("Ready", "ServiceAccountNotFound"),
                    ("Reconciling", "ServiceAccountNotFound"),
                ],
            ),
        ];
        for (missing, verdict, conditions) in cases {
            let status = next_status(&ps, &Ok(served(missing)), &now);
            let got: Vec<(&str, &str)> = status
                .conditions
                .iter()
                .map(|c| (c.type_.as_str(), c.reason.as_str()))
                .collect();
            assert_eq!(got, conditions, "{missing:?}");
            let k = crate::status::kstatus(Some(4), status.observed_generation, &status.conditions, false);
            assert_eq!(k.as_str(), verdict, "{missing:?}");
            // The Secret is written either way, and the status says what it holds.
            assert!(status.expires_at.is_some() && status.registries.len() == 1);
        }
        let waiting = next_status(&ps, &Ok(served(&["runner"])), &now);
        assert_eq!(
            waiting.conditions[0].message,
            "ServiceAccount runner does not exist in namespace team-a: the Secret is added to its imagePullSecrets when it is created; Secret ecr holds credentials for 1 registry"
        );
        let s = served(&["runner"]);
        assert_eq!(failure(&s).map(Error::reason), Some("ServiceAccountNotFound"));
        assert!(into_result(s).is_ok(), "not retried on a timer");
        assert!(failure(&served(&[])).is_none());
    }
}
