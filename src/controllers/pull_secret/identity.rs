//! A pull secret's tenant identity (`spec.identity`), the I/O half: the ServiceAccount (read
//! fresh: a changed role annotation must be seen at once), a short-lived token for it from the
//! API server (TokenRequest, audience `sts.amazonaws.com`), and the exchange with STS
//! (`AssumeRoleWithWebIdentity`); the session is kept until shortly before it expires
//! (`ctx.sessions`). The decisions are in `decide::pull_secret::identity`.

use std::time::SystemTime;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use secrecy::SecretString;

use crate::api::v1alpha1::TenantIdentity;
use crate::backend::{Credentials, RegistryBackend, Target};
use crate::controllers::context::Context;
pub use crate::decide::pull_secret::identity::{
    TOKEN_AUDIENCE, TOKEN_SECONDS, check_required, identity_not_found, role_arn, session_name,
};
use crate::error::{Error, Result};

/// The role `identity` names, checked against its ServiceAccount in `namespace` (one GET).
pub async fn tenant_role<B: RegistryBackend>(
    ctx: &Context<B>,
    namespace: &str,
    identity: &TenantIdentity,
) -> Result<String> {
    let name = &identity.service_account_name;
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    let sa = api
        .get_opt(name)
        .await
        .map_err(Error::kube("read the identity's ServiceAccount"))?
        .ok_or_else(|| identity_not_found(namespace, name))?;
    role_arn(identity, namespace, sa.annotations())
}

/// `target` with the credentials of `role` as `identity`'s ServiceAccount: the session it got
/// before, or a new one (one TokenRequest and one STS call).
pub async fn tenant_target<B: RegistryBackend>(
    ctx: &Context<B>,
    namespace: &str,
    identity: &TenantIdentity,
    role: &str,
    target: Target,
) -> Result<Target> {
    let name = &identity.service_account_name;
    let subject = format!("{namespace}/{name}");
    let now = SystemTime::now();
    let session = match ctx.sessions.get(role, &subject, now) {
        Some(session) => session,
        None => {
            let token = service_account_token(ctx, namespace, name).await?;
            let session = ctx
                .backend
                .assume_role_with_web_identity(&target.region, role, &session_name(namespace, name), &token)
                .await
                .map_err(Error::backend("AssumeRoleWithWebIdentity"))?;
            ctx.sessions.put(role, &subject, session.clone(), now);
            session
        }
    };
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
        Err(kube::Error::Api(s)) if s.code == 404 => Err(identity_not_found(namespace, name)),
        Err(e) => Err(Error::kube("request a ServiceAccount token")(e)),
    }
}
