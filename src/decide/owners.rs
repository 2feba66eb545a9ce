//! One writer per registry-wide setting. ECR has one scanning configuration, one registry policy
//! and one replication configuration per registry (an account in a region). Two Registry objects
//! can reach the same registry (other names, other credentials); if both wrote those settings,
//! each would revert the other on every interval, and nothing would say so.
//!
//! So among the Registries that reach the same registry ([`Place`]: the account recorded in
//! `status.registryId`, the region, and the endpoint when it is not one of AWS's own), each
//! setting has one owner: the oldest Registry (`creationTimestamp`, then name) that *claims* it,
//! that is sets `spec.scanning` / `spec.policy`, or has ReplicationRules (or replication rules it
//! wrote and has not removed yet). Every other Registry that claims it writes nothing of it and
//! says so (`SettingsConflict`), while it stays Ready for what is per repository (Repositories,
//! lifecycle policies, pull secrets). A Registry that claims nothing is no conflict at all.
//!
//! Everything here is pure (see [`crate::decide`]): the controllers feed it the Registries of `ctx.registries` and the
//! names of the Registries that have ReplicationRules.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::fmt;

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::claims::seniority;
use crate::api::v1alpha1::Registry;

/// The domain condition of a Registry that yields a registry-wide setting it sets to an older
/// Registry of the same registry. Present only while true.
pub const SETTINGS_CONFLICT: &str = "SettingsConflict";

/// Which ECR registry a Registry object reaches: two objects with the same place are the same
/// registry, and share its registry-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The 12-digit account.
    pub account: String,
    /// The region (`spec.region`, immutable).
    pub region: String,
    /// `None` for AWS's own endpoints (every one of them reaches the same registry); else the
    /// endpoint as written (see [`endpoint_identity`]).
    pub endpoint: Option<String>,
}

impl Place {
    /// The place of `registry` when its credentials reach `account`.
    pub fn of(registry: &Registry, account: &str) -> Place {
        Place {
            account: account.to_owned(),
            region: registry.spec.region.clone(),
            endpoint: endpoint_identity(registry.spec.endpoint.as_deref()),
        }
    }

    /// The place `registry` reached last, from its status; `None` before its first success.
    pub fn recorded(registry: &Registry) -> Option<Place> {
        let account = registry.status.as_ref()?.registry_id.as_deref()?;
        Some(Place::of(registry, account))
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "account {} in {}", self.account, self.region)?;
        if let Some(endpoint) = &self.endpoint {
            write!(f, " at {endpoint}")?;
        }
        Ok(())
    }
}

/// Pure: the endpoint part of a registry's identity. `None` when unset or one of AWS's own
/// endpoints (a host under `amazonaws.com`, `amazonaws.com.cn` or `api.aws`: regional, FIPS,
/// dual-stack and VPC endpoints all reach the one registry of an account and region). Any other
/// endpoint (a local ECR-compatible server such as moto or LocalStack, which report made-up
/// account IDs) is a registry of its own: the URL, lower-cased, without a trailing slash.
pub fn endpoint_identity(endpoint: Option<&str>) -> Option<String> {
    let url = endpoint?.trim().trim_end_matches('/').to_ascii_lowercase();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => host_port,
    };
    let host = host.trim_end_matches('.');
    let aws = [".amazonaws.com", ".amazonaws.com.cn", ".api.aws"]
        .iter()
        .any(|suffix| host.ends_with(suffix));
    (!aws).then_some(url)
}

/// A registry-wide setting: one per registry in ECR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Setting {
    /// `spec.scanning`: PutRegistryScanningConfiguration.
    Scanning,
    /// `spec.policy`: PutRegistryPolicy.
    Policy,
    /// ReplicationRules: PutReplicationConfiguration.
    Replication,
    /// `spec.accountSettings`: PutAccountSetting.
    AccountSettings,
    /// `spec.pullTimeUpdateExclusions`: Register/DeregisterPullTimeUpdateExclusion.
    PullTimeExclusions,
    /// `spec.signing`: PutSigningConfiguration.
    Signing,
}

impl Setting {
    /// What it is in ECR.
    pub fn what(self) -> &'static str {
        match self {
            Setting::Scanning => "scanning configuration",
            Setting::Policy => "registry policy",
            Setting::Replication => "replication configuration",
            Setting::AccountSettings => "account settings",
            Setting::PullTimeExclusions => "pull-time update exclusions",
            Setting::Signing => "signing configuration",
        }
    }
}

/// Pure: the registry-wide settings `registry` claims: those its spec sets, and replication when
/// it has ReplicationRules (`ruled` names the Registries that have some) or rules it wrote are
/// still recorded (it would write to remove them).
pub fn claims(registry: &Registry, ruled: &BTreeSet<String>) -> Vec<Setting> {
    let recorded = registry
        .status
        .as_ref()
        .and_then(|s| s.replication.as_ref())
        .is_some_and(|r| !r.rules.is_empty());
    let mut claims = Vec::new();
    if registry.spec.scanning.is_some() {
        claims.push(Setting::Scanning);
    }
    if registry.spec.policy.is_some() {
        claims.push(Setting::Policy);
    }
    if registry.spec.account_settings.is_some() {
        claims.push(Setting::AccountSettings);
    }
    if registry.spec.pull_time_update_exclusions.is_some() {
        claims.push(Setting::PullTimeExclusions);
    }
    if registry.spec.signing.is_some() {
        claims.push(Setting::Signing);
    }
    if recorded || ruled.contains(&registry.name_any()) {
        claims.push(Setting::Replication);
    }
    claims
}

/// Pure: the other Registries whose status shows `place`.
pub fn sharing<'a>(name: &str, place: &Place, registries: &'a [impl Borrow<Registry>]) -> Vec<&'a Registry> {
    registries
        .iter()
        .map(Borrow::borrow)
        .filter(|r: &&Registry| r.name_any() != name && Place::recorded(r).as_ref() == Some(place))
        .collect()
}

/// A setting a Registry claims and another one owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Yielded {
    pub setting: Setting,
    /// The owner's name.
    pub owner: String,
}

/// Pure: the settings `me` (at `place`) claims that another Registry at the same place owns: the
/// oldest (then first by name) of those that claim the setting. Empty when `me` owns everything it
/// claims, or claims nothing. `registries` may include `me` (it is recognised by name).
pub fn yielded(
    me: &Registry,
    place: &Place,
    registries: &[impl Borrow<Registry>],
    ruled: &BTreeSet<String>,
) -> Vec<Yielded> {
    let others = sharing(&me.name_any(), place, registries);
    claims(me, ruled)
        .into_iter()
        .filter_map(|setting| {
            let owner = others
                .iter()
                .copied()
                .filter(|r| claims(r, ruled).contains(&setting))
                .chain(std::iter::once(me))
                .min_by_key(|r| seniority(*r))?;
            (owner.name_any() != me.name_any()).then(|| Yielded {
                setting,
                owner: owner.name_any(),
            })
        })
        .collect()
}

/// Pure: what the Registry `me` says while it yields settings (the `SettingsConflict` condition,
/// its Warning event): who owns what, that this Registry writes none of it, and what to do.
pub fn message(me: &str, place: &Place, yielded: &[Yielded]) -> String {
    let owners: BTreeSet<&str> = yielded.iter().map(|y| y.owner.as_str()).collect();
    let mut parts = Vec::new();
    for owner in owners {
        let settings: Vec<Setting> = yielded
            .iter()
            .filter(|y| y.owner == owner)
            .map(|y| y.setting)
            .collect();
        let whats: Vec<&str> = settings.iter().map(|s| s.what()).collect();
        let mut fixes = Vec::new();
        for (setting, field) in [
            (Setting::Scanning, "spec.scanning"),
            (Setting::Policy, "spec.policy"),
            (Setting::AccountSettings, "spec.accountSettings"),
            (Setting::PullTimeExclusions, "spec.pullTimeUpdateExclusions"),
            (Setting::Signing, "spec.signing"),
        ] {
            if settings.contains(&setting) {
                fixes.push(format!("set {field} on Registry {owner} and remove it here"));
            }
        }
        if settings.contains(&Setting::Replication) {
            fixes.push(format!(
                "recreate this Registry's ReplicationRules with registryRef {owner}"
            ));
        }
        parts.push(format!(
            "Registry {owner} reaches the same registry ({place}) and is older, so it owns the {}; Registry {me} writes none of it (its own is ignored): {}",
            join(&whats),
            join(&fixes)
        ));
    }
    format!("{}. Or delete one of the two Registries", parts.join(". "))
}

/// Pure: the status of a ReplicationRule on a Registry that yields the replication configuration.
pub fn rule_message(registry: &str, owner: &str, place: &Place) -> String {
    format!(
        "Registry {registry} yields the replication configuration of its registry ({place}) to Registry {owner}, which reaches the same registry and is older: this rule is not applied. Recreate it with registryRef {owner}, or delete one of the two Registries"
    )
}

/// "a", "a and b", "a, b and c".
fn join(items: &[impl AsRef<str>]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [rest @ .., last] => format!(
            "{} and {}",
            rest.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", "),
            last.as_ref()
        ),
    }
}

/// The Registries to look at again when `changed` appears, changes place or claims, or goes:
/// those at its place, and those that have not recorded any yet (they may be about to share it).
pub fn neighbours(store: &Store<Registry>, changed: &Registry) -> Vec<ObjectRef<Registry>> {
    let name = changed.name_any();
    let place = Place::recorded(changed);
    store
        .state()
        .iter()
        .filter(|r| r.name_any() != name && r.spec.region == changed.spec.region)
        .filter(|r| {
            let theirs = Place::recorded(r);
            theirs.is_none() || theirs == place
        })
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// The other Registries whose share of the registry-wide settings a ReplicationRule of the
/// Registry `name` (created or deleted) may change: its neighbours. None when it has none (alone,
/// it owns whatever it claims), which is the usual case.
pub fn neighbours_of(store: &Store<Registry>, name: &str) -> Vec<ObjectRef<Registry>> {
    store
        .get(&ObjectRef::new(name))
        .map(|registry| neighbours(store, &registry))
        .unwrap_or_default()
}

/// The key of a Registry for its neighbours: what decides ownership (its place, its spec, its
/// recorded replication rules) and its deletion.
pub fn key(registry: &Registry) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        registry.metadata.generation,
        registry.metadata.deletion_timestamp.is_some(),
        registry.status.as_ref().and_then(|s| s.registry_id.as_deref()),
        registry
            .status
            .as_ref()
            .and_then(|s| s.replication.as_ref())
            .is_some_and(|r| !r.rules.is_empty()),
    )
        .hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests;
