//! Merges every `ReplicationRule` of a Registry into the registry's single ECR replication
//! configuration (keyed on the Registry: one writer per document), writes it only when it differs
//! semantically from ECR, and reports on each rule.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::context::{Context, object_key};
use super::error_policy;
use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::v1alpha1::{
    AppliedReplicationRule, Registry, RegistryReplicationStatus, RegistryStatus, ReplicationRule,
    ReplicationRuleStatus,
};
use crate::backend::{RegistryBackend, ReplicationRuleSettings};
use crate::error::{Error, Result};
use crate::status::{Outcome, summarize, write_fields, write_if_changed};

pub const CONTROLLER: &str = "replication";
/// ECR's limits (not adjustable).
pub const MAX_RULES: usize = 10;
pub const MAX_DESTINATIONS: usize = 25;

/// One ReplicationRule as the merge sees it.
#[derive(Clone, Debug)]
pub struct RuleInput {
    pub name: String,
    pub priority: i32,
    pub suspended: bool,
    pub settings: ReplicationRuleSettings,
}

/// What the merge decided for one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// In the document at this 0-based position.
    Applied { position: usize },
    /// Identical to an admitted rule: served by it.
    Duplicate { of: String, position: usize },
    /// Does not fit ECR's limits; the sentence says which.
    LimitExceeded(String),
    /// A destination is invalid.
    InvalidDestination(String),
    /// Suspended: its last written entry is kept, if ECR still has it.
    Suspended,
}

/// The merged document and the verdicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merge {
    pub document: Vec<ReplicationRuleSettings>,
    pub verdicts: BTreeMap<String, Verdict>,
    /// What to record as ours: (rule name, fingerprint), in document order.
    pub ours: Vec<(String, String)>,
    pub foreign: usize,
}

fn destinations_of<'a>(
    rules: impl Iterator<Item = &'a ReplicationRuleSettings>,
) -> BTreeSet<(String, String)> {
    rules.flat_map(|r| r.destinations.iter().cloned()).collect()
}

/// Pure: merges the rules of one registry.
///
/// - Rules ECR holds that the operator did not write (`previously_ours` fingerprints) are kept
///   after the operator's rules, in their order, unless `exclusive`.
/// - Rules already applied are admitted first, then new ones, each in (priority, name) order, so a
///   rule that does not fit never evicts one that already fits; the newest rules are the ones left
///   out.
/// - The document lists the admitted rules by (priority, name), then the foreign rules.
pub fn merge(
    rules: &[RuleInput],
    ecr: &[ReplicationRuleSettings],
    previously_ours: &[(String, String)],
    source: (&str, &str),
    exclusive: bool,
) -> Merge {
    let ours_fps: HashSet<&str> = previously_ours.iter().map(|(_, f)| f.as_str()).collect();
    let applied_names: HashSet<&str> = previously_ours.iter().map(|(n, _)| n.as_str()).collect();
    // A foreign rule identical to one of the rules is served by that rule, and is not counted
    // twice: listing it twice would make the next merge take both for ours (same fingerprint) and
    // drop one, so the document would never settle.
    let wanted: HashSet<String> = rules
        .iter()
        .filter(|r| !r.suspended)
        .map(|r| r.settings.fingerprint())
        .collect();
    let foreign: Vec<ReplicationRuleSettings> = if exclusive {
        vec![]
    } else {
        ecr.iter()
            .filter(|r| {
                let fp = r.fingerprint();
                !ours_fps.contains(fp.as_str()) && !wanted.contains(&fp)
            })
            .cloned()
            .collect()
    };
    let mut verdicts = BTreeMap::new();
    let mut sorted: Vec<&RuleInput> = rules.iter().collect();
    sorted.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));

    // Suspended rules keep the entry they had, when ECR still has it.
    let mut kept: Vec<(&RuleInput, ReplicationRuleSettings, String)> = Vec::new();
    for r in sorted.iter().filter(|r| r.suspended) {
        verdicts.insert(r.name.clone(), Verdict::Suspended);
        if let Some((_, fp)) = previously_ours.iter().find(|(n, _)| *n == r.name)
            && let Some(rule) = ecr.iter().find(|e| &e.fingerprint() == fp)
        {
            kept.push((r, rule.clone(), fp.clone()));
        }
    }

    let order = sorted
        .iter()
        .filter(|r| !r.suspended && applied_names.contains(r.name.as_str()))
        .chain(
            sorted
                .iter()
                .filter(|r| !r.suspended && !applied_names.contains(r.name.as_str())),
        );
    let mut admitted: Vec<(&RuleInput, ReplicationRuleSettings, String)> = kept;
    for r in order {
        if let Some((region, id)) = r
            .settings
            .destinations
            .iter()
            .find(|(region, id)| (region.as_str(), id.as_str()) == source)
        {
            verdicts.insert(
                r.name.clone(),
                Verdict::InvalidDestination(format!(
                    "destination {region}/{id} is the source registry itself; replicate to another region or account"
                )),
            );
            continue;
        }
        let rule = r.settings.canonical();
        let fp = rule.fingerprint();
        if let Some((first, _, _)) = admitted.iter().find(|(_, _, f)| *f == fp) {
            verdicts.insert(
                r.name.clone(),
                Verdict::Duplicate {
                    of: first.name.clone(),
                    position: 0,
                },
            );
            continue;
        }
        let rules_after = admitted.len() + foreign.len() + 1;
        let dests_after = destinations_of(
            admitted
                .iter()
                .map(|(_, s, _)| s)
                .chain(foreign.iter())
                .chain(std::iter::once(&rule)),
        )
        .len();
        if rules_after > MAX_RULES {
            verdicts.insert(
                r.name.clone(),
                Verdict::LimitExceeded(format!(
                    "the replication configuration would have {rules_after} rules ({} from other sources); ECR allows {MAX_RULES}. Rules already applied keep their place; remove one to let this rule in",
                    foreign.len()
                )),
            );
            continue;
        }
        if dests_after > MAX_DESTINATIONS {
            verdicts.insert(
                r.name.clone(),
                Verdict::LimitExceeded(format!(
                    "the replication configuration would have {dests_after} distinct destinations; ECR allows {MAX_DESTINATIONS}. Rules already applied keep their place"
                )),
            );
            continue;
        }
        admitted.push((r, rule, fp));
    }
    admitted.sort_by(|(a, _, _), (b, _, _)| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    let mut document: Vec<ReplicationRuleSettings> = Vec::new();
    let mut ours = Vec::new();
    for (position, (r, rule, fp)) in admitted.iter().enumerate() {
        if !r.suspended {
            verdicts.insert(r.name.clone(), Verdict::Applied { position });
        }
        document.push(rule.clone());
        ours.push((r.name.clone(), fp.clone()));
    }
    // Duplicates point at the position of the rule that serves them.
    let positions: BTreeMap<String, usize> = ours
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.clone(), i))
        .collect();
    for v in verdicts.values_mut() {
        if let Verdict::Duplicate { of, position } = v {
            *position = positions.get(of).copied().unwrap_or(0);
        }
    }
    let foreign_count = foreign.len();
    document.extend(foreign);
    Merge {
        document,
        verdicts,
        ours,
        foreign: foreign_count,
    }
}

/// Pure: whether two documents mean the same (order of rules matters; order inside a rule does not).
pub fn same_document(a: &[ReplicationRuleSettings], b: &[ReplicationRuleSettings]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.canonical() == y.canonical())
}

fn settings(rule: &ReplicationRule) -> ReplicationRuleSettings {
    ReplicationRuleSettings {
        destinations: rule
            .spec
            .destinations
            .iter()
            .map(|d| (d.region.clone(), d.registry_id.clone()))
            .collect(),
        filters: rule
            .spec
            .repository_filters
            .iter()
            .flatten()
            .map(|f| f.filter.clone())
            .collect(),
    }
}

/// Runs the replication controller (keyed on Registry) until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api = Api::<Registry>::all(ctx.client.clone());
    Controller::new(api, watcher::Config::default().any_semantic())
        .watches(
            Api::<ReplicationRule>::all(ctx.client.clone()),
            watcher::Config::default(),
            |rule| Some(ObjectRef::<Registry>::new(&rule.spec.registry_ref.name)),
        )
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.tunables.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<B>, error_policy::<Registry, B>, ctx.clone())
        .for_each(|r| super::report(CONTROLLER, r))
        .await;
}

async fn reconcile<B: RegistryBackend>(registry: Arc<Registry>, ctx: Arc<Context<B>>) -> Result<Action> {
    let start = Instant::now();
    let name = registry.name_any();
    // Read the Registry itself: which rules are ours is in its status, and the cached copy may
    // not show this controller's last write yet.
    let Some(registry) = Api::<Registry>::all(ctx.client.clone())
        .get_opt(&name)
        .await
        .map_err(Error::kube("read the Registry"))?
        .map(Arc::new)
    else {
        return Ok(Action::await_change());
    };
    // A consistent LIST rather than a second watch's cache: the trigger may arrive before that
    // cache has seen the change that caused it.
    let rules: Vec<Arc<ReplicationRule>> = Api::<ReplicationRule>::all(ctx.client.clone())
        .list(&Default::default())
        .await
        .map_err(Error::kube("list ReplicationRules"))?
        .items
        .into_iter()
        .filter(|r| r.spec.registry_ref.name == name && r.metadata.deletion_timestamp.is_none())
        .map(Arc::new)
        .collect();
    let previously: Vec<(String, String)> = registry
        .status
        .as_ref()
        .and_then(|s| s.replication.as_ref())
        .map(|r| {
            r.rules
                .iter()
                .map(|a| (a.name.clone(), a.fingerprint.clone()))
                .collect()
        })
        .unwrap_or_default();
    if rules.is_empty() && previously.is_empty() {
        return Ok(Action::await_change()); // nothing of ours in this registry
    }
    let result = sync(&registry, &rules, &previously, &ctx).await;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let registry_id = registry.status.as_ref().and_then(|s| s.registry_id.clone());
    let rule_api = Api::<ReplicationRule>::all(ctx.client.clone());
    for rule in &rules {
        let verdict = match &result {
            Ok(m) => m.verdicts.get(&rule.name_any()).cloned().map(Ok),
            Err(e) => Some(Err(e)),
        };
        let Some(verdict) = verdict else { continue };
        if matches!(verdict, Ok(Verdict::Suspended)) {
            continue;
        }
        let status = rule_status(rule, verdict, registry_id.clone(), &name, &now);
        if let Err(e) =
            write_if_changed(&rule_api, rule.as_ref(), &status, &ctx.field_manager(CONTROLLER)).await
        {
            tracing::warn!(error = &e as &dyn std::error::Error, rule = %rule.name_any(), "status write failed");
        }
    }
    ctx.metrics.reconciled(
        CONTROLLER,
        start.elapsed(),
        result.as_ref().err().map(Error::reason),
    );
    let merged = result?;
    // Record which rules are ours (the Registry status field this controller owns).
    let mut status: RegistryStatus = registry.status.clone().unwrap_or_default();
    status.replication = Some(RegistryReplicationStatus {
        rules: merged
            .ours
            .iter()
            .map(|(n, f)| AppliedReplicationRule {
                name: n.clone(),
                fingerprint: f.clone(),
            })
            .collect(),
        foreign_rules: i32::try_from(merged.foreign).unwrap_or(i32::MAX),
    });
    let api = Api::<Registry>::all(ctx.client.clone());
    write_fields(
        &api,
        registry.as_ref(),
        &status,
        &ctx.field_manager(CONTROLLER),
        &|k| k == "replication",
    )
    .await?;
    ctx.backoff.reset(&object_key(registry.as_ref()));
    Ok(Action::requeue(ctx.interval(
        registry.spec.interval.as_ref(),
        &object_key(registry.as_ref()),
    )))
}

async fn sync<B: RegistryBackend>(
    registry: &Registry,
    rules: &[Arc<ReplicationRule>],
    previously: &[(String, String)],
    ctx: &Context<B>,
) -> Result<Merge> {
    let registry = ctx.ready_registry(&registry.name_any())?;
    let registry_id = registry
        .status
        .as_ref()
        .and_then(|s| s.registry_id.clone())
        .unwrap_or_default();
    let target = ctx.target(&registry).await?;
    let ecr = ctx
        .backend
        .get_replication(&target)
        .await
        .map_err(Error::backend("DescribeRegistry"))?;
    let inputs: Vec<RuleInput> = rules
        .iter()
        .map(|r| RuleInput {
            name: r.name_any(),
            priority: r.spec.priority,
            suspended: r.spec.suspend,
            settings: settings(r),
        })
        .collect();
    let exclusive = registry.spec.replication.as_ref().is_some_and(|r| r.exclusive);
    let merged = merge(
        &inputs,
        &ecr,
        previously,
        (&registry.spec.region, &registry_id),
        exclusive,
    );
    if !same_document(&merged.document, &ecr) {
        ctx.backend
            .put_replication(&target, &merged.document)
            .await
            .map_err(Error::backend("PutReplicationConfiguration"))?;
        tracing::info!(registry = %registry.name_any(), rules = merged.document.len(), "replication configuration written");
    }
    Ok(merged)
}

/// Pure: the status of one rule.
fn rule_status(
    rule: &ReplicationRule,
    verdict: std::result::Result<Verdict, &Error>,
    registry_id: Option<String>,
    registry: &str,
    now: &Time,
) -> ReplicationRuleStatus {
    let prev = rule.status.clone().unwrap_or_default();
    let generation = rule.meta().generation;
    let mut status = ReplicationRuleStatus {
        observed_generation: generation,
        last_handled_reconcile_at: rule.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        registry_id,
        position: None,
        ..prev.clone()
    };
    let failure;
    let outcome = match verdict {
        Ok(Verdict::Applied { position }) => {
            status.position = i32::try_from(position).ok();
            Outcome::InSync(format!(
                "Rule {} of the replication configuration of Registry {registry}",
                position + 1
            ))
        }
        Ok(Verdict::Duplicate { of, position }) => {
            status.position = i32::try_from(position).ok();
            Outcome::InSync(format!("Identical to ReplicationRule {of}, which is applied"))
        }
        Ok(Verdict::LimitExceeded(m)) => {
            failure = Error::LimitExceeded(m);
            Outcome::Failed(&failure)
        }
        Ok(Verdict::InvalidDestination(m)) => {
            failure = Error::InvalidDestination(m);
            Outcome::Failed(&failure)
        }
        Ok(Verdict::Suspended) => Outcome::InSync("Suspended".into()),
        Err(e) => Outcome::Failed(e),
    };
    status.conditions = summarize(&prev.conditions, generation, &outcome, now);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, priority: i32, dests: &[(&str, &str)], filters: &[&str]) -> RuleInput {
        RuleInput {
            name: name.into(),
            priority,
            suspended: false,
            settings: ReplicationRuleSettings {
                destinations: dests
                    .iter()
                    .map(|(r, i)| ((*r).to_owned(), (*i).to_owned()))
                    .collect(),
                filters: filters.iter().map(|f| (*f).to_owned()).collect(),
            },
        }
    }

    const SRC: (&str, &str) = ("us-east-1", "123456789012");

    #[test]
    fn merge_orders_by_priority_then_name_and_keeps_foreign_rules_last() {
        let rules = [
            rule("team-c", 0, &[("us-west-2", "111111111111")], &["c/"]),
            rule("team-a", 5, &[("us-west-2", "111111111111")], &["a/"]),
            rule("team-b", 0, &[("eu-west-1", "111111111111")], &["b/"]),
        ];
        let foreign = rule("x", 0, &[("ap-south-1", "222222222222")], &["legacy/"]).settings;
        let m = merge(&rules, std::slice::from_ref(&foreign), &[], SRC, false);
        let names: Vec<&str> = m.ours.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["team-b", "team-c", "team-a"]);
        assert_eq!(m.document.len(), 4);
        assert_eq!(m.document[3], foreign, "foreign rule kept, after ours");
        assert_eq!(m.verdicts["team-a"], Verdict::Applied { position: 2 });
        // Exclusive drops it; deterministic on repeat.
        let exclusive = merge(&rules, &[foreign], &[], SRC, true);
        assert_eq!(exclusive.document.len(), 3);
        assert_eq!(
            merge(&rules, &[], &[], SRC, false),
            merge(&rules, &[], &[], SRC, false)
        );
    }

    #[test]
    fn a_foreign_rule_identical_to_ours_is_served_by_ours_and_the_document_settles() {
        // Found by the property test: listed twice, the next merge took both for ours and
        // dropped one, so every reconcile would write.
        let ours = rule("ours", 0, &[("us-west-2", "111111111111")], &[]);
        let same = ours.settings.clone();
        let first = merge(
            std::slice::from_ref(&ours),
            std::slice::from_ref(&same),
            &[],
            SRC,
            false,
        );
        assert_eq!(first.document, vec![ours.settings.canonical()]);
        assert_eq!(first.foreign, 0);
        let again = merge(
            std::slice::from_ref(&ours),
            &first.document,
            &first.ours,
            SRC,
            false,
        );
        assert_eq!(again, first);
    }

    #[test]
    fn a_deleted_rule_is_removed_but_a_foreign_one_never_is() {
        let keep = rule("keep", 0, &[("us-west-2", "111111111111")], &["a/"]);
        let gone = rule("gone", 0, &[("eu-west-1", "111111111111")], &["b/"]).settings;
        let foreign = rule("f", 0, &[("ap-south-1", "222222222222")], &[]).settings;
        let previously = vec![
            ("keep".into(), keep.settings.fingerprint()),
            ("gone".into(), gone.fingerprint()),
        ];
        let m = merge(
            std::slice::from_ref(&keep),
            &[keep.settings.clone(), gone, foreign.clone()],
            &previously,
            SRC,
            false,
        );
        assert_eq!(m.document, vec![keep.settings.canonical(), foreign]);
        assert_eq!(m.foreign, 1);
    }

    #[test]
    fn the_eleventh_rule_waits_and_never_evicts_an_applied_one() {
        let rules: Vec<RuleInput> = (0..11)
            .map(|i| {
                rule(
                    &format!("r{i:02}"),
                    0,
                    &[("us-west-2", "111111111111")],
                    &[&format!("t{i}/")],
                )
            })
            .collect();
        let m = merge(&rules, &[], &[], SRC, false);
        assert_eq!(m.document.len(), MAX_RULES);
        assert!(matches!(&m.verdicts["r10"], Verdict::LimitExceeded(msg) if msg.contains("11 rules")));
        // A new rule with a better priority does not push out applied ones.
        let previously = m.ours.clone();
        let mut more = rules.clone();
        more.push(rule(
            "a-urgent",
            -100,
            &[("us-west-2", "111111111111")],
            &["urgent/"],
        ));
        let m2 = merge(&more, &m.document, &previously, SRC, false);
        assert!(matches!(m2.verdicts["a-urgent"], Verdict::LimitExceeded(_)));
        assert_eq!(m2.ours, previously);
        // Removing one lets a waiting rule in.
        let fewer: Vec<RuleInput> = more.into_iter().filter(|r| r.name != "r03").collect();
        let m3 = merge(&fewer, &m2.document, &m2.ours, SRC, false);
        assert_eq!(m3.document.len(), MAX_RULES);
        assert!(m3.ours.iter().any(|(n, _)| n == "a-urgent"));
        assert!(
            matches!(m3.verdicts["r10"], Verdict::LimitExceeded(_)),
            "the newest waits"
        );
    }

    #[test]
    fn the_twenty_sixth_destination_is_refused() {
        let dests: Vec<(String, String)> = (0..25)
            .map(|i| ("us-west-2".to_owned(), format!("{:012}", i + 1)))
            .collect();
        let big = RuleInput {
            name: "big".into(),
            priority: 0,
            suspended: false,
            settings: ReplicationRuleSettings {
                destinations: dests,
                filters: vec![],
            },
        };
        let extra = rule("extra", 1, &[("eu-west-1", "999999999999")], &[]);
        let m = merge(&[big, extra], &[], &[], SRC, false);
        assert!(
            matches!(&m.verdicts["extra"], Verdict::LimitExceeded(msg) if msg.contains("26 distinct destinations"))
        );
        assert_eq!(m.document.len(), 1);
    }

    #[test]
    fn source_destinations_duplicates_and_suspended_rules() {
        let bad = rule("bad", 0, &[SRC], &[]);
        let a = rule("a", 0, &[("us-west-2", "111111111111")], &["x/", "y/"]);
        let a2 = rule("a2", 1, &[("us-west-2", "111111111111")], &["y/", "x/"]);
        let mut frozen = rule("frozen", 2, &[("eu-west-1", "111111111111")], &[]);
        let frozen_old = rule("frozen", 2, &[("ap-south-1", "111111111111")], &[]).settings;
        frozen.suspended = true;
        let previously = vec![("frozen".to_owned(), frozen_old.fingerprint())];
        let m = merge(
            &[bad, a, a2, frozen],
            std::slice::from_ref(&frozen_old),
            &previously,
            SRC,
            false,
        );
        assert!(matches!(m.verdicts["bad"], Verdict::InvalidDestination(_)));
        assert_eq!(
            m.verdicts["a2"],
            Verdict::Duplicate {
                of: "a".into(),
                position: 0
            }
        );
        assert_eq!(m.verdicts["frozen"], Verdict::Suspended);
        assert_eq!(
            m.document,
            vec![m.document[0].clone(), frozen_old],
            "the suspended rule keeps its old entry"
        );
    }

    #[test]
    fn documents_compare_semantically() {
        let a = rule("a", 0, &[("us-west-2", "1"), ("eu-west-1", "2")], &["x/", "y/"]).settings;
        let b = rule("a", 0, &[("eu-west-1", "2"), ("us-west-2", "1")], &["y/", "x/"]).settings;
        assert!(same_document(std::slice::from_ref(&a), std::slice::from_ref(&b)));
        assert!(!same_document(&[a.clone(), b.clone()], &[a]));
    }
}
