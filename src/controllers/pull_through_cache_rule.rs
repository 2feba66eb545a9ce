//! PullThroughCacheRule: one ECR pull-through cache rule of a Registry, and the Secrets Manager
//! secret kept from its `credentialsSecretRef`. Wiring and I/O only; the decisions are in
//! [`crate::decide::pull_through_cache_rule`].
//!
//! Each reconcile reads the Kubernetes Secret (one GET; there is no cluster-wide Secret watch, so
//! a change is picked up at the next re-check, `spec.interval`), the Secrets Manager secret and
//! the rule, writes only what differs, and asks ECR to validate the rule.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Controller;
use secrecy::{ExposeSecret, SecretString};

use super::context::{Context, object_key};
use super::driver::{self, Note, Reconciler};
use super::triggers;
use crate::api::v1alpha1::{PullThroughCacheRule, PullThroughCacheRuleStatus};
use crate::backend::{RegistryBackend, Target};
use crate::decide::pull_through_cache_rule::{
    ManagedSecret, Plan, Synced, check_secret_owner, check_validation, claimed, desired, event, next_status,
    owner_tags, owns_secret, plan, secret_body, secret_in_sync, secret_name,
};
use crate::error::{Error, Result};

pub const CONTROLLER: &str = "pull-through-cache";

/// Runs the PullThroughCacheRule controller until shutdown.
pub async fn controller<B: RegistryBackend>(
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (store, own) = triggers::primary::<PullThroughCacheRuleController, B>(&ctx, triggers::own);
    let registries = triggers::registry_changes(&ctx, triggers::registry);
    // When an object goes (or changes), the others naming its prefix or secret may now hold it.
    let siblings = triggers::dependency::<PullThroughCacheRule, B>(&ctx, triggers::own);
    let by_sibling = store.clone();
    let controller = Controller::for_stream(own, store.clone())
        .watches_stream(registries, move |registry| {
            triggers::users_of(&store, &registry, |r: &PullThroughCacheRule, name| {
                r.spec.registry_ref.name == name
            })
        })
        .watches_stream(siblings, move |changed| {
            triggers::siblings(&by_sibling, &changed, |r: &PullThroughCacheRule| {
                let prefix = desired(r, None).prefix;
                [Some(prefix), secret_name(r)].into_iter().flatten().collect()
            })
        });
    driver::run::<PullThroughCacheRuleController, B>(controller, ctx, shutdown).await;
}

/// The PullThroughCacheRule controller.
pub struct PullThroughCacheRuleController;

impl Reconciler for PullThroughCacheRuleController {
    type Kind = PullThroughCacheRule;
    type Status = PullThroughCacheRuleStatus;
    type Synced = Synced;
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: bool = true;

    fn api(client: &kube::Client, _: &PullThroughCacheRule) -> Api<PullThroughCacheRule> {
        Api::all(client.clone())
    }

    fn suspended(rule: &PullThroughCacheRule) -> bool {
        rule.spec.suspend
    }

    fn stored_status(rule: &PullThroughCacheRule) -> Option<PullThroughCacheRuleStatus> {
        rule.status.clone()
    }

    async fn sync<B: RegistryBackend>(rule: &PullThroughCacheRule, ctx: &Context<B>) -> Result<Synced> {
        let resolved = ctx.resolve(&rule.spec.registry_ref.name, None, None).await?;
        // An older object naming the same prefix or secret holds it: nothing is written.
        claimed(rule, &listed(ctx).await?, |name| ctx.place_of(name))?;
        let target = &resolved.target;
        let secret = sync_secret(rule, ctx, target).await?;
        let want = desired(rule, secret.as_ref().map(|s| s.arn.as_str()));
        let remote = ctx
            .backend
            .describe_cache_rule(target, &want.prefix)
            .await
            .map_err(Error::backend("DescribePullThroughCacheRules"))?;
        let plan = plan(remote.as_ref(), &want)?;
        let remote = match (&plan, remote) {
            (Plan::Create, _) | (_, None) => ctx
                .backend
                .create_cache_rule(target, &want)
                .await
                .map_err(Error::backend("CreatePullThroughCacheRule"))?,
            (Plan::Update, Some(mut r)) => {
                ctx.backend
                    .update_cache_rule(target, &want)
                    .await
                    .map_err(Error::backend("UpdatePullThroughCacheRule"))?;
                r.credential_arn = want.credential_arn.clone();
                r.custom_role_arn = want.custom_role_arn.clone();
                r
            }
            (Plan::InSync, Some(r)) => r,
        };
        let validation = ctx
            .backend
            .validate_cache_rule(target, &want.prefix)
            .await
            .map_err(Error::backend("ValidatePullThroughCacheRule"))?;
        check_validation(&validation)?;
        Ok(Synced {
            remote,
            plan,
            secret,
            validation,
        })
    }

    async fn cleanup<B: RegistryBackend>(
        rule: &PullThroughCacheRule,
        ctx: &Context<B>,
    ) -> Result<Option<Note>> {
        let status = rule.status.clone().unwrap_or_default();
        let deletes_rule = status.created == Some(true);
        let deletes_secret = status.secret_created == Some(true);
        if !deletes_rule && !deletes_secret {
            return Ok(None);
        }
        // A Registry that is gone leaves nothing this object could reach: nothing to undo.
        let resolved = match ctx.resolve(&rule.spec.registry_ref.name, None, None).await {
            Ok(r) => r,
            Err(Error::DependencyNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let target = &resolved.target;
        let prefix = desired(rule, None).prefix;
        // A rule another object holds stays (its `created` was recorded before that object came).
        let held_elsewhere = claimed(rule, &listed(ctx).await?, |name| ctx.place_of(name)).is_err();
        let mut removed = Vec::new();
        if deletes_rule
            && !held_elsewhere
            && ctx
                .backend
                .delete_cache_rule(target, &prefix)
                .await
                .map_err(Error::backend("DeletePullThroughCacheRule"))?
        {
            removed.push(format!("pull-through cache rule {prefix}/"));
        }
        if deletes_secret
            && let Some(name) = secret_name(rule)
            && let Some(found) = ctx
                .backend
                .get_secret(target, &name)
                .await
                .map_err(Error::backend("DescribeSecret"))?
            // Only the secret this object created, as its tag says.
            && owns_secret(&found.tags, &ctx.tunables.cluster_id, rule)
            && ctx
                .backend
                .delete_secret(target, &found.arn)
                .await
                .map_err(Error::backend("DeleteSecret"))?
        {
            removed.push(format!("Secrets Manager secret {name}"));
        }
        Ok((!removed.is_empty()).then(|| ("Deleted", format!("Deleted {}", removed.join(" and ")))))
    }

    fn next_status(
        rule: &PullThroughCacheRule,
        outcome: &Result<Synced>,
        now: &Time,
    ) -> PullThroughCacheRuleStatus {
        next_status(rule, outcome, now)
    }

    fn event(_: &PullThroughCacheRule, synced: &Synced) -> Option<Note> {
        event(synced)
    }

    fn requeue<B: RegistryBackend>(rule: &PullThroughCacheRule, _: &Synced, ctx: &Context<B>) -> Duration {
        ctx.interval(rule.spec.interval.as_ref(), &object_key(rule))
    }
}

/// I/O: every PullThroughCacheRule, read from the API server (not the watch cache, which may
/// still hold an object that has just gone), to see which one holds a prefix or a secret.
async fn listed<B: RegistryBackend>(ctx: &Context<B>) -> Result<Vec<PullThroughCacheRule>> {
    Ok(Api::<PullThroughCacheRule>::all(ctx.client.clone())
        .list(&Default::default())
        .await
        .map_err(Error::kube("list PullThroughCacheRules"))?
        .items)
}

/// I/O: the Secrets Manager secret kept from `credentialsSecretRef`, created or rewritten when it
/// differs from the Kubernetes Secret; `None` without `credentialsSecretRef`.
async fn sync_secret<B: RegistryBackend>(
    rule: &PullThroughCacheRule,
    ctx: &Context<B>,
    target: &Target,
) -> Result<Option<ManagedSecret>> {
    let (Some(r), Some(name)) = (&rule.spec.credentials_secret_ref, secret_name(rule)) else {
        return Ok(None);
    };
    let source = format!("{}/{}", r.namespace, r.name);
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &r.namespace)
        .get_opt(&r.name)
        .await
        .map_err(Error::kube("read the Secret of spec.credentialsSecretRef"))?
        .ok_or_else(|| Error::DependencyNotFound {
            kind: "Secret",
            name: source.clone(),
        })?;
    let data = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let body = SecretString::from(secret_body(&source, &data)?);
    let found = ctx
        .backend
        .get_secret(target, &name)
        .await
        .map_err(Error::backend("DescribeSecret"))?;
    let managed = match found {
        None => {
            let tags = owner_tags(&ctx.tunables.cluster_id, rule);
            let arn = ctx
                .backend
                .create_secret(target, &name, &body, &tags)
                .await
                .map_err(Error::backend("CreateSecret"))?;
            ManagedSecret {
                arn,
                created_by_operator: true,
                written: true,
            }
        }
        Some(found) => {
            check_secret_owner(&found.tags, &ctx.tunables.cluster_id, rule, &name)?;
            let current = found.value.as_ref().map(|v| v.expose_secret().to_owned());
            let in_sync = secret_in_sync(current.as_deref(), body.expose_secret());
            if !in_sync {
                ctx.backend
                    .put_secret_value(target, &found.arn, &body)
                    .await
                    .map_err(Error::backend("PutSecretValue"))?;
            }
            ManagedSecret {
                created_by_operator: owns_secret(&found.tags, &ctx.tunables.cluster_id, rule),
                arn: found.arn,
                written: !in_sync,
            }
        }
    };
    tracing::debug!(rule = %rule.name_any(), secret = %name, written = managed.written, "upstream credentials");
    Ok(Some(managed))
}
