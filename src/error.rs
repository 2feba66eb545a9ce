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
    /// The protection rule for images in use cannot be added to a LifecyclePolicy's rules within
    /// ECR's limits: the policy is not put (never put unprotected). The message says why.
    #[error("{0}")]
    ProtectionDoesNotFit(String),
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
    /// ServiceAccounts a PullSecret or ClusterPullSecret names in `serviceAccounts` do not exist:
    /// the Secret is written anyway, and each ServiceAccount gets it when it is created (the
    /// operator watches ServiceAccounts). The message names them.
    #[error("{0}")]
    ServiceAccountNotFound(String),
    /// Namespaces a ClusterPullSecret names in `namespaces.include` do not exist: the others are
    /// served, and each gets the Secret when it is created (the operator watches Namespaces).
    #[error("{0}")]
    NamespaceNotFound(String),
    /// An Argo CD format's Secret was written in a namespace where Argo CD does not run (no
    /// ServiceAccount labelled `app.kubernetes.io/part-of=argocd`): Argo CD reads repository
    /// Secrets only in its own namespace. Reported, not retried on a timer: the ServiceAccount
    /// watch re-queues the object when Argo CD is installed there.
    #[error("{0}")]
    ArgoCdNotFound(String),
    /// The ServiceAccount a pull secret's `spec.identity` names does not exist in its namespace.
    #[error("{0}")]
    IdentityNotFound(String),
    /// A pull secret's identity has no usable IAM role: no `roleArn` and no
    /// `eks.amazonaws.com/role-arn` annotation, or an annotation that is not a role ARN.
    #[error("{0}")]
    InvalidIdentity(String),
    /// A Registry with `requireTenantIdentity` refuses a pull secret without `spec.identity`.
    #[error("{0}")]
    TenantIdentityRequired(String),
    /// ECR does not validate a pull-through cache rule's access to its upstream
    /// (ValidatePullThroughCacheRule): wrong or incomplete credentials, or a role ECR cannot use.
    /// The message carries ECR's reason.
    #[error("{0}")]
    UpstreamInvalid(String),
    /// Repositories a LifecyclePolicy names in `spec.repositories` do not exist in its namespace:
    /// the others get the policy, and each gets it once it exists and is Ready. Not to be
    /// confused with `RepositoryNotFound`, an ECR repository missing under `ObserveOnly`.
    #[error("{0}")]
    NamedRepositoryNotFound(String),
    /// A LifecyclePolicy's `repositorySelector` matches no Repository. Not a failure (the policy
    /// is in force for whatever matches later): reported on a Ready policy as the Ready reason,
    /// with a Warning event when it starts.
    #[error("{0}")]
    NoRepositorySelected(String),
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
    /// A Kubernetes call failed. The message is one sentence built from the API server's answer
    /// ([`kube_message`]): a 403 names who was refused what (verb, resource, namespace) and, for
    /// Secrets, the chart value that grants it.
    #[error("{}", kube_message(.action, .error))]
    Kube {
        action: &'static str,
        /// Deliberately not the `source`: the message already carries what the answer says, and
        /// kube's own `Display` of an API error appends a debug dump of the whole response.
        error: kube::Error,
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
            // Something the object names does not exist yet: it may come later (GitOps applies in
            // any order), and the watches re-queue the object when it does.
            Error::DependencyNotFound { .. }
            | Error::DependencyNotReady { .. }
            | Error::ServiceAccountNotFound(_)
            | Error::NamespaceNotFound(_)
            | Error::ArgoCdNotFound(_)
            | Error::NamedRepositoryNotFound(_)
            | Error::NoRepositorySelected(_)
            | Error::InUse(_) => ErrorClass::Waiting,
            Error::Backend { source, .. } => backend_class(source),
            Error::Kube { error, .. } => match error {
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
            | Error::IdentityNotFound(_)
            | Error::InvalidIdentity(_)
            | Error::TenantIdentityRequired(_)
            | Error::UpstreamInvalid(_)
            | Error::LimitExceeded(_)
            | Error::InvalidDestination(_)
            | Error::InvalidPolicy(_)
            | Error::ProtectionDoesNotFit(_)
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
            Error::ServiceAccountNotFound(_) => "ServiceAccountNotFound",
            Error::NamespaceNotFound(_) => "NamespaceNotFound",
            Error::ArgoCdNotFound(_) => "ArgoCdNotFound",
            Error::IdentityNotFound(_) => "IdentityNotFound",
            Error::InvalidIdentity(_) => "InvalidIdentity",
            Error::TenantIdentityRequired(_) => "TenantIdentityRequired",
            Error::UpstreamInvalid(_) => "UpstreamInvalid",
            Error::NamedRepositoryNotFound(_) => "NamedRepositoryNotFound",
            Error::NoRepositorySelected(_) => "NoRepositorySelected",
            Error::LimitExceeded(_) => "LimitExceeded",
            Error::InvalidPolicy(_) => "InvalidPolicy",
            Error::ProtectionDoesNotFit(_) => "ProtectionDoesNotFit",
            Error::Conflict(_) => "Conflict",
            Error::InvalidDestination(_) => "InvalidDestination",
            Error::InvalidToken(_) => "InvalidToken",
            Error::Internal(_) => "InternalError",
            Error::Startup(_) => "StartupFailed",
            Error::MissingMetadata(_) => "InvalidSpec",
            Error::Backend { source, .. } => source.reason(),
            Error::Kube { error, .. } => match error {
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
        move |error| Error::Kube { action, error }
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

/// The Helm chart value that grants `get` on credential Secrets outside the release namespace.
pub const CREDENTIAL_SECRET_NAMESPACES_VALUE: &str = "rbac.credentialSecretNamespaces";

/// One sentence for a failed Kubernetes call made to `action` (e.g. "read the Registry's
/// credentials Secret"). An answer of the API server is told by its own message, never by kube's
/// debug dump of the response; a 403 from RBAC becomes who was refused which verb on which
/// resource where, with the fix when the chart's RBAC decides it. Only the user name, verb,
/// resource, group, object name and namespace of the answer are repeated: nothing the request
/// carried (tokens) and nothing of an object's data (keys) can be in it.
fn kube_message(action: &str, error: &kube::Error) -> String {
    let kube::Error::Api(status) = error else {
        return format!("failed to {action}: {}", error_chain(error));
    };
    if status.code == 403 {
        return match Forbidden::parse(status) {
            Some(f) => f.sentence(action),
            None => format!("forbidden to {action}: {}", api_message(status)),
        };
    }
    format!("failed to {action}: {}", api_message(status))
}

/// The API server's message, or its code and reason when it sent none.
fn api_message(status: &kube::core::Status) -> String {
    if status.message.is_empty() {
        format!("HTTP {} {}", status.code, status.reason)
            .trim_end()
            .to_owned()
    } else {
        status.message.clone()
    }
}

/// What RBAC refused, read from a 403's message, which the API server writes as
/// `<resource> "<name>" is forbidden: User "<user>" cannot <verb> resource "<resource>" in API
/// group "<group>" in the namespace "<ns>"` (or `... at the cluster scope`), and its details (the
/// object's name).
#[derive(Debug, PartialEq, Eq)]
struct Forbidden<'a> {
    user: &'a str,
    verb: &'a str,
    /// The resource, with `/subresource` when there is one (`registries/status`).
    resource: &'a str,
    group: &'a str,
    /// `None` at the cluster scope.
    namespace: Option<&'a str>,
    /// Empty for a list or a watch.
    name: &'a str,
}

impl<'a> Forbidden<'a> {
    fn parse(status: &'a kube::core::Status) -> Option<Self> {
        let (_, rest) = status.message.split_once("forbidden: User \"")?;
        let (user, rest) = rest.split_once("\" cannot ")?;
        let (verb, rest) = rest.split_once(" resource \"")?;
        let (resource, rest) = rest.split_once("\" in API group \"")?;
        let (group, rest) = rest.split_once('"')?;
        let namespace = if let Some(rest) = rest.strip_prefix(" in the namespace \"") {
            Some(rest.split_once('"')?.0)
        } else if rest.starts_with(" at the cluster scope") {
            None
        } else {
            return None;
        };
        let name = status.details.as_ref().map_or("", |d| d.name.as_str());
        Some(Self {
            user,
            verb,
            resource,
            group,
            namespace,
            name,
        })
    }

    /// `Kubernetes forbids <user> to <verb> <resource> ["<name>"] in namespace "<ns>" (needed to
    /// <action>); <what grants it>`.
    fn sentence(&self, action: &str) -> String {
        let mut what = self.resource.to_owned();
        if !self.group.is_empty() {
            what.push_str(&format!(" (API group {})", self.group));
        }
        if !self.name.is_empty() {
            what.push_str(&format!(" {:?}", self.name));
        }
        let place = match self.namespace {
            Some(ns) => format!("in namespace {ns:?}"),
            None => "cluster-wide".to_owned(),
        };
        let fix = match (self.resource, self.group, self.verb, self.namespace) {
            ("secrets", "", "get", Some(ns)) => format!(
                "the chart grants get on Secrets only in its release namespace and in the namespaces \
                 listed in its value {CREDENTIAL_SECRET_NAMESPACES_VALUE}: add {ns:?} to that list \
                 (or keep the Secret in the release namespace)"
            ),
            ("secrets", "", _, _) => "the chart grants this to the pull-secret controllers only with its \
                 value rbac.pullSecrets=true (the default): set it, or leave pull-secret and \
                 cluster-pull-secret out of operator.controllers"
                .to_owned(),
            _ => "the chart's ClusterRole grants every call the operator makes: check that the \
                 chart and the operator image are the same version and that rbac.create is true"
                .to_owned(),
        };
        format!(
            "Kubernetes forbids {} to {} {what} {place} (needed to {action}); {fix}",
            self.user, self.verb
        )
    }
}

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    fn from(e: kube::runtime::finalizer::Error<Error>) -> Self {
        use kube::runtime::finalizer::Error as F;
        match e {
            F::ApplyFailed(e) | F::CleanupFailed(e) => e,
            F::AddFinalizer(error) => Error::Kube {
                action: "add the finalizer",
                error,
            },
            F::RemoveFinalizer(error) => Error::Kube {
                action: "remove the finalizer",
                error,
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
                Error::ServiceAccountNotFound("x".into()),
                ErrorClass::Waiting,
                "ServiceAccountNotFound",
            ),
            (
                Error::NamespaceNotFound("x".into()),
                ErrorClass::Waiting,
                "NamespaceNotFound",
            ),
            (
                Error::IdentityNotFound("x".into()),
                ErrorClass::Stalled,
                "IdentityNotFound",
            ),
            (
                Error::InvalidIdentity("x".into()),
                ErrorClass::Stalled,
                "InvalidIdentity",
            ),
            (
                Error::TenantIdentityRequired("x".into()),
                ErrorClass::Stalled,
                "TenantIdentityRequired",
            ),
            (
                Error::UpstreamInvalid("x".into()),
                ErrorClass::Stalled,
                "UpstreamInvalid",
            ),
            (
                Error::ArgoCdNotFound("x".into()),
                ErrorClass::Waiting,
                "ArgoCdNotFound",
            ),
            (
                Error::NamedRepositoryNotFound("x".into()),
                ErrorClass::Waiting,
                "NamedRepositoryNotFound",
            ),
            (
                Error::NoRepositorySelected("x".into()),
                ErrorClass::Waiting,
                "NoRepositorySelected",
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

    /// A kube error as the API server answers: its Status object, as JSON.
    fn api_error(status: serde_json::Value) -> kube::Error {
        kube::Error::Api(Box::new(serde_json::from_value(status).unwrap()))
    }

    /// A 403 from RBAC: what the API server sends (message and details as
    /// `errors.NewForbidden` builds them), with a token-like string where a careless message
    /// would pick it up (the response's other fields).
    fn forbidden(message: &str, name: &str, kind: &str) -> kube::Error {
        api_error(serde_json::json!({
            "kind": "Status", "apiVersion": "v1",
            "metadata": {"resourceVersion": "eyJhbGciOiJSUzI1NiJ9.not-a-real-token"},
            "status": "Failure", "message": message, "reason": "Forbidden",
            "details": {
                "name": name, "kind": kind, "uid": "AKIAIOSFODNN7EXAMPLE",
                "causes": [{"reason": "x", "message": "secretAccessKey=wJalrXUtnFEMI/K7MDENG"}],
            },
            "code": 403,
        }))
    }

    #[test]
    fn kubernetes_errors_read_as_one_sentence() {
        let sa = "system:serviceaccount:ecr-system:ecr-operator";
        let cases: Vec<(&str, kube::Error, &str)> = vec![
            // The operator may not read a Registry's static keys: the chart value is the fix.
            (
                "read the Registry's credentials Secret",
                forbidden(
                    &format!(
                        r#"secrets "aws-creds" is forbidden: User "{sa}" cannot get resource "secrets" in API group "" in the namespace "team-a""#
                    ),
                    "aws-creds",
                    "secrets",
                ),
                "Kubernetes forbids system:serviceaccount:ecr-system:ecr-operator to get secrets \"aws-creds\" \
                 in namespace \"team-a\" (needed to read the Registry's credentials Secret); the chart grants \
                 get on Secrets only in its release namespace and in the namespaces listed in its value \
                 rbac.credentialSecretNamespaces: add \"team-a\" to that list (or keep the Secret in the \
                 release namespace)",
            ),
            // RBAC may add why (an authorizer's reason) after the sentence: still parsed.
            (
                "read the Registry's credentials Secret",
                forbidden(
                    &format!(
                        r#"secrets "k" is forbidden: User "{sa}" cannot get resource "secrets" in API group "" in the namespace "ops": RBAC: role.rbac.authorization.k8s.io "ecr-operator" not found"#
                    ),
                    "k",
                    "secrets",
                ),
                "Kubernetes forbids system:serviceaccount:ecr-system:ecr-operator to get secrets \"k\" in \
                 namespace \"ops\" (needed to read the Registry's credentials Secret); the chart grants get \
                 on Secrets only in its release namespace and in the namespaces listed in its value \
                 rbac.credentialSecretNamespaces: add \"ops\" to that list (or keep the Secret in the \
                 release namespace)",
            ),
            // Pull Secrets are written with the pull-secret grants, not the credential ones.
            (
                "apply the pull Secret",
                forbidden(
                    &format!(
                        r#"secrets "ecr-pull" is forbidden: User "{sa}" cannot patch resource "secrets" in API group "" in the namespace "shop""#
                    ),
                    "ecr-pull",
                    "secrets",
                ),
                "Kubernetes forbids system:serviceaccount:ecr-system:ecr-operator to patch secrets \
                 \"ecr-pull\" in namespace \"shop\" (needed to apply the pull Secret); the chart grants this \
                 to the pull-secret controllers only with its value rbac.pullSecrets=true (the default): \
                 set it, or leave pull-secret and cluster-pull-secret out of operator.controllers",
            ),
            // A list at the cluster scope, and a subresource of the operator's own group.
            (
                "list namespaces",
                forbidden(
                    &format!(
                        r#"namespaces is forbidden: User "{sa}" cannot list resource "namespaces" in API group "" at the cluster scope"#
                    ),
                    "",
                    "namespaces",
                ),
                "Kubernetes forbids system:serviceaccount:ecr-system:ecr-operator to list namespaces \
                 cluster-wide (needed to list namespaces); the chart's ClusterRole grants every call the \
                 operator makes: check that the chart and the operator image are the same version and \
                 that rbac.create is true",
            ),
            (
                "apply the status",
                forbidden(
                    &format!(
                        r#"registries.ecr-operator.dev "default" is forbidden: User "{sa}" cannot patch resource "registries/status" in API group "ecr-operator.dev" at the cluster scope"#
                    ),
                    "default",
                    "registries",
                ),
                "Kubernetes forbids system:serviceaccount:ecr-system:ecr-operator to patch registries/status \
                 (API group ecr-operator.dev) \"default\" cluster-wide (needed to apply the status); the \
                 chart's ClusterRole grants every call the operator makes: check that the chart and the \
                 operator image are the same version and that rbac.create is true",
            ),
            // A 403 that is not RBAC's (admission): the API server's own sentence.
            (
                "apply the pull Secret",
                forbidden(
                    r#"secrets "ecr-pull" is forbidden: unable to create new content in namespace shop because it is being terminated"#,
                    "ecr-pull",
                    "secrets",
                ),
                "forbidden to apply the pull Secret: secrets \"ecr-pull\" is forbidden: unable to create new \
                 content in namespace shop because it is being terminated",
            ),
            // Every other answer: the API server's message, or its code and reason.
            (
                "read the Registry",
                api_error(serde_json::json!({
                    "status": "Failure", "message": "registries.ecr-operator.dev \"x\" not found",
                    "reason": "NotFound", "code": 404,
                })),
                "failed to read the Registry: registries.ecr-operator.dev \"x\" not found",
            ),
            (
                "apply the status",
                api_error(serde_json::json!({"status": "Failure", "reason": "InternalError", "code": 500})),
                "failed to apply the status: HTTP 500 InternalError",
            ),
            // Not an answer of the API server: the error and its sources.
            (
                "list ServiceAccounts",
                kube::Error::TlsRequired,
                "failed to list ServiceAccounts: TLS required but no TLS stack selected",
            ),
        ];
        for (action, error, expected) in cases {
            let forbidden = matches!(&error, kube::Error::Api(s) if s.code == 403);
            let err = Error::kube(action)(error);
            let message = error_chain(&err);
            assert_eq!(message, expected);
            for leak in [
                "eyJhbGci",
                "AKIA",
                "secretAccessKey",
                "Status {",
                "Some(",
                "ApiError",
                "\n",
            ] {
                assert!(!message.contains(leak), "{leak:?} in {message:?}");
            }
            if forbidden {
                assert_eq!(
                    (err.class(), err.reason()),
                    (ErrorClass::Stalled, "KubernetesForbidden")
                );
            }
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
