//! What the controllers need from ECR Public (`public.ecr.aws`), in domain terms.
//!
//! A public registry is not a kind of its own: ECR Public has exactly one registry per AWS
//! account, so it is reached with the identity (and account) of a private `Registry`, always in
//! `us-east-1`, the only region that serves ECR Public's API ([`public_target`]). Its endpoint is
//! the SDK's (`AWS_ENDPOINT_URL_ECR_PUBLIC` overrides it), never the Registry's ECR endpoint
//! override, which names a private ECR endpoint. `ecr/public.rs` is the only code that sees
//! aws-sdk-ecrpublic types.

#[cfg(any(test, feature = "testing"))]
pub mod fake;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::SystemTime;

use super::{AuthToken, BackendResult, Target};

/// The only region that serves ECR Public's API.
pub const PUBLIC_REGION: &str = "us-east-1";

/// The registry host of every public repository.
pub const PUBLIC_HOST: &str = "public.ecr.aws";

/// The ECR Public target of a private registry's target: the same identity, in `us-east-1`.
pub fn public_target(private: &Target) -> Target {
    Target {
        region: PUBLIC_REGION.to_owned(),
        endpoint: private.endpoint.clone(),
        credentials: private.credentials.clone(),
    }
}

/// The account's public registry as DescribeRegistries and GetRegistryCatalogData describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicRegistryInfo {
    pub registry_id: String,
    /// The primary alias (`public.ecr.aws/<alias>`); `None` before the account has one.
    pub alias: Option<String>,
    /// The Gallery's display name of the registry; `None` when it has none.
    pub display_name: Option<String>,
}

/// The gallery catalog data of a public repository, as text (empty: unset). The logo is not here:
/// ECR Public takes it as bytes and answers it as a URL.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PublicCatalog {
    pub description: String,
    pub about_text: String,
    pub usage_text: String,
    /// In the order given.
    pub architectures: Vec<String>,
    /// In the order given.
    pub operating_systems: Vec<String>,
}

/// GetRepositoryCatalogData: the catalog and the logo's URL, when there is a logo.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RemotePublicCatalog {
    pub catalog: PublicCatalog,
    pub logo_url: Option<String>,
}

/// A public repository as ECR Public describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemotePublicRepository {
    pub name: String,
    pub arn: String,
    /// `public.ecr.aws/<alias>/<name>`.
    pub uri: String,
    pub registry_id: String,
    pub created_at: Option<SystemTime>,
}

/// Everything CreateRepository sets in one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPublicRepository {
    pub name: String,
    pub catalog: PublicCatalog,
    /// The logo's bytes, when set.
    pub logo: Option<Vec<u8>>,
    pub tags: BTreeMap<String, String>,
}

/// One change to an existing public repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicChange {
    /// PutRepositoryCatalogData with every text field, and the logo when it is to be (re)sent.
    PutCatalog {
        catalog: PublicCatalog,
        logo: Option<Vec<u8>>,
    },
    TagResource(BTreeMap<String, String>),
    UntagResource(Vec<String>),
    /// The policy document as JSON text.
    SetPolicy(String),
    DeletePolicy,
}

impl PublicChange {
    /// The ECR Public operation this change calls, as the operator names it in metrics and logs.
    pub fn operation(&self) -> &'static str {
        match self {
            PublicChange::PutCatalog { .. } => "ecr-public:PutRepositoryCatalogData",
            PublicChange::TagResource(_) => "ecr-public:TagResource",
            PublicChange::UntagResource(_) => "ecr-public:UntagResource",
            PublicChange::SetPolicy(_) => "ecr-public:SetRepositoryPolicy",
            PublicChange::DeletePolicy => "ecr-public:DeleteRepositoryPolicy",
        }
    }
}

/// The ECR Public capabilities the controllers use. Every method is one ECR Public operation
/// (two for [`EcrPublicBackend::describe_public_registry`]); `target` is a [`public_target`].
pub trait EcrPublicBackend: Send + Sync + 'static {
    /// DescribeRegistries and GetRegistryCatalogData.
    fn describe_public_registry(
        &self,
        target: &Target,
    ) -> impl Future<Output = BackendResult<PublicRegistryInfo>> + Send;

    /// DescribeRepositories for one name; `None` when it does not exist.
    fn describe_public_repository(
        &self,
        target: &Target,
        name: &str,
    ) -> impl Future<Output = BackendResult<Option<RemotePublicRepository>>> + Send;

    /// CreateRepository with its catalog data and tags.
    fn create_public_repository(
        &self,
        target: &Target,
        repo: &NewPublicRepository,
    ) -> impl Future<Output = BackendResult<RemotePublicRepository>> + Send;

    /// GetRepositoryCatalogData.
    fn get_public_catalog(
        &self,
        target: &Target,
        name: &str,
    ) -> impl Future<Output = BackendResult<RemotePublicCatalog>> + Send;

    /// ListTagsForResource.
    fn list_public_tags(
        &self,
        target: &Target,
        arn: &str,
    ) -> impl Future<Output = BackendResult<BTreeMap<String, String>>> + Send;

    /// GetRepositoryPolicy; `None` when the repository has no policy.
    fn get_public_policy(
        &self,
        target: &Target,
        name: &str,
    ) -> impl Future<Output = BackendResult<Option<String>>> + Send;

    /// Applies one change to an existing public repository.
    fn apply_public_change(
        &self,
        target: &Target,
        repo: &RemotePublicRepository,
        change: &PublicChange,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// How many images the repository holds (DescribeImages, all pages).
    fn count_public_images(
        &self,
        target: &Target,
        name: &str,
    ) -> impl Future<Output = BackendResult<u64>> + Send;

    /// DeleteRepository; `Ok(false)` when it was already gone.
    fn delete_public_repository(
        &self,
        target: &Target,
        name: &str,
        force: bool,
    ) -> impl Future<Output = BackendResult<bool>> + Send;

    /// ECR Public's GetAuthorizationToken: a login for `public.ecr.aws`, valid 12 hours.
    fn public_authorization_token(
        &self,
        target: &Target,
    ) -> impl Future<Output = BackendResult<AuthToken>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Credentials;

    #[test]
    fn the_public_target_keeps_the_identity_in_us_east_1() {
        let private = Target {
            region: "eu-west-1".into(),
            endpoint: Some("http://127.0.0.1:5000".into()),
            credentials: Credentials::AssumeRole {
                role_arn: "arn:aws:iam::123456789012:role/r".into(),
                external_id: None,
                session_name: None,
            },
        };
        let public = public_target(&private);
        assert_eq!(public.region, "us-east-1");
        assert_eq!(public.credentials, private.credentials);
        assert_ne!(public.key(), private.key(), "its own client and rate limiter");
    }
}
