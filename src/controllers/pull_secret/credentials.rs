//! Tokens for a set of registries, rendered into one dockerconfigjson.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::api::v1alpha1::{EcrPublicLogin, PullSecretRegistry, TenantIdentity};
use crate::backend::RegistryBackend;
use crate::backend::ecr_public::{PUBLIC_HOST, public_target};
use crate::controllers::context::Context;
use crate::controllers::web_identity::{check_required, tenant_role, tenant_target};
pub use crate::decide::pull_secret::PullCredentials;
use crate::error::{Error, Result};
use crate::secrets::schedule;

/// Tokens for `registries` (one per region and identity, from the cache), by registry host; the
/// Secret's format renders them ([`crate::decide::pull_secret::format::secret_body`]).
///
/// With `identity` (the object's namespace and `spec.identity`), every token is minted as that
/// ServiceAccount's IAM role; without, a Registry with `requireTenantIdentity` refuses.
pub async fn credentials<B: RegistryBackend>(
    ctx: &Context<B>,
    registries: &[String],
    fraction: f64,
    identity: Option<(&str, &TenantIdentity)>,
    public: Option<&EcrPublicLogin>,
) -> Result<PullCredentials> {
    let now = SystemTime::now();
    for name in registries.iter().chain(public.map(|p| &p.registry)) {
        check_required(ctx.ready_registry(name)?.as_ref(), identity.is_some())?;
    }
    let role = match identity {
        Some((namespace, identity)) => Some(tenant_role(ctx, namespace, identity).await?),
        None => None,
    };
    let mut logins = BTreeMap::new();
    let mut listed = Vec::new();
    let (mut expires_at, mut refreshed_at, mut refresh_at) =
        (None::<SystemTime>, None::<SystemTime>, None::<SystemTime>);
    for name in registries {
        let registry = ctx.ready_registry(name)?;
        let mut target = ctx.target(&registry).await?;
        if let (Some((namespace, identity)), Some(role)) = (identity, &role) {
            target = tenant_target(ctx, namespace, identity, role, target).await?;
        }
        let token = ctx
            .cache
            .token(&target, fraction, now)
            .await
            .map_err(Error::backend("GetAuthorizationToken"))?;
        let status = registry.status.clone().unwrap_or_default();
        let host = status.registry_host.clone().unwrap_or_default();
        ctx.metrics.token_expiry(name, unix(token.expires_at));
        logins.insert(host.clone(), token.token.clone());
        listed.push(PullSecretRegistry {
            name: name.clone(),
            host: Some(host),
        });
        expires_at = Some(expires_at.map_or(token.expires_at, |e| e.min(token.expires_at)));
        refreshed_at = Some(refreshed_at.map_or(token.fetched_at, |r| r.min(token.fetched_at)));
        let next = schedule::refresh_at(token.fetched_at, token.expires_at, fraction, &target.key());
        refresh_at = Some(refresh_at.map_or(next, |r| r.min(next)));
    }
    // public.ecr.aws: ECR Public's own token, one per identity (the cache's key), in us-east-1.
    if let Some(login) = public {
        let registry = ctx.ready_registry(&login.registry)?;
        let mut target = ctx.target(&registry).await?;
        if let (Some((namespace, identity)), Some(role)) = (identity, &role) {
            target = tenant_target(ctx, namespace, identity, role, target).await?;
        }
        let target = public_target(&target);
        let token = ctx
            .cache
            .public_token(&target, fraction, now)
            .await
            .map_err(Error::backend("ecr-public:GetAuthorizationToken"))?;
        ctx.metrics.token_expiry(PUBLIC_HOST, unix(token.expires_at));
        logins.insert(PUBLIC_HOST.to_owned(), token.token.clone());
        listed.push(PullSecretRegistry {
            name: login.registry.clone(),
            host: Some(PUBLIC_HOST.to_owned()),
        });
        expires_at = Some(expires_at.map_or(token.expires_at, |e| e.min(token.expires_at)));
        refreshed_at = Some(refreshed_at.map_or(token.fetched_at, |r| r.min(token.fetched_at)));
        let key = format!("ecr-public|{}", target.key());
        let next = schedule::refresh_at(token.fetched_at, token.expires_at, fraction, &key);
        refresh_at = Some(refresh_at.map_or(next, |r| r.min(next)));
    }
    Ok(PullCredentials {
        logins,
        role_arn: role,
        registries: listed,
        expires_at: expires_at.unwrap_or(now),
        refreshed_at: refreshed_at.unwrap_or(now),
        refresh_at: refresh_at.unwrap_or(now),
    })
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
