//! Pure: a PullThroughCacheRule's decisions: the rule ECR should hold, what to do about the rule
//! ECR holds, its credentials secret (name, body, owner, whether it is in sync), the status and
//! the events. No I/O (see [`crate::decide`]).

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Resource, ResourceExt};

use crate::api::v1alpha1::{CREDENTIAL_SECRET_PREFIX, PullThroughCacheRule, PullThroughCacheRuleStatus};
use crate::api::{OWNER_TAG, RECONCILE_REQUESTED_AT};
use crate::backend::{CacheRuleSettings, CacheRuleValidation, RemoteCacheRule};
use crate::decide::Note;
use crate::error::{Error, Result};
use crate::status::{Outcome, summarize};

/// Pure: the Secrets Manager name of the secret the operator keeps from `credentialsSecretRef`:
/// `ecr-pullthroughcache/<secretName, else the object's name>`.
pub fn secret_name(rule: &PullThroughCacheRule) -> Option<String> {
    let r = rule.spec.credentials_secret_ref.as_ref()?;
    let name = r.secret_name.clone().unwrap_or_else(|| rule.name_any());
    Some(format!("{CREDENTIAL_SECRET_PREFIX}{name}"))
}

/// Pure: the owner tag the operator puts on a secret it creates: `<cluster-id>/pullthroughcacherule/<name>`.
pub fn owner_tags(cluster_id: &str, rule: &PullThroughCacheRule) -> BTreeMap<String, String> {
    BTreeMap::from([(
        OWNER_TAG.to_owned(),
        format!("{cluster_id}/pullthroughcacherule/{}", rule.name_any()),
    )])
}

/// Pure: whether a secret with these tags was created by this object.
pub fn owns_secret(tags: &BTreeMap<String, String>, cluster_id: &str, rule: &PullThroughCacheRule) -> bool {
    owner_tags(cluster_id, rule)
        .iter()
        .all(|(k, v)| tags.get(k) == Some(v))
}

/// Pure: the secret's value ECR documents, `{"username": .., "accessToken": ..}`, from the
/// Kubernetes Secret's data. `Err` names what is missing (the Secret is named in the message).
pub fn secret_body(secret: &str, data: &BTreeMap<String, Vec<u8>>) -> Result<String> {
    let text = |key: &str| {
        data.get(key)
            .map(|b| String::from_utf8_lossy(b).trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Error::InvalidSpec(format!(
                    "Secret {secret} (spec.credentialsSecretRef) has no {key} key: it needs username and accessToken"
                ))
            })
    };
    let body = serde_json::json!({"username": text("username")?, "accessToken": text("accessToken")?});
    Ok(body.to_string())
}

/// Pure: whether the secret's current value says the same as `desired` (compared as JSON, so key
/// order and spacing do not count).
pub fn secret_in_sync(current: Option<&str>, desired: &str) -> bool {
    let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
    match current {
        Some(c) => parse(c).is_some_and(|c| Some(c) == parse(desired)),
        None => false,
    }
}

/// Pure: the rule ECR should hold. `managed_arn` is the ARN of the secret kept from
/// `credentialsSecretRef`, when there is one.
pub fn desired(rule: &PullThroughCacheRule, managed_arn: Option<&str>) -> CacheRuleSettings {
    let spec = &rule.spec;
    CacheRuleSettings {
        prefix: spec.ecr_repository_prefix.trim_end_matches('/').to_owned(),
        upstream_registry: spec.upstream_registry.as_str().to_owned(),
        upstream_url: spec.upstream_registry_url.clone(),
        upstream_prefix: spec.upstream_repository_prefix.clone(),
        credential_arn: spec.credential_arn.clone().or(managed_arn.map(str::to_owned)),
        custom_role_arn: spec.custom_role_arn.clone(),
    }
}

/// What to do about the rule ECR holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Create,
    /// The credentials or the role differ: UpdatePullThroughCacheRule.
    Update,
    InSync,
}

/// Pure: the plan, or `Conflict` when ECR holds a rule of that prefix for another upstream (ECR
/// cannot change a rule's upstream: someone else's rule, or the object was edited around its
/// immutability rules).
pub fn plan(remote: Option<&RemoteCacheRule>, desired: &CacheRuleSettings) -> Result<Plan> {
    let Some(remote) = remote else {
        return Ok(Plan::Create);
    };
    let upstream_prefix = desired.upstream_prefix.as_deref().unwrap_or("ROOT");
    let same_upstream = remote.upstream_url == desired.upstream_url
        && remote
            .upstream_registry
            .as_deref()
            .is_none_or(|u| u == desired.upstream_registry)
        && remote.upstream_prefix.as_deref().unwrap_or("ROOT") == upstream_prefix;
    if !same_upstream {
        return Err(Error::Conflict(format!(
            "ECR already holds a pull-through cache rule for prefix {} with upstream {} ({}); ECR cannot change a rule's upstream: delete that rule or choose another ecrRepositoryPrefix",
            remote.prefix,
            remote.upstream_url,
            remote.upstream_registry.as_deref().unwrap_or("unknown kind"),
        )));
    }
    if remote.credential_arn != desired.credential_arn || remote.custom_role_arn != desired.custom_role_arn {
        Ok(Plan::Update)
    } else {
        Ok(Plan::InSync)
    }
}

/// Pure: a failed validation is the object's error (Stalled, `UpstreamInvalid`).
pub fn check_validation(v: &CacheRuleValidation) -> Result<()> {
    if v.valid {
        return Ok(());
    }
    Err(Error::UpstreamInvalid(format!(
        "ECR cannot reach the upstream registry with this rule's credentials: {}",
        v.failure
            .as_deref()
            .unwrap_or("ValidatePullThroughCacheRule says it is not valid")
    )))
}

/// Pure: `Conflict` when another PullThroughCacheRule holds what `rule` names (see
/// [`super::claims`]): an older one of the same registry (`place` gives a Registry's name the
/// identity of the registry it reaches) with the same prefix, or with the same Secrets Manager
/// secret for its credentials.
pub fn claimed(
    rule: &PullThroughCacheRule,
    all: &[PullThroughCacheRule],
    place: impl Fn(&str) -> String,
) -> Result<()> {
    let here = place(&rule.spec.registry_ref.name);
    let same_place = |r: &PullThroughCacheRule| place(&r.spec.registry_ref.name) == here;
    let prefix = desired(rule, None).prefix;
    if let Some(holder) =
        super::claims::holder(rule, all, |r| same_place(r) && desired(r, None).prefix == prefix)
    {
        return Err(Error::Conflict(format!(
            "PullThroughCacheRule {} (older) already holds the pull-through cache rule for prefix {prefix}/ of {here}; delete one of the two objects or choose another ecrRepositoryPrefix",
            holder.name_any()
        )));
    }
    if let Some(secret) = secret_name(rule)
        && let Some(holder) = super::claims::holder(rule, all, |r| {
            same_place(r) && secret_name(r).as_ref() == Some(&secret)
        })
    {
        return Err(Error::Conflict(format!(
            "PullThroughCacheRule {} (older) already keeps Secrets Manager secret {secret} of {here} from its credentialsSecretRef; set spec.credentialsSecretRef.secretName to another name",
            holder.name_any()
        )));
    }
    Ok(())
}

/// Pure: `Conflict` when the Secrets Manager secret carries the owner tag of another object (of
/// this cluster or another): its value is that object's to write. A secret without the tag (made
/// by hand for this rule) is written.
pub fn check_secret_owner(
    tags: &BTreeMap<String, String>,
    cluster_id: &str,
    rule: &PullThroughCacheRule,
    name: &str,
) -> Result<()> {
    match tags.get(OWNER_TAG) {
        Some(owner) if !owns_secret(tags, cluster_id, rule) => Err(Error::Conflict(format!(
            "Secrets Manager secret {name} belongs to {owner} (its {OWNER_TAG} tag); set spec.credentialsSecretRef.secretName to another name"
        ))),
        _ => Ok(()),
    }
}

/// The credentials secret kept from `credentialsSecretRef`, as this reconcile left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedSecret {
    pub arn: String,
    /// The operator created it (deleting the object deletes it).
    pub created_by_operator: bool,
    /// This reconcile created it or wrote a new value.
    pub written: bool,
}

/// What a successful sync found and did.
#[derive(Clone, Debug, PartialEq)]
pub struct Synced {
    pub remote: RemoteCacheRule,
    pub plan: Plan,
    pub secret: Option<ManagedSecret>,
    pub validation: CacheRuleValidation,
}

/// Pure: `status.created`: who created the rule, as recorded; a rule this reconcile created is
/// ours, a rule found without a record is not.
pub fn created_by_operator(prev: &PullThroughCacheRuleStatus, plan: &Plan) -> bool {
    *plan == Plan::Create || prev.created == Some(true)
}

fn time(t: Option<SystemTime>) -> Option<Time> {
    crate::status::stored_time(t?)
}

fn reconcile_requested(rule: &PullThroughCacheRule) -> Option<String> {
    rule.annotations().get(RECONCILE_REQUESTED_AT).cloned()
}

/// Pure: the status after this outcome. A failure keeps what was last observed of the rule.
pub fn next_status(
    rule: &PullThroughCacheRule,
    outcome: &Result<Synced>,
    now: &Time,
) -> PullThroughCacheRuleStatus {
    let prev = rule.status.clone().unwrap_or_default();
    let generation = rule.meta().generation;
    match outcome {
        Ok(s) => {
            let message = format!(
                "Pull-through cache rule {}/ caches {} ({})",
                s.remote.prefix,
                s.remote.upstream_url,
                rule.spec.upstream_registry.as_str()
            );
            PullThroughCacheRuleStatus {
                observed_generation: generation,
                conditions: summarize(&prev.conditions, generation, &Outcome::InSync(message), now),
                created_at: time(s.remote.created_at).or(prev.created_at.clone()),
                registry_id: Some(s.remote.registry_id.clone()).filter(|r| !r.is_empty()),
                created: Some(created_by_operator(&prev, &s.plan)),
                upstream_valid: Some(if s.validation.valid { "True" } else { "False" }.to_owned()),
                upstream_failure: s.validation.failure.clone(),
                credential_arn: s.remote.credential_arn.clone(),
                secret_created: s.secret.as_ref().map(|m| m.created_by_operator),
                last_handled_reconcile_at: reconcile_requested(rule),
            }
        }
        Err(e) => {
            let (upstream_valid, upstream_failure) = match e {
                Error::UpstreamInvalid(m) => (Some("False".to_owned()), Some(m.clone())),
                _ => (prev.upstream_valid.clone(), prev.upstream_failure.clone()),
            };
            PullThroughCacheRuleStatus {
                observed_generation: generation,
                conditions: summarize(&prev.conditions, generation, &Outcome::Failed(e), now),
                upstream_valid,
                upstream_failure,
                last_handled_reconcile_at: reconcile_requested(rule),
                ..prev
            }
        }
    }
}

/// Pure: the Normal event of a sync that changed something.
pub fn event(s: &Synced) -> Option<Note> {
    let secret = s.secret.as_ref().filter(|m| m.written);
    match (&s.plan, secret) {
        (Plan::Create, _) => Some((
            "Created",
            format!(
                "Created pull-through cache rule {}/ for {}",
                s.remote.prefix, s.remote.upstream_url
            ),
        )),
        (Plan::Update, _) => Some((
            "Updated",
            format!(
                "Updated the credentials of pull-through cache rule {}/",
                s.remote.prefix
            ),
        )),
        (Plan::InSync, Some(m)) => Some((
            "Updated",
            format!(
                "Wrote the upstream credentials to Secrets Manager secret {}",
                m.arn
            ),
        )),
        (Plan::InSync, None) => None,
    }
}

#[cfg(test)]
mod tests;
