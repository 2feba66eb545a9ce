//! Classifies aws-sdk-ecr errors by error code (forward-compatible: unmodelled codes such as
//! `ThrottlingException` arrive as `Unhandled` with the code set).

use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};

use crate::backend::BackendError;

/// The domain error for a failed SDK call.
pub fn classify<E>(
    operation: &'static str,
    err: SdkError<E, aws_sdk_ecr::config::http::HttpResponse>,
) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_owned);
    let message = err.message().map(str::to_owned);
    let detail = || {
        let text = match (&code, &message) {
            (Some(c), Some(m)) => format!("{operation}: {c}: {m}"),
            (Some(c), None) => format!("{operation}: {c}"),
            (None, Some(m)) => format!("{operation}: {m}"),
            (None, None) => match status {
                Some(s) => format!("{operation}: HTTP {s}"),
                None => format!("{operation}: {}", crate::text::error_chain(&err)),
            },
        };
        crate::text::truncate(text, 512)
    };
    match (&err, code.as_deref()) {
        (SdkError::ServiceError(_), Some(code)) => by_code(code, status, detail()),
        (SdkError::ServiceError(_), None) => match status {
            Some(429) => BackendError::Throttled(detail()),
            Some(401 | 403) => BackendError::AccessDenied(detail()),
            Some(s) if s < 500 => BackendError::Rejected(detail()),
            _ => BackendError::Unavailable(detail()),
        },
        (SdkError::DispatchFailure(d), _) if d.is_user() => BackendError::Credentials(detail()),
        (SdkError::ConstructionFailure(_), _) => BackendError::Credentials(detail()),
        _ => BackendError::Unavailable(detail()),
    }
}

/// Error codes to domain errors; see docs/dev/ecr-facts.md §5.1 and §5.2.
pub fn by_code(code: &str, status: Option<u16>, detail: String) -> BackendError {
    match code {
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        // STS AssumeRoleWithWebIdentity: the role does not trust that ServiceAccount, or the
        // token is not one the role's identity provider accepts.
        | "AccessDenied"
        | "InvalidIdentityToken"
        | "IDPRejectedClaim" => BackendError::AccessDenied(detail),
        "ThrottlingException"
        | "ThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => BackendError::Throttled(detail),
        // A real quota in ECR (repositories, rules, scans), not throttling: retrying does not clear it.
        "LimitExceededException" | "TooManyTagsException" => BackendError::QuotaExceeded(detail),
        "RepositoryNotFoundException"
        | "RepositoryPolicyNotFoundException"
        | "RegistryPolicyNotFoundException"
        | "LifecyclePolicyNotFoundException"
        | "ImageNotFoundException"
        | "PullThroughCacheRuleNotFoundException"
        | "TemplateNotFoundException"
        | "ExclusionNotFoundException"
        | "SigningConfigurationNotFoundException"
        // Secrets Manager: no secret of that name or ARN (or no value yet).
        | "ResourceNotFoundException" => BackendError::NotFound(detail),
        "RepositoryAlreadyExistsException"
        | "PullThroughCacheRuleAlreadyExistsException"
        | "TemplateAlreadyExistsException"
        | "ResourceExistsException" => BackendError::AlreadyExists(detail),
        "RepositoryNotEmptyException" => BackendError::NotEmpty(detail),
        "ServerException"
        | "ServiceUnavailableException"
        | "InternalFailure"
        | "RequestTimeout"
        | "RequestTimeoutException"
        | "IDPCommunicationError" => BackendError::Unavailable(detail),
        _ if status.is_some_and(|s| s >= 500) => BackendError::Unavailable(detail),
        _ => BackendError::Rejected(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_domain_errors() {
        let cases = [
            ("ThrottlingException", Some(400), "Throttled"),
            ("TooManyRequestsException", Some(429), "Throttled"),
            ("ServerException", Some(500), "EcrUnavailable"),
            ("SomethingNew", Some(503), "EcrUnavailable"),
            ("AccessDeniedException", Some(400), "AccessDenied"),
            ("UnrecognizedClientException", Some(403), "AccessDenied"),
            ("AccessDenied", Some(403), "AccessDenied"),
            ("InvalidIdentityToken", Some(400), "AccessDenied"),
            ("IDPRejectedClaim", Some(403), "AccessDenied"),
            ("IDPCommunicationError", Some(400), "EcrUnavailable"),
            ("InvalidParameterException", Some(400), "EcrRejected"),
            ("ValidationException", Some(400), "EcrRejected"),
            ("LimitExceededException", Some(400), "QuotaExceeded"),
            ("RepositoryNotEmptyException", Some(400), "RepositoryNotEmpty"),
            ("RepositoryNotFoundException", Some(400), "EcrNotFound"),
            ("RepositoryAlreadyExistsException", Some(400), "EcrAlreadyExists"),
            ("PullThroughCacheRuleNotFoundException", Some(400), "EcrNotFound"),
            (
                "PullThroughCacheRuleAlreadyExistsException",
                Some(400),
                "EcrAlreadyExists",
            ),
            ("ResourceNotFoundException", Some(400), "EcrNotFound"),
            ("TemplateNotFoundException", Some(400), "EcrNotFound"),
            ("SigningConfigurationNotFoundException", Some(400), "EcrNotFound"),
            ("ExclusionNotFoundException", Some(400), "EcrNotFound"),
            ("TemplateAlreadyExistsException", Some(400), "EcrAlreadyExists"),
            ("ResourceExistsException", Some(400), "EcrAlreadyExists"),
            // A credentialArn whose secret does not exist, or an upstream ECR does not serve.
            ("SecretNotFoundException", Some(400), "EcrRejected"),
            ("UnsupportedUpstreamRegistryException", Some(400), "EcrRejected"),
        ];
        for (code, status, reason) in cases {
            let e = by_code(code, status, code.to_owned());
            assert_eq!(e.reason(), reason, "{code}");
        }
    }
}
