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
//! Everything here is pure: the controllers feed it the Registries of `ctx.registries` and the
//! names of the Registries that have ReplicationRules.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::fmt;

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

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
}

impl Setting {
    /// What it is in ECR.
    pub fn what(self) -> &'static str {
        match self {
            Setting::Scanning => "scanning configuration",
            Setting::Policy => "registry policy",
            Setting::Replication => "replication configuration",
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

/// The order of ownership: older first, then by name.
fn seniority(
    registry: &Registry,
) -> (
    Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    String,
) {
    (registry.metadata.creation_timestamp.as_ref(), registry.name_any())
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
                .min_by(|a, b| seniority(a).cmp(&seniority(b)))?;
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
mod tests {
    use super::*;
    use serde_json::json;

    fn registry(name: &str, created: i64, spec: serde_json::Value, account: Option<&str>) -> Registry {
        let mut spec = spec;
        spec["region"] = json!("us-east-1");
        let mut v = json!({
            "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
            "metadata": {"name": name, "creationTimestamp": k8s_openapi::jiff::Timestamp::from_second(created).unwrap().to_string()},
            "spec": spec,
        });
        if let Some(account) = account {
            v["status"] = json!({"registryId": account});
        }
        serde_json::from_value(v).unwrap()
    }

    const A: &str = "123456789012";
    const B: &str = "111122223333";

    fn scanning() -> serde_json::Value {
        json!({"scanning": {"scanType": "Basic"}})
    }

    fn policy() -> serde_json::Value {
        json!({"policy": {"Version": "2012-10-17", "Statement": []}})
    }

    fn both() -> serde_json::Value {
        json!({"scanning": {"scanType": "Basic"}, "policy": {"Version": "2012-10-17", "Statement": []}})
    }

    #[test]
    fn aws_endpoints_are_one_registry_and_any_other_endpoint_is_its_own() {
        for aws in [
            None,
            Some("https://api.ecr.us-east-1.amazonaws.com"),
            Some("https://ecr-fips.us-east-1.amazonaws.com/"),
            Some("https://vpce-0abc-1234.api.ecr.eu-west-1.vpce.amazonaws.com"),
            Some("https://api.ecr.cn-north-1.amazonaws.com.cn:443"),
            Some("https://ecr.us-east-1.api.aws"),
            Some("HTTPS://API.ECR.US-EAST-1.AMAZONAWS.COM."),
        ] {
            assert_eq!(endpoint_identity(aws), None, "{aws:?}");
        }
        for (local, identity) in [
            ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
            ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
            ("http://LocalStack:4566", "http://localstack:4566"),
            (
                "https://amazonaws.com.evil.example",
                "https://amazonaws.com.evil.example",
            ),
            ("http://[::1]:5000", "http://[::1]:5000"),
        ] {
            assert_eq!(
                endpoint_identity(Some(local)).as_deref(),
                Some(identity),
                "{local}"
            );
        }
    }

    #[test]
    fn the_place_is_the_recorded_account_the_region_and_a_non_aws_endpoint() {
        let r = registry("a", 1, json!({}), Some(A));
        assert_eq!(
            Place::recorded(&r),
            Some(Place {
                account: A.into(),
                region: "us-east-1".into(),
                endpoint: None
            })
        );
        assert_eq!(Place::recorded(&registry("new", 1, json!({}), None)), None);
        let local = registry("l", 1, json!({"endpoint": "http://127.0.0.1:5000"}), Some(A));
        assert_eq!(
            Place::recorded(&local).map(|p| p.to_string()).as_deref(),
            Some("account 123456789012 in us-east-1 at http://127.0.0.1:5000")
        );
        assert_ne!(Place::recorded(&local), Place::recorded(&r));
    }

    /// The decision table: which settings `me` yields to whom.
    #[test]
    fn the_oldest_claimant_owns_each_setting() {
        let none = BTreeSet::new();
        let ruled = |names: &[&str]| {
            names
                .iter()
                .map(|n| (*n).to_owned())
                .collect::<BTreeSet<String>>()
        };
        let yields = |owner: &str, settings: &[Setting]| {
            settings
                .iter()
                .map(|s| Yielded {
                    setting: *s,
                    owner: owner.to_owned(),
                })
                .collect::<Vec<_>>()
        };
        let local = json!({"endpoint": "http://127.0.0.1:5000"});
        let local_scanning = json!({"endpoint": "http://127.0.0.1:5000/", "scanning": {"scanType": "Basic"}});
        /// (case, me, others, Registries with rules, expected)
        type Case = (
            &'static str,
            Registry,
            Vec<Registry>,
            BTreeSet<String>,
            Vec<Yielded>,
        );
        let cases: Vec<Case> = vec![
            (
                "alone",
                registry("me", 5, both(), Some(A)),
                vec![],
                ruled(&["me"]),
                vec![],
            ),
            (
                "an older Registry of the same registry sets the same settings",
                registry("me", 5, both(), Some(A)),
                vec![registry("old", 1, both(), Some(A))],
                none.clone(),
                yields("old", &[Setting::Scanning, Setting::Policy]),
            ),
            (
                "the newer one owns nothing it shares",
                registry("old", 1, both(), Some(A)),
                vec![registry("me", 5, both(), Some(A))],
                none.clone(),
                vec![],
            ),
            (
                "an older Registry that claims nothing is no owner",
                registry("me", 5, both(), Some(A)),
                vec![registry("old", 1, json!({}), Some(A))],
                none.clone(),
                vec![],
            ),
            (
                "each setting has its own owner",
                registry("me", 5, both(), Some(A)),
                vec![
                    registry("old-scan", 1, scanning(), Some(A)),
                    registry("young-policy", 9, policy(), Some(A)),
                ],
                none.clone(),
                yields("old-scan", &[Setting::Scanning]),
            ),
            (
                "claiming nothing is no conflict, whoever else is there",
                registry("me", 5, json!({}), Some(A)),
                vec![registry("old", 1, both(), Some(A))],
                ruled(&["old"]),
                vec![],
            ),
            (
                "replication: the oldest Registry with rules owns it",
                registry("me", 5, json!({}), Some(A)),
                vec![
                    registry("old", 1, json!({}), Some(A)),
                    registry("older", 0, json!({}), Some(A)),
                ],
                ruled(&["me", "old"]),
                yields("old", &[Setting::Replication]),
            ),
            (
                "replication: rules it wrote and still records are a claim",
                registry("me", 5, json!({}), Some(A)),
                vec![{
                    let mut r = registry("old", 1, json!({}), Some(A));
                    r.status.as_mut().unwrap().replication = Some(
                        serde_json::from_value(json!({"rules": [{"name": "gone", "fingerprint": "f"}]}))
                            .unwrap(),
                    );
                    r
                }],
                ruled(&["me"]),
                yields("old", &[Setting::Replication]),
            ),
            (
                "same age: the first name owns",
                registry("b", 1, scanning(), Some(A)),
                vec![registry("a", 1, scanning(), Some(A))],
                none.clone(),
                yields("a", &[Setting::Scanning]),
            ),
            (
                "another account is another registry",
                registry("me", 5, both(), Some(A)),
                vec![registry("old", 1, both(), Some(B))],
                none.clone(),
                vec![],
            ),
            (
                "no recorded account yet: not a contender (it is looked at again once it has one)",
                registry("me", 5, both(), Some(A)),
                vec![registry("old", 1, both(), None)],
                none.clone(),
                vec![],
            ),
            (
                "another region is another registry",
                registry("me", 5, both(), Some(A)),
                vec![{
                    let mut r = registry("old", 1, both(), Some(A));
                    r.spec.region = "eu-west-1".into();
                    r
                }],
                none.clone(),
                vec![],
            ),
            (
                "a local endpoint is a registry of its own",
                registry("me", 5, both(), Some(A)),
                vec![registry("old", 1, local_scanning.clone(), Some(A))],
                none.clone(),
                vec![],
            ),
            (
                "the same local endpoint is the same registry",
                {
                    let mut me = registry("me", 5, both(), Some(A));
                    me.spec.endpoint = Some("http://127.0.0.1:5000".into());
                    me
                },
                vec![
                    registry("old", 1, local_scanning, Some(A)),
                    registry("older", 0, local, Some(A)),
                ],
                none.clone(),
                yields("old", &[Setting::Scanning]),
            ),
            (
                "an AWS VPC endpoint reaches the same registry as the default one",
                registry("me", 5, policy(), Some(A)),
                vec![registry(
                    "old",
                    1,
                    json!({"endpoint": "https://vpce-1.api.ecr.us-east-1.vpce.amazonaws.com", "policy": {"Version": "2012-10-17", "Statement": []}}),
                    Some(A),
                )],
                none.clone(),
                yields("old", &[Setting::Policy]),
            ),
        ];
        for (case, me, others, ruled, expected) in cases {
            let place = Place::recorded(&me).unwrap();
            // The list from the store includes `me` itself.
            let mut all = others.clone();
            all.push(me.clone());
            assert_eq!(yielded(&me, &place, &all, &ruled), expected, "{case}");
        }
    }

    #[test]
    fn the_account_just_reached_decides_before_it_is_recorded() {
        // A new Registry (no status yet) is judged at the place its credentials reach now.
        let me = registry("me", 5, scanning(), None);
        let old = registry("old", 1, scanning(), Some(A));
        let all = [old, me.clone()];
        let place = Place::of(&me, A);
        assert_eq!(
            yielded(&me, &place, &all, &BTreeSet::new()),
            [Yielded {
                setting: Setting::Scanning,
                owner: "old".into()
            }]
        );
        assert!(yielded(&me, &Place::of(&me, B), &all, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn the_message_names_the_owner_what_it_owns_and_what_to_do() {
        let place = Place {
            account: A.into(),
            region: "us-east-1".into(),
            endpoint: None,
        };
        let m = message(
            "team",
            &place,
            &[
                Yielded {
                    setting: Setting::Scanning,
                    owner: "platform".into(),
                },
                Yielded {
                    setting: Setting::Replication,
                    owner: "platform".into(),
                },
            ],
        );
        assert_eq!(
            m,
            "Registry platform reaches the same registry (account 123456789012 in us-east-1) and is older, so it owns the scanning configuration and replication configuration; Registry team writes none of it (its own is ignored): set spec.scanning on Registry platform and remove it here and recreate this Registry's ReplicationRules with registryRef platform. Or delete one of the two Registries"
        );
        let two = message(
            "team",
            &place,
            &[
                Yielded {
                    setting: Setting::Policy,
                    owner: "b".into(),
                },
                Yielded {
                    setting: Setting::Scanning,
                    owner: "a".into(),
                },
            ],
        );
        assert!(
            two.starts_with("Registry a reaches") && two.contains(". Registry b reaches"),
            "{two}"
        );
        assert!(two.contains("owns the registry policy"), "{two}");
    }

    #[test]
    fn neighbours_are_the_registries_at_the_same_place_or_without_one_yet() {
        let (store, mut writer) = kube::runtime::reflector::store::<Registry>();
        for r in [
            registry("changed", 1, json!({}), Some(A)),
            registry("same", 2, json!({}), Some(A)),
            registry("fresh", 3, json!({}), None),
            registry("other-account", 4, json!({}), Some(B)),
            registry("local", 5, json!({"endpoint": "http://127.0.0.1:1"}), Some(A)),
        ] {
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(r));
        }
        let mut names: Vec<String> = neighbours(&store, &registry("changed", 1, json!({}), Some(A)))
            .into_iter()
            .map(|r| r.name)
            .collect();
        names.sort();
        assert_eq!(names, ["fresh", "same"]);
    }

    #[test]
    fn the_key_changes_with_what_decides_ownership_only() {
        let r = registry("a", 1, json!({}), Some(A));
        let mut bookkeeping = r.clone();
        bookkeeping.status.as_mut().unwrap().observed_generation = Some(9);
        assert_eq!(key(&r), key(&bookkeeping));
        let mut moved = r.clone();
        moved.status.as_mut().unwrap().registry_id = Some(B.into());
        assert_ne!(key(&r), key(&moved));
        let mut edited = r.clone();
        edited.metadata.generation = Some(2);
        assert_ne!(key(&r), key(&edited));
    }
}
