//! Pure: a RepositoryCreationTemplate's decisions: the template ECR should hold (its lifecycle
//! rules checked by the LifecyclePolicy validator, its policy by the permissions-policy length
//! rule), whether ECR's template is in sync (policies compared semantically), the status and the
//! events. No I/O (see [`crate::decide`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Resource, ResourceExt};

use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::v1alpha1::{
    EncryptionType, RepositoryCreationTemplate, RepositoryCreationTemplateStatus, TagMutability,
};
use crate::backend::{EncryptionSettings, Mutability, RemoteTemplate, TemplateSettings};
use crate::decide::Note;
use crate::error::{Error, Result};
use crate::status::{Outcome, summarize};

/// Pure: the prefix a template names in ECR (`ROOT` or a prefix without its trailing slash).
pub fn prefix(t: &RepositoryCreationTemplate) -> String {
    t.spec.prefix.trim_end_matches('/').to_owned()
}

/// Pure: `Conflict` when an older RepositoryCreationTemplate of the same registry (`place` gives
/// a Registry's name the identity of the registry it reaches) names the same prefix: it holds the
/// template (see [`super::claims`]).
pub fn claimed(
    t: &RepositoryCreationTemplate,
    all: &[RepositoryCreationTemplate],
    place: impl Fn(&str) -> String,
) -> Result<()> {
    let here = place(&t.spec.registry_ref.name);
    let mine = prefix(t);
    let same = |o: &RepositoryCreationTemplate| prefix(o) == mine && place(&o.spec.registry_ref.name) == here;
    match super::claims::holder(t, all, same) {
        Some(holder) => Err(Error::Conflict(format!(
            "RepositoryCreationTemplate {} (older) already holds the creation template for prefix {mine} of {here}; delete one of the two objects or choose another prefix",
            holder.name_any()
        ))),
        None => Ok(()),
    }
}

/// What a template's own spec says ECR should hold. `Err(InvalidPolicy)` when its lifecycle
/// rules break an ECR constraint admission cannot check (the LifecyclePolicy validator's
/// message) or its repository policy is too long.
pub fn desired(t: &RepositoryCreationTemplate) -> Result<TemplateSettings> {
    let spec = &t.spec;
    let mut applied_for: Vec<String> = spec.applied_for.iter().map(|a| a.as_ecr().to_owned()).collect();
    applied_for.sort();
    applied_for.dedup();
    let lifecycle_policy = match &spec.lifecycle_rules {
        Some(rules) => {
            let violations = crate::lifecycle::validate::violations(rules);
            if !violations.is_empty() {
                return Err(Error::InvalidPolicy(format!(
                    "spec.lifecycleRules: {}",
                    violations.join("; ")
                )));
            }
            Some(crate::lifecycle::render(rules))
        }
        None => None,
    };
    let repository_policy = match &spec.repository_policy {
        Some(p) => {
            let value = serde_json::Value::Object(p.0.clone());
            if let Some(why) = crate::policy::length_violation(&value) {
                return Err(Error::InvalidPolicy(format!("spec.repositoryPolicy: {why}")));
            }
            Some(value.to_string())
        }
        None => None,
    };
    let mut exclusion_filters = spec.exclusion_filters.clone().unwrap_or_default();
    exclusion_filters.sort();
    let encryption = spec.encryption.as_ref().map_or_else(
        || EncryptionSettings {
            encryption_type: "AES256".into(),
            kms_key: None,
        },
        |e| EncryptionSettings {
            encryption_type: match e.type_ {
                EncryptionType::Aes256 => "AES256",
                EncryptionType::Kms => "KMS",
                EncryptionType::KmsDsse => "KMS_DSSE",
            }
            .into(),
            kms_key: e.kms_key.clone(),
        },
    );
    Ok(TemplateSettings {
        prefix: spec.prefix.trim_end_matches('/').to_owned(),
        applied_for,
        description: spec.description.clone(),
        mutability: Some(match spec.image_tag_mutability {
            TagMutability::Mutable => Mutability::Mutable,
            TagMutability::Immutable => Mutability::Immutable,
            TagMutability::MutableWithExclusion => Mutability::MutableWithExclusion,
            TagMutability::ImmutableWithExclusion => Mutability::ImmutableWithExclusion,
        }),
        exclusion_filters,
        encryption: Some(encryption),
        tags: spec.resource_tags.clone(),
        custom_role_arn: spec.custom_role_arn.clone(),
        repository_policy,
        lifecycle_policy,
    })
}

/// Pure: the settings of ECR's template that differ from `desired`, by name; empty when in sync.
/// What `desired` leaves unset (`description`, `customRoleArn`, the policies) is not compared:
/// it is left as ECR holds it. Policies are compared semantically, never as text.
pub fn drift(
    remote: &TemplateSettings,
    desired: &TemplateSettings,
    rules: Option<&[crate::api::v1alpha1::LifecycleRule]>,
    policy: Option<&serde_json::Value>,
) -> Vec<&'static str> {
    let mut out = Vec::new();
    if remote.applied_for != desired.applied_for {
        out.push("appliedFor");
    }
    if desired.description.is_some() && remote.description != desired.description {
        out.push("description");
    }
    if remote.mutability.unwrap_or(Mutability::Mutable) != desired.mutability.unwrap_or(Mutability::Mutable)
        || remote.exclusion_filters != desired.exclusion_filters
    {
        out.push("imageTagMutability");
    }
    let aes = EncryptionSettings {
        encryption_type: "AES256".into(),
        kms_key: None,
    };
    if remote.encryption.as_ref().unwrap_or(&aes) != desired.encryption.as_ref().unwrap_or(&aes) {
        out.push("encryption");
    }
    if remote.tags != desired.tags {
        out.push("resourceTags");
    }
    if desired.custom_role_arn.is_some() && remote.custom_role_arn != desired.custom_role_arn {
        out.push("customRoleArn");
    }
    if let Some(policy) = policy
        && !remote
            .repository_policy
            .as_deref()
            .is_some_and(|text| crate::policy::same_policy(text, policy))
    {
        out.push("repositoryPolicy");
    }
    if let Some(rules) = rules
        && !remote
            .lifecycle_policy
            .as_deref()
            .is_some_and(|text| crate::lifecycle::same_policy(text, rules))
    {
        out.push("lifecycleRules");
    }
    out
}

/// What to do about ECR's template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Create,
    /// These settings differ.
    Update(Vec<&'static str>),
    InSync,
}

/// Pure: the plan for `t`, given what ECR holds.
pub fn plan(
    t: &RepositoryCreationTemplate,
    remote: Option<&RemoteTemplate>,
    desired: &TemplateSettings,
) -> Plan {
    let Some(remote) = remote else {
        return Plan::Create;
    };
    let policy = t
        .spec
        .repository_policy
        .as_ref()
        .map(|p| serde_json::Value::Object(p.0.clone()));
    let differing = drift(
        &remote.settings,
        desired,
        t.spec.lifecycle_rules.as_deref(),
        policy.as_ref(),
    );
    if differing.is_empty() {
        Plan::InSync
    } else {
        Plan::Update(differing)
    }
}

/// What a successful sync found and did.
#[derive(Clone, Debug, PartialEq)]
pub struct Synced {
    pub remote: RemoteTemplate,
    pub plan: Plan,
}

/// Pure: the status after this outcome. A failure keeps what was last observed.
pub fn next_status(
    t: &RepositoryCreationTemplate,
    outcome: &Result<Synced>,
    now: &Time,
) -> RepositoryCreationTemplateStatus {
    let prev = t.status.clone().unwrap_or_default();
    let generation = t.meta().generation;
    let requested = t.annotations().get(RECONCILE_REQUESTED_AT).cloned();
    match outcome {
        Ok(s) => RepositoryCreationTemplateStatus {
            observed_generation: generation,
            conditions: summarize(
                &prev.conditions,
                generation,
                &Outcome::InSync(format!(
                    "Repository creation template {} applies to {}",
                    s.remote.settings.prefix,
                    s.remote.settings.applied_for.join(", ")
                )),
                now,
            ),
            created_at: s
                .remote
                .created_at
                .and_then(crate::status::stored_time)
                .or(prev.created_at.clone()),
            registry_id: Some(s.remote.registry_id.clone()).filter(|r| !r.is_empty()),
            created: Some(s.plan == Plan::Create || prev.created == Some(true)),
            last_handled_reconcile_at: requested,
        },
        Err(e) => RepositoryCreationTemplateStatus {
            observed_generation: generation,
            conditions: summarize(&prev.conditions, generation, &Outcome::Failed(e), now),
            last_handled_reconcile_at: requested,
            ..prev
        },
    }
}

/// Pure: the Normal event of a sync that changed something.
pub fn event(s: &Synced) -> Option<Note> {
    match &s.plan {
        Plan::Create => Some((
            "Created",
            format!(
                "Created repository creation template {}",
                s.remote.settings.prefix
            ),
        )),
        Plan::Update(what) => Some((
            "Updated",
            format!(
                "Updated repository creation template {}: {}",
                s.remote.settings.prefix,
                what.join(", ")
            ),
        )),
        Plan::InSync => None,
    }
}

#[cfg(test)]
mod tests;
