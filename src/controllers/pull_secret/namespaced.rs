//! The PullSecret controller: one Secret in the object's namespace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::credentials::{PullCredentials, credentials};
use super::secret::{apply_secret, desired_secret};
use super::service_accounts::{not_found, sync_service_accounts};
use super::{PULL_SECRET_LABEL, counted, managed_secrets_selector, owner_reference, stored_owner, time};
use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::v1alpha1::{PullSecret, PullSecretStatus, Registry};
use crate::backend::RegistryBackend;
use crate::controllers::context::{Context, object_key};
use crate::controllers::dereference::check_tenancy;
use crate::controllers::driver::{self, Note, Reconciler};
use crate::controllers::triggers;
use crate::error::{Error, Result};
use crate::secrets::schedule;
use crate::status::{Outcome, summarize};

pub const CONTROLLER: &str = "pull-secret";

/// Runs the PullSecret controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, own) = triggers::primary::<PullSecretController, B>(&ctx, triggers::own);
    let registries = triggers::dependency::<Registry, B>(&ctx, triggers::registry);
    let controller = Controller::for_stream(own, store.clone());
    let sa_store = store.clone();
    let owners = store.clone();
    let controller = controller
        // Our Secrets re-queue their PullSecret while it exists (see `stored_owner`).
        .watches(Api::<Secret>::all(ctx.client.clone()), watcher::Config::default().labels(&managed_secrets_selector()), move |secret| {
            stored_owner(&owners, &secret, true)
        })
        .watches_stream(registries, move |registry| {
            triggers::users_of(&store, &registry, |p: &PullSecret, name| p.spec.registries.iter().any(|r| r == name))
        })
        // A ServiceAccount created later gets the entry too (and one reported missing is
        // re-checked the moment it appears); one deleted is reported missing.
        .watches(Api::<ServiceAccount>::all(ctx.client.clone()), watcher::Config::default(), move |sa| {
            let ns = sa.namespace().unwrap_or_default();
            let name = sa.name_any();
            sa_store
                .state()
                .into_iter()
                .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
                .filter(|p| p.spec.service_accounts.iter().any(|s| s == "*" || *s == name))
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        });
    driver::run::<PullSecretController, B>(controller, ctx, shutdown).await;
}

/// The Secret's name: `spec.secretName`, else the object's name.
pub fn secret_name(ps: &PullSecret) -> String {
    ps.spec.secret_name.clone().unwrap_or_else(|| ps.name_any())
}

/// What one PullSecret reconcile achieved.
pub struct Served {
    credentials: PullCredentials,
    written: bool,
    /// Named ServiceAccounts that do not exist (`ServiceAccountNotFound`): reported in the status
    /// and by a Warning event when it starts, but not retried on a timer, since the
    /// ServiceAccount watch re-queues the PullSecret the moment one appears.
    missing: Option<Error>,
}

/// The PullSecret controller.
pub struct PullSecretController;

impl Reconciler for PullSecretController {
    type Kind = PullSecret;
    type Status = PullSecretStatus;
    type Synced = Served;
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: bool = true;

    fn api(client: &kube::Client, ps: &PullSecret) -> Api<PullSecret> {
        Api::namespaced(client.clone(), &ps.namespace().unwrap_or_default())
    }

    fn suspended(ps: &PullSecret) -> bool {
        ps.spec.suspend
    }

    fn stored_status(ps: &PullSecret) -> Option<PullSecretStatus> {
        ps.status.clone()
    }

    fn ready_reason(ps: &PullSecret) -> Option<String> {
        crate::status::ready_reason(ps.status.as_ref().map(|s| s.conditions.as_slice()))
    }

    async fn sync<B: RegistryBackend>(ps: &PullSecret, ctx: &Context<B>) -> Result<Served> {
        serve(ps, ctx).await
    }

    async fn cleanup<B: RegistryBackend>(ps: &PullSecret, ctx: &Context<B>) -> Result<Option<Note>> {
        // The Secret goes with its owner (garbage collection); remove our ServiceAccount entries.
        let ns = ps.namespace().ok_or(Error::MissingMetadata("namespace"))?;
        sync_service_accounts(ctx, &ns, &ps.spec.service_accounts, &secret_name(ps), false).await?;
        Ok(None)
    }

    fn next_status(ps: &PullSecret, outcome: &Result<Served>, now: &Time) -> PullSecretStatus {
        next_status(ps, outcome, now)
    }

    fn failure(s: &Served) -> Option<&Error> {
        s.missing.as_ref()
    }

    fn event(ps: &PullSecret, s: &Served) -> Option<Note> {
        s.written.then(|| {
            (
                "TokenRefreshed",
                format!(
                    "Wrote Secret {} with credentials for {}",
                    secret_name(ps),
                    counted(s.credentials.registries.len(), "registry", "registries")
                ),
            )
        })
    }

    fn requeue<B: RegistryBackend>(ps: &PullSecret, s: &Served, ctx: &Context<B>) -> Duration {
        let interval = ctx.interval(ps.spec.interval.as_ref(), &object_key(ps));
        schedule::requeue_after(SystemTime::now(), s.credentials.refresh_at, interval)
    }
}

async fn serve<B: RegistryBackend>(ps: &PullSecret, ctx: &Context<B>) -> Result<Served> {
    let ns = ps.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    // The Registries' tenancy rules apply to PullSecrets too (the labels are read once).
    let mut labels: Option<BTreeMap<String, String>> = None;
    for name in &ps.spec.registries {
        let registry = ctx.ready_registry(name)?;
        if registry.spec.allowed_namespaces.is_some() && labels.is_none() {
            labels = Some(ctx.namespace_labels(&ns).await?);
        }
        check_tenancy(&registry, &ns, labels.as_ref().unwrap_or(&BTreeMap::new()), None)?;
    }
    let credentials = credentials(ctx, &ps.spec.registries, ps.spec.refresh_fraction).await?;
    let owner = owner_reference(ps).ok_or(Error::MissingMetadata("uid"))?;
    let uid = owner.uid.clone();
    let secret = desired_secret(
        &ns,
        &secret_name(ps),
        owner,
        (PULL_SECRET_LABEL, &ps.name_any()),
        &credentials.dockerconfigjson,
    );
    let written = apply_secret(ctx, CONTROLLER, &secret, &uid).await?;
    let missing = sync_service_accounts(ctx, &ns, &ps.spec.service_accounts, &secret_name(ps), true).await?;
    Ok(Served {
        credentials,
        written,
        missing: not_found(&ns, &missing),
    })
}

/// Pure: the next PullSecret status. Times come from the cached token, so the status is stable
/// between refreshes and a no-op reconcile writes nothing. Named ServiceAccounts that do not
/// exist make it wait (`Reconciling`, `ServiceAccountNotFound`, naming them): the Secret is
/// written, but Pods running as those accounts would not get it.
fn next_status(ps: &PullSecret, outcome: &Result<Served>, now: &Time) -> PullSecretStatus {
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
                dockerconfigjson: secrecy::SecretString::from("{}"),
                registries: vec![crate::api::v1alpha1::PullSecretRegistry {
                    name: "default".into(),
                    host: Some("h".into()),
                }],
                expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(7_200),
                refreshed_at: SystemTime::UNIX_EPOCH,
                refresh_at: SystemTime::UNIX_EPOCH,
            },
            written: false,
            missing: super::not_found(
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
        assert_eq!(
            PullSecretController::failure(&s).map(Error::reason),
            Some("ServiceAccountNotFound")
        );
        assert!(
            PullSecretController::into_result(s).is_ok(),
            "not retried on a timer"
        );
        assert!(PullSecretController::failure(&served(&[])).is_none());
    }
}
