//! Pure decisions about a Registry: what its spec asks of the registry-wide settings, whether
//! its credentials reach the account it may use, whom it serves (tenancy), and its status. No
//! I/O (see [`crate::decide`]).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::SelectorExt;
use kube::{Resource, ResourceExt};

use super::Note;
use super::owners::{self, Place, SETTINGS_CONFLICT, Yielded};
use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::v1alpha1::{Registry, RegistrySpec, RegistryStatus, ScanFrequency, ScanType};
use crate::backend::{RegistryInfo, ScanningRuleSettings, ScanningSettings};
use crate::error::{Error, Result};
use crate::status::{Outcome, READY, domain_condition, set_condition, summarize};

/// The domain condition of a Registry whose deletion waits for its users.
pub const IN_USE: &str = "InUse";

/// What the last sync found.
pub struct Synced {
    pub info: RegistryInfo,
    pub changed: Vec<&'static str>,
    /// The registry-wide settings this Registry sets but leaves to an older Registry of the same
    /// registry (it wrote none of them).
    pub yielded: Vec<Yielded>,
    /// How often objects on the default interval are drift-checked on this Registry now
    /// (`1h2m3s`): the default, or longer when the background share of the ECR budget cannot
    /// check each once per interval.
    pub drift_check_interval: Option<String>,
}

/// Pure: the status this controller owns, as stored (`status.replication` is the replication
/// controller's).
pub fn stored_status(registry: &Registry) -> Option<RegistryStatus> {
    registry.status.clone().map(|s| RegistryStatus {
        replication: None,
        ..s
    })
}

/// Pure: whether this Registry may use the account its credentials reach (`actual`). With
/// `spec.accountId`, only that account. Without it, the account it has served (`served`, from
/// `status.registryId`): an edit of `endpoint` or `auth` that reaches another account would
/// otherwise move every Repository, rule and pull secret on it there, silently creating a second
/// set of ECR objects. Setting `spec.accountId` to the new account is how to move on purpose.
pub fn check_account(spec: Option<&str>, served: Option<&str>, actual: &str) -> Result<()> {
    match (spec, served) {
        (Some(expected), _) if expected != actual => Err(Error::AccountMismatch {
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        }),
        (None, Some(served)) if served != actual => Err(Error::AccountChanged {
            served: served.to_owned(),
            actual: actual.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Pure: the `SettingsConflict` condition's message, when this Registry yields settings.
pub fn conflict_message(registry: &Registry, s: &Synced) -> Option<String> {
    (!s.yielded.is_empty()).then(|| {
        let place = Place::of(registry, &s.info.registry_id);
        owners::message(&registry.name_any(), &place, &s.yielded)
    })
}

/// Pure: a Warning event when this Registry starts yielding settings, or yields others (not on
/// every reconcile while it does).
pub fn conflict_warning(registry: &Registry, s: &Synced) -> Option<Note> {
    let message = conflict_message(registry, s)?;
    let already = registry.status.as_ref().is_some_and(|st| {
        st.conditions
            .iter()
            .any(|c| c.type_ == SETTINGS_CONFLICT && c.status == "True" && c.message == message)
    });
    let reason = Error::Conflict(String::new()).reason();
    (!already).then_some((reason, message))
}

/// Pure: what the operator refuses in a Registry's spec before any ECR call, because admission
/// could not: an `allowedNamespaces` stored before the selector rules existed (`InvalidSpec`; the
/// Registry is not Ready, so the objects on it wait instead of each failing tenancy), and a
/// registry policy longer than ECR allows (`InvalidPolicy`; its serialised size is known only here).
pub fn check_spec(spec: &RegistrySpec) -> Result<()> {
    if let Some(selector) = &spec.allowed_namespaces {
        crate::api::selector::parse(selector)
            .map_err(|e| Error::InvalidSpec(format!("invalid allowedNamespaces: {e}")))?;
    }
    let too_long = spec
        .policy
        .as_ref()
        .and_then(|p| crate::policy::length_violation(&serde_json::Value::Object(p.0.clone())));
    if let Some(v) = too_long {
        return Err(Error::InvalidPolicy(format!(
            "invalid registry policy (spec.policy): {v}"
        )));
    }
    Ok(())
}

/// Pure: the registry scanning configuration the spec asks for, in ECR's spelling, normalised
/// like the backend's reading (filters sorted, rules sorted by frequency).
pub fn desired_scanning(spec: &RegistrySpec) -> Option<ScanningSettings> {
    let scanning = spec.scanning.as_ref()?;
    let mut rules: Vec<ScanningRuleSettings> = scanning
        .rules
        .iter()
        .flatten()
        .map(|r| {
            let mut filters = r.repository_filters.clone();
            filters.sort();
            let frequency = match r.scan_frequency {
                ScanFrequency::ScanOnPush => "SCAN_ON_PUSH",
                ScanFrequency::ContinuousScan => "CONTINUOUS_SCAN",
                ScanFrequency::Manual => "MANUAL",
            };
            ScanningRuleSettings {
                frequency: frequency.into(),
                filters,
            }
        })
        .collect();
    rules.sort_by(|a, b| a.frequency.cmp(&b.frequency));
    let scan_type = match scanning.scan_type {
        ScanType::Basic => "BASIC",
        ScanType::Enhanced => "ENHANCED",
    };
    Some(ScanningSettings {
        scan_type: scan_type.into(),
        rules,
    })
}

/// Pure: the host images are pulled from.
pub fn registry_host(registry_id: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("{registry_id}.dkr.ecr.{region}.{suffix}")
}

/// Pure: the next status.
pub fn next_status(registry: &Registry, outcome: &Result<Synced>, now: &Time) -> RegistryStatus {
    let prev = stored_status(registry).unwrap_or_default();
    let generation = registry.meta().generation;
    let mut status = RegistryStatus {
        observed_generation: generation,
        last_handled_reconcile_at: registry.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        ..prev.clone()
    };
    let mut conflict = None;
    let summary = match outcome {
        Ok(synced) => {
            status.registry_id = Some(synced.info.registry_id.clone());
            status.registry_host = Some(registry_host(&synced.info.registry_id, &registry.spec.region));
            status.identity = synced.info.identity.clone();
            status.drift_check_interval = synced.drift_check_interval.clone();
            conflict = conflict_message(registry, synced);
            let mut message = format!(
                "Registry {} in {} is reachable",
                synced.info.registry_id, registry.spec.region
            );
            if let Some(owner) = synced.yielded.first().map(|y| &y.owner) {
                message.push_str(&format!(
                    "; it leaves registry-wide settings it sets to Registry {owner} ({SETTINGS_CONFLICT})"
                ));
            }
            Outcome::InSync(message)
        }
        // Deletion waits for the users: the Registry keeps serving them (their own cleanup needs
        // it Ready), and a domain condition names them.
        Err(Error::InUse(message)) => {
            let mut conditions = prev.conditions.clone();
            let held = domain_condition(IN_USE, true, IN_USE, message.clone(), generation, now);
            set_condition(&mut conditions, &prev.conditions, held);
            status.conditions = conditions;
            return status;
        }
        Err(e) => Outcome::Failed(e),
    };
    status.conditions = summarize(&prev.conditions, generation, &summary, now);
    if let Some(message) = conflict {
        // Ready (Repositories and pull secrets are per repository, not registry-wide), and says
        // which settings it leaves to whom.
        let reason = Error::Conflict(String::new()).reason();
        let held = domain_condition(SETTINGS_CONFLICT, true, reason, message, generation, now);
        let mut conditions = status.conditions.clone();
        set_condition(&mut conditions, &prev.conditions, held);
        status.conditions = conditions;
    }
    status
}

/// Pure: whether a Registry serves the objects that use it: Ready, with its registry ID, for its
/// current generation. A Ready status of an earlier spec says nothing about the `endpoint` and
/// `auth` the users would reach ECR with now: an edit that reaches another account is refused by
/// the Registry controller (`AccountMismatch`) before any user acts on it, instead of their
/// silently creating their ECR objects again in that account.
pub fn serves(registry: &Registry) -> bool {
    registry.status.as_ref().is_some_and(|s| {
        s.registry_id.is_some()
            && s.observed_generation == registry.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == READY && c.status == "True")
    })
}

/// Pure: whether the Registry lets `namespace` use it, and (for a Repository) place `repository`.
pub fn check_tenancy(
    registry: &Registry,
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    repository: Option<&str>,
) -> Result<()> {
    if let Some(selector) = &registry.spec.allowed_namespaces {
        let selector = crate::api::selector::parse(selector).map_err(|e| {
            Error::InvalidSpec(format!(
                "Registry {} has an invalid allowedNamespaces: {e}",
                registry.name_any()
            ))
        })?;
        if !selector.matches(namespace_labels) {
            return Err(Error::NotAllowed(format!(
                "Registry {} does not allow namespace {namespace} (allowedNamespaces)",
                registry.name_any()
            )));
        }
    }
    if let Some(name) = repository
        && registry
            .spec
            .repository_name_policy
            .as_ref()
            .is_some_and(|p| p.require_namespace_prefix)
        && !name.starts_with(&format!("{namespace}/"))
    {
        return Err(Error::NotAllowed(format!(
            "Registry {} requires repository names in namespace {namespace} to start with {namespace}/ (got {name})",
            registry.name_any()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
