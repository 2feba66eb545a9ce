//! The crate error, its class (transient, waiting, stalled) and its reason (a closed set of
//! PascalCase identifiers used as condition reasons, event reasons and metric labels).

use crate::backend::BackendError;
pub use crate::text::{error_chain, truncate};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A reconcile failure. `Display` never repeats the source error; use [`error_chain`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec cannot be realised as written.
    #[error("spec cannot be realised: {0}")]
    InvalidSpec(String),
    /// A Registry, Secret or other object this one needs does not exist yet.
    #[error("{kind} {name:?} not found")]
    DependencyNotFound { kind: &'static str, name: String },
    /// A Registry this one needs exists but is not Ready.
    #[error("{kind} {name:?} is not ready")]
    DependencyNotReady { kind: &'static str, name: String },
    /// A Registry being deleted is still used by these objects: it stays until they are gone.
    #[error("{0}")]
    InUse(String),
    /// The Registry does not allow this object (namespace or name rules).
    #[error("{0}")]
    NotAllowed(String),
    /// The ECR repository belongs to another object (another namespace or cluster).
    #[error(
        "ECR repository {name:?} is owned by {owner}; it is never written by this object. To hand it over, delete that object with deletionPolicy: Retain (which releases it), or, if it is already gone, set spec.takeOverFrom to the owner"
    )]
    OwnedElsewhere { name: String, owner: String },
    /// `adoption: CreateOnly` and the repository already exists.
    #[error("ECR repository {0:?} already exists and adoption is CreateOnly")]
    AlreadyExists(String),
    /// The repository's encryption differs from the spec; ECR cannot change it.
    #[error("{0}")]
    EncryptionMismatch(String),
    /// `managementPolicy: ObserveOnly` and the repository does not exist.
    #[error("ECR repository {0:?} does not exist (managementPolicy ObserveOnly never creates it)")]
    RepositoryNotFound(String),
    /// Deletion refused: the repository still holds images and `forceDelete` is not set.
    #[error(
        "ECR repository {name:?} still holds {images} image(s); set forceDelete: true to delete them, or deletionPolicy: Retain to keep the repository"
    )]
    RepositoryNotEmpty { name: String, images: u64 },
    /// The registry reached with these credentials is not the account in the spec.
    #[error("the credentials reach account {actual}, but spec.accountId is {expected}")]
    AccountMismatch { expected: String, actual: String },
    /// Without `spec.accountId`, the credentials (after an edit of `endpoint` or `auth`) reach
    /// another account than the one this Registry has served: its users are not moved silently.
    #[error(
        "the credentials now reach account {actual}, but this Registry has served account {served} (status.registryId), where the objects that use it live; it does not move them silently. Restore the endpoint or auth that reach {served} (and set spec.accountId: \"{served}\" to pin it), or set spec.accountId: \"{actual}\" to move this Registry and everything that uses it to {actual} (what they made in {served} stays there)"
    )]
    AccountChanged { served: String, actual: String },
    /// A policy document (lifecycle rules, or a repository or registry permissions policy) breaks
    /// an ECR constraint that admission could not check. The message says which policy.
    #[error("{0}")]
    InvalidPolicy(String),
    /// Another object holds what this one wants (e.g. an older LifecyclePolicy).
    #[error("{0}")]
    Conflict(String),
    /// The merged replication configuration would break an ECR limit.
    #[error("{0}")]
    LimitExceeded(String),
    /// A replication destination is invalid (e.g. the source registry itself).
    #[error("{0}")]
    InvalidDestination(String),
    /// A Secret of that name exists and this object does not own it.
    #[error(
        "Secret {0} exists and is not managed by this object; choose another secretName or delete that Secret"
    )]
    SecretExists(String),
    /// ECR returned a token that cannot be rendered.
    #[error("{0}")]
    InvalidToken(String),
    /// The operator could not start (CRDs missing, caches not synced): not about any object.
    #[error("{0}")]
    Startup(String),
    /// A bug in the operator, not the user's spec: retried, and logged at error level.
    #[error("internal error: {0}")]
    Internal(String),
    /// The object has no name or namespace.
    #[error("object has no metadata.{0}")]
    MissingMetadata(&'static str),
    /// An ECR call failed.
    #[error("ECR {operation} failed")]
    Backend {
        operation: &'static str,
        #[source]
        source: BackendError,
    },
    /// A Kubernetes call failed.
    #[error("failed to {action}")]
    Kube {
        action: &'static str,
        #[source]
        source: kube::Error,
    },
}

/// How the controller reacts to an error; maps onto kstatus and the requeue policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retry with per-object exponential backoff. Reconciling=True, Ready=False.
    Transient,
    /// A dependency is not ready yet. Short fixed requeue. Reconciling=True.
    Waiting,
    /// Needs a human (spec, IAM, quota, ownership). Stalled=True, slow re-check.
    Stalled,
}

impl Error {
    /// Whether to retry soon, wait for a dependency, or stop until something changes.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::DependencyNotFound { .. } | Error::DependencyNotReady { .. } | Error::InUse(_) => {
                ErrorClass::Waiting
            }
            Error::Backend { source, .. } => backend_class(source),
            Error::Kube { source, .. } => match source {
                kube::Error::Api(s) if s.code == 403 || s.code == 422 || s.code == 400 => ErrorClass::Stalled,
                _ => ErrorClass::Transient,
            },
            Error::InvalidSpec(_)
            | Error::NotAllowed(_)
            | Error::OwnedElsewhere { .. }
            | Error::AlreadyExists(_)
            | Error::EncryptionMismatch(_)
            | Error::RepositoryNotFound(_)
            | Error::RepositoryNotEmpty { .. }
            | Error::AccountMismatch { .. }
            | Error::AccountChanged { .. }
            | Error::SecretExists(_)
            | Error::LimitExceeded(_)
            | Error::InvalidDestination(_)
            | Error::InvalidPolicy(_)
            | Error::Conflict(_)
            | Error::MissingMetadata(_) => ErrorClass::Stalled,
            Error::InvalidToken(_) | Error::Internal(_) | Error::Startup(_) => ErrorClass::Transient,
        }
    }

    /// Stable PascalCase identifier: condition reason, event reason and `reason` metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::DependencyNotFound { .. } | Error::DependencyNotReady { .. } => "DependencyNotReady",
            Error::InUse(_) => "InUse",
            Error::NotAllowed(_) => "NotAllowed",
            Error::OwnedElsewhere { .. } => "OwnedElsewhere",
            Error::AlreadyExists(_) => "AlreadyExists",
            Error::EncryptionMismatch(_) => "EncryptionMismatch",
            Error::RepositoryNotFound(_) => "RepositoryNotFound",
            Error::RepositoryNotEmpty { .. } => "RepositoryNotEmpty",
            Error::AccountMismatch { .. } | Error::AccountChanged { .. } => "AccountMismatch",
            Error::SecretExists(_) => "SecretExists",
            Error::LimitExceeded(_) => "LimitExceeded",
            Error::InvalidPolicy(_) => "InvalidPolicy",
            Error::Conflict(_) => "Conflict",
            Error::InvalidDestination(_) => "InvalidDestination",
            Error::InvalidToken(_) => "InvalidToken",
            Error::Internal(_) => "InternalError",
            Error::Startup(_) => "StartupFailed",
            Error::MissingMetadata(_) => "InvalidSpec",
            Error::Backend { source, .. } => source.reason(),
            Error::Kube { source, .. } => match source {
                kube::Error::Api(s) if s.code == 403 => "KubernetesForbidden",
                kube::Error::Api(s) if s.code == 409 => "KubernetesConflict",
                _ => "KubernetesError",
            },
        }
    }

    /// Wraps a backend error with the ECR operation that failed.
    pub fn backend(operation: &'static str) -> impl FnOnce(BackendError) -> Error {
        move |source| Error::Backend { operation, source }
    }

    /// Wraps a Kubernetes error with what the controller was doing.
    pub fn kube(action: &'static str) -> impl FnOnce(kube::Error) -> Error {
        move |source| Error::Kube { action, source }
    }
}

/// The class of an ECR failure: requeue and kstatus policy, so it lives here, not in the backend
/// (which stays a plain domain taxonomy).
fn backend_class(e: &BackendError) -> ErrorClass {
    match e {
        BackendError::AccessDenied(_)
        | BackendError::Rejected(_)
        | BackendError::QuotaExceeded(_)
        | BackendError::NotEmpty(_) => ErrorClass::Stalled,
        // NotFound and AlreadyExists surface only when ECR changed under a reconcile (deleted or
        // created meanwhile): the next attempt sees the new state.
        BackendError::Throttled(_)
        | BackendError::Unavailable(_)
        | BackendError::Credentials(_)
        | BackendError::NotFound(_)
        | BackendError::AlreadyExists(_) => ErrorClass::Transient,
    }
}

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    fn from(e: kube::runtime::finalizer::Error<Error>) -> Self {
        use kube::runtime::finalizer::Error as F;
        match e {
            F::ApplyFailed(e) | F::CleanupFailed(e) => e,
            F::AddFinalizer(source) => Error::Kube {
                action: "add the finalizer",
                source,
            },
            F::RemoveFinalizer(source) => Error::Kube {
                action: "remove the finalizer",
                source,
            },
            F::UnnamedObject => Error::MissingMetadata("name"),
            F::InvalidFinalizer => Error::InvalidSpec("invalid finalizer name".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_for_kstatus() {
        let cases: Vec<(Error, ErrorClass, &str)> = vec![
            (Error::InvalidSpec("x".into()), ErrorClass::Stalled, "InvalidSpec"),
            (
                Error::DependencyNotReady {
                    kind: "Registry",
                    name: "default".into(),
                },
                ErrorClass::Waiting,
                "DependencyNotReady",
            ),
            (
                Error::DependencyNotFound {
                    kind: "Registry",
                    name: "default".into(),
                },
                ErrorClass::Waiting,
                "DependencyNotReady",
            ),
            (Error::NotAllowed("x".into()), ErrorClass::Stalled, "NotAllowed"),
            (
                Error::OwnedElsewhere {
                    name: "a".into(),
                    owner: "c/ns/b".into(),
                },
                ErrorClass::Stalled,
                "OwnedElsewhere",
            ),
            (
                Error::AccountChanged {
                    served: "1".into(),
                    actual: "2".into(),
                },
                ErrorClass::Stalled,
                "AccountMismatch",
            ),
            (
                Error::AlreadyExists("a".into()),
                ErrorClass::Stalled,
                "AlreadyExists",
            ),
            (
                Error::RepositoryNotEmpty {
                    name: "a".into(),
                    images: 3,
                },
                ErrorClass::Stalled,
                "RepositoryNotEmpty",
            ),
            (
                Error::backend("CreateRepository")(BackendError::Throttled("slow down".into())),
                ErrorClass::Transient,
                "Throttled",
            ),
            (
                Error::backend("CreateRepository")(BackendError::AccessDenied("no".into())),
                ErrorClass::Stalled,
                "AccessDenied",
            ),
            (
                Error::backend("CreateRepository")(BackendError::QuotaExceeded("limit".into())),
                ErrorClass::Stalled,
                "QuotaExceeded",
            ),
            (
                Error::backend("CreateRepository")(BackendError::Unavailable("500".into())),
                ErrorClass::Transient,
                "EcrUnavailable",
            ),
        ];
        for (err, class, reason) in cases {
            assert_eq!(err.class(), class, "{err}");
            assert_eq!(err.reason(), reason, "{err}");
        }
    }

    #[test]
    fn error_chain_joins_sources_without_repeating_them() {
        let err = Error::backend("PutImageTagMutability")(BackendError::Rejected("bad value".into()));
        assert_eq!(
            error_chain(&err),
            "ECR PutImageTagMutability failed: request rejected: bad value"
        );
    }

    #[test]
    fn every_backend_error_has_a_class_and_a_reason() {
        let cases = [
            (
                BackendError::AccessDenied("x".into()),
                ErrorClass::Stalled,
                "AccessDenied",
            ),
            (
                BackendError::Rejected("x".into()),
                ErrorClass::Stalled,
                "EcrRejected",
            ),
            (
                BackendError::QuotaExceeded("x".into()),
                ErrorClass::Stalled,
                "QuotaExceeded",
            ),
            (
                BackendError::NotEmpty("x".into()),
                ErrorClass::Stalled,
                "RepositoryNotEmpty",
            ),
            (
                BackendError::Throttled("x".into()),
                ErrorClass::Transient,
                "Throttled",
            ),
            (
                BackendError::Unavailable("x".into()),
                ErrorClass::Transient,
                "EcrUnavailable",
            ),
            (
                BackendError::Credentials("x".into()),
                ErrorClass::Transient,
                "CredentialsUnavailable",
            ),
            (
                BackendError::NotFound("x".into()),
                ErrorClass::Transient,
                "EcrNotFound",
            ),
            (
                BackendError::AlreadyExists("x".into()),
                ErrorClass::Transient,
                "EcrAlreadyExists",
            ),
        ];
        for (source, class, reason) in cases {
            let err = Error::backend("Op")(source);
            assert_eq!((err.class(), err.reason()), (class, reason), "{err}");
        }
    }
}
