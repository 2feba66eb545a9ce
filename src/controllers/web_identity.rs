//! Web identities, the I/O half: a ServiceAccount (read fresh: a changed role annotation must be
//! seen), a short-lived token for it from the API server (TokenRequest, audience
//! `sts.amazonaws.com`), and the exchange with STS (`AssumeRoleWithWebIdentity`); the session is
//! kept until shortly before it expires (`ctx.sessions`, per role and ServiceAccount). Used by a
//! pull secret's `spec.identity` (a tenant's own role) and a Registry's `spec.auth.webIdentity`
//! (the Registry's identity). The decisions are in `decide::pull_secret::identity`.

use std::time::SystemTime;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use secrecy::SecretString;

use crate::api::v1alpha1::TenantIdentity;
use crate::backend::{Credentials, RegistryBackend, Session, Target};
use crate::controllers::context::Context;
pub use crate::decide::pull_secret::identity::{
    TOKEN_AUDIENCE, TOKEN_SECONDS, check_required, identity_not_found, role_arn, session_name,
};
use crate::error::{Error, Result};

/// A pull secret's `spec.identity`.
const TENANT: &str = "spec.identity";

/// The role `identity` names, checked against its ServiceAccount in `namespace` (one GET);
/// `field` names the spec field in the messages.
pub async fn role_of<B: RegistryBackend>(
    ctx: &Context<B>,
    field: &str,
    namespace: &str,
    identity: &TenantIdentity,
) -> Result<String> {
    let name = &identity.service_account_name;
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    let sa = api
        .get_opt(name)
        .await
        .map_err(Error::kube("read the identity's ServiceAccount"))?
        .ok_or_else(|| identity_not_found(field, namespace, name))?;
    role_arn(identity, namespace, sa.annotations())
}

/// The role a pull secret's `spec.identity` names (see [`role_of`]).
pub async fn tenant_role<B: RegistryBackend>(
    ctx: &Context<B>,
    namespace: &str,
    identity: &TenantIdentity,
) -> Result<String> {
    role_of(ctx, TENANT, namespace, identity).await
}

/// `role`'s session as the ServiceAccount `namespace/name`: the one held, or a new one (one
/// TokenRequest and one STS call in `region`).
pub async fn session_for<B: RegistryBackend>(
    ctx: &Context<B>,
    field: &str,
    (namespace, name): (&str, &str),
    role: &str,
    region: &str,
) -> Result<Session> {
    let subject = format!("{namespace}/{name}");
    let now = SystemTime::now();
    if let Some(session) = ctx.sessions.get(role, &subject, now) {
        return Ok(session);
    }
    let token = service_account_token(ctx, field, namespace, name).await?;
    let session = ctx
        .backend
        .assume_role_with_web_identity(region, role, &session_name(namespace, name), &token)
        .await
        .map_err(Error::backend("AssumeRoleWithWebIdentity"))?;
    ctx.sessions.put(role, &subject, session.clone(), now);
    Ok(session)
}

/// `target` with the credentials of `role` as `identity`'s ServiceAccount in `namespace`.
pub async fn tenant_target<B: RegistryBackend>(
    ctx: &Context<B>,
    namespace: &str,
    identity: &TenantIdentity,
    role: &str,
    target: Target,
) -> Result<Target> {
    let account = (namespace, identity.service_account_name.as_str());
    let session = session_for(ctx, TENANT, account, role, &target.region).await?;
    Ok(Target {
        credentials: Credentials::WebIdentity {
            role_arn: role.to_owned(),
            session: session.keys,
        },
        ..target
    })
}

/// A token for the ServiceAccount `namespace/name` from the API server, for STS only.
async fn service_account_token<B: RegistryBackend>(
    ctx: &Context<B>,
    field: &str,
    namespace: &str,
    name: &str,
) -> Result<SecretString> {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![TOKEN_AUDIENCE.to_owned()],
            expiration_seconds: Some(TOKEN_SECONDS),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    match api
        .create_token_request(name, &PostParams::default(), &request)
        .await
    {
        Ok(answer) => answer
            .status
            .map(|s| SecretString::from(s.token))
            .ok_or_else(|| Error::Internal("the API server answered a TokenRequest without a token".into())),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(identity_not_found(field, namespace, name)),
        Err(e) => Err(Error::kube("request a ServiceAccount token")(e)),
    }
}
