//! Pure decisions of the ClusterPullSecret controller: which namespaces get the Secret, what is
//! reported missing, and the status. No I/O (see [`crate::decide`]).

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::core::{Selector, SelectorExt};
use kube::{Resource, ResourceExt};

use super::service_accounts::not_found_in_namespaces;
use super::{PullCredentials, counted, time};
use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::v1alpha1::{ClusterPullSecret, ClusterPullSecretStatus, NamespaceFilter};
use crate::error::{Error, Result};
use crate::status::{Outcome, summarize};

/// The Secret's name: `spec.secretName`, else the object's name.
pub fn secret_name(c: &ClusterPullSecret) -> String {
    c.spec.secret_name.clone().unwrap_or_else(|| c.name_any())
}

/// Pure: `spec.namespaceSelector` as the selector namespaces are matched with (`None`: unset).
/// A selector stored before the admission rules existed is refused here, naming the requirement,
/// its value and the allowed operators (`InvalidSpec`).
pub fn namespace_selector(selector: Option<&LabelSelector>) -> Result<Option<Selector>> {
    selector
        .map(crate::api::selector::parse)
        .transpose()
        .map_err(|e| Error::InvalidSpec(format!("invalid namespaceSelector: {e}")))
}

/// The cluster's own namespaces: a ClusterPullSecret serves them only when `namespaces.include`
/// names them, whatever its selector says (`namespaceSelector: {}` means every namespace of the
/// workloads, not the control plane's).
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// Pure: whether a namespace gets the Secret: not terminating (a namespace is `Terminating`
/// exactly when its `deletionTimestamp` is set, so its metadata suffices), passes `namespaces`
/// and the selector (parsed by [`namespace_selector`]), and is not one of the
/// [`SYSTEM_NAMESPACES`] unless `namespaces.include` names it.
pub fn namespace_matches(
    ns: &impl Resource,
    selector: Option<&Selector>,
    filter: Option<&NamespaceFilter>,
) -> bool {
    let name = ns.name_any();
    if ns.meta().deletion_timestamp.is_some() {
        return false;
    }
    let included = filter
        .and_then(|f| f.include.as_ref())
        .is_some_and(|inc| inc.contains(&name));
    if SYSTEM_NAMESPACES.contains(&name.as_str()) && !included {
        return false;
    }
    if let Some(f) = filter {
        if f.include.is_some() && !included {
            return false;
        }
        if f.exclude.as_ref().is_some_and(|exc| exc.contains(&name)) {
            return false;
        }
    }
    selector.is_none_or(|s| s.matches(ns.labels()))
}

/// Pure: the namespaces `namespaces.include` names that do not exist (among those this instance
/// serves), in the order given.
pub fn missing_namespaces(
    filter: Option<&NamespaceFilter>,
    existing: &BTreeSet<String>,
    serves: impl Fn(&str) -> bool,
) -> Vec<String> {
    filter
        .and_then(|f| f.include.as_ref())
        .into_iter()
        .flatten()
        .filter(|n| serves(n) && !existing.contains(*n))
        .cloned()
        .collect()
}

/// Pure: the report on included namespaces that do not exist and named ServiceAccounts that do
/// not exist in served namespaces (`None` when there are neither). Missing namespaces come
/// first (the reason is theirs), and the message mentions both.
pub fn not_found(missing_namespaces: &[String], missing_accounts: &[(String, Vec<String>)]) -> Option<Error> {
    let accounts = not_found_in_namespaces(missing_accounts);
    if missing_namespaces.is_empty() {
        return accounts;
    }
    let names = crate::text::listed(missing_namespaces, 10);
    let mut message = match missing_namespaces {
        [_] => format!(
            "namespaces.include names {names}, which does not exist: it gets the Secret when it is created"
        ),
        _ => format!(
            "namespaces.include names {names}, which do not exist: they get the Secret when they are created"
        ),
    };
    if let Some(accounts) = accounts {
        message = format!("{message}; {accounts}");
    }
    Some(Error::NamespaceNotFound(message))
}

/// Pure: what the status and the requeue say about credentials minted per namespace
/// (`spec.identity`): the earliest expiry, refresh and refresh time of them all, the registries
/// of the first, and their roles, sorted and distinct. `None` when there are none.
pub fn earliest(all: Vec<PullCredentials>) -> (Option<PullCredentials>, Vec<String>) {
    let roles: BTreeSet<String> = all.iter().filter_map(|c| c.role_arn.clone()).collect();
    let merged = all.into_iter().reduce(|a, b| PullCredentials {
        logins: Default::default(),
        role_arn: None,
        registries: a.registries,
        expires_at: a.expires_at.min(b.expires_at),
        refreshed_at: a.refreshed_at.min(b.refreshed_at),
        refresh_at: a.refresh_at.min(b.refresh_at),
    });
    (merged, roles.into_iter().collect())
}

/// What one ClusterPullSecret reconcile achieved: a partial success carries its failures.
pub struct Fanned {
    /// The earliest of the credentials written (`None` when no namespace got any: with
    /// `spec.identity` each namespace has its own).
    pub credentials: Option<PullCredentials>,
    /// The roles the tokens were minted with (`spec.identity`), sorted and distinct.
    pub roles: Vec<String>,
    pub served: BTreeSet<String>,
    pub failed: Vec<(String, Error)>,
    pub written: usize,
    pub removed: usize,
    /// Included namespaces or named ServiceAccounts that do not exist (`NamespaceNotFound`,
    /// `ServiceAccountNotFound`): reported in the status and by a Warning event when it starts,
    /// but not retried on a timer, since the Namespace and ServiceAccount watches re-queue the
    /// ClusterPullSecret the moment one appears.
    pub missing: Option<Error>,
}

/// Pure: the failure a partial success carries: the first namespace that failed, else what does
/// not exist (it drives the event, the class and the backoff).
pub fn failure(f: &Fanned) -> Option<&Error> {
    f.failed.first().map(|(_, e)| e).or(f.missing.as_ref())
}

/// Pure: a failed namespace makes the reconcile an error (retried with backoff); what does not
/// exist does not (the watches re-queue it when it appears).
pub fn into_result(mut f: Fanned) -> Result<Fanned> {
    if f.failed.is_empty() {
        Ok(f)
    } else {
        Err(f.failed.swap_remove(0).1)
    }
}

/// Pure: the next ClusterPullSecret status. A partial failure keeps the root cause's reason and
/// class, and the message counts the namespaces. Otherwise an included namespace or a named
/// ServiceAccount that does not exist makes it wait (`Reconciling`, `NamespaceNotFound` or
/// `ServiceAccountNotFound`, naming them).
pub fn next_status(cps: &ClusterPullSecret, outcome: &Result<Fanned>, now: &Time) -> ClusterPullSecretStatus {
    let prev = cps.status.clone().unwrap_or_default();
    let generation = cps.meta().generation;
    let mut status = ClusterPullSecretStatus {
        observed_generation: generation,
        last_handled_reconcile_at: cps.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        secret_name: Some(secret_name(cps)),
        ..prev.clone()
    };
    let mut message = None;
    let summary = match outcome {
        Ok(f) => {
            if let Some(c) = &f.credentials {
                status.expires_at = time(c.expires_at);
                status.last_refresh_time = time(c.refreshed_at);
                status.registries = c.registries.clone();
            }
            status.role_arns = f.roles.iter().take(20).cloned().collect();
            status.namespace_count = Some(i32::try_from(f.served.len()).unwrap_or(i32::MAX));
            status.failed_namespaces = f.failed.iter().take(20).map(|(ns, _)| ns.clone()).collect();
            let is_in = format!(
                "Secret {} is in {}",
                secret_name(cps),
                counted(f.served.len(), "namespace", "namespaces")
            );
            match f.failed.first() {
                None => match &f.missing {
                    None => Outcome::InSync(is_in),
                    Some(e) => Outcome::Waiting {
                        reason: e.reason(),
                        message: format!("{e}; {is_in}"),
                    },
                },
                Some((ns, e)) => {
                    message = Some(format!(
                        "{} of {} namespaces failed, first {ns}: {}",
                        f.failed.len(),
                        f.failed.len() + f.served.len(),
                        crate::text::error_chain(e)
                    ));
                    Outcome::Failed(e)
                }
            }
        }
        Err(e) => Outcome::Failed(e),
    };
    status.conditions = summarize(&prev.conditions, generation, &summary, now);
    if let Some(message) = message {
        for c in status.conditions.iter_mut() {
            c.message = crate::text::truncate(message.clone(), 1024);
        }
    }
    status
}

#[cfg(test)]
mod tests;
