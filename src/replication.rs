//! The replication merge (pure): every ReplicationRule of a registry into ECR's single
//! replication configuration, deterministically, within ECR's limits, keeping rules written by
//! others. The controller (`controllers::replication`) reads, calls [`merge`], writes.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::api::common::{REGION_MESSAGE, is_region};
use crate::backend::ReplicationRuleSettings;

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
        // A region stored before the admission rule: refused here, so it never reaches ECR (which
        // would refuse the whole document, every other rule with it).
        if let Some((region, id)) = r
            .settings
            .destinations
            .iter()
            .find(|(region, _)| !is_region(region))
        {
            verdicts.insert(
                r.name.clone(),
                Verdict::InvalidDestination(format!("destination {region:?}/{id}: {REGION_MESSAGE}")),
            );
            continue;
        }
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

    /// A destination region stored before the admission rule (the old, looser pattern) is refused
    /// for its own rule only; the other rules are applied and ECR never sees it.
    #[test]
    fn a_malformed_destination_region_harms_only_its_own_rule() {
        let typo = rule(
            "typo",
            0,
            &[("us-west-2", "111111111111"), ("uswest2", "111111111111")],
            &[],
        );
        let good = rule("good", 1, &[("eu-west-1", "111111111111")], &[]);
        let m = merge(&[typo, good], &[], &[], SRC, false);
        assert_eq!(
            m.verdicts["typo"],
            Verdict::InvalidDestination(format!("destination \"uswest2\"/111111111111: {REGION_MESSAGE}"))
        );
        assert_eq!(m.verdicts["good"], Verdict::Applied { position: 0 });
        assert_eq!(m.document.len(), 1);
        assert!(
            m.document
                .iter()
                .all(|r| r.destinations.iter().all(|(region, _)| is_region(region)))
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
