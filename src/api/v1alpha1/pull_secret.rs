//! `PullSecret` and `ClusterPullSecret`: Secrets with ECR credentials (image pull secrets, or
//! Argo CD repository Secrets), refreshed before the 12-hour ECR token expires.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::interval::Interval;

/// A `kubernetes.io/dockerconfigjson` Secret in this namespace holding credentials for one or
/// more ECR registries, kept fresh although ECR tokens expire after 12 hours.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ecr-operator.dev",
    version = "v1alpha1",
    kind = "PullSecret",
    doc = "A kubernetes.io/dockerconfigjson Secret with fresh ECR credentials in this namespace.",
    namespaced,
    status = "PullSecretStatus",
    derive = "PartialEq",
    shortname = "ecrps",
    category = "ecr",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[0].message"
    ),
    printcolumn(name = "Secret", type_ = "string", json_path = ".status.secretName"),
    printcolumn(name = "Expires", type_ = "string", json_path = ".status.expiresAt"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("(has(self.spec.secretName) ? self.spec.secretName : self.metadata.name) == (has(oldSelf.spec.secretName) ? oldSelf.spec.secretName : oldSelf.metadata.name)")
        .message("secretName is immutable: renaming would leave the old Secret and its ServiceAccount entries behind; create another PullSecret for the new name and delete this one")
)]
#[x_kube(validation = Rule::new("self.format == 'dockerconfigjson' || size(self.registries) == 1")
    .message("the Argo CD formats hold one registry per Secret: name exactly one in registries (one object per registry)"))]
#[x_kube(validation = Rule::new("self.format == 'dockerconfigjson' || !has(self.serviceAccounts) || size(self.serviceAccounts) == 0")
    .message("serviceAccounts are only for the dockerconfigjson format: an Argo CD repository Secret is not an image pull secret"))]
#[x_kube(validation = Rule::new("self.format == 'dockerconfigjson' || !has(self.ecrPublic)")
    .message("ecrPublic is only for the dockerconfigjson format: the Argo CD formats hold one registry"))]
#[x_kube(validation = Rule::new("self.format != 'dockerconfigjson' || !has(self.argocd)")
    .message("argocd is only allowed with format argocd-repository or argocd-repo-creds"))]
#[serde(rename_all = "camelCase")]
pub struct PullSecretSpec {
    /// Names of the `Registry` objects to include, one `auths` entry per registry host.
    /// Defaults to `[default]`.
    #[serde(default = "default_registries")]
    #[schemars(length(min = 1, max = 20), inner(length(min = 1, max = 253)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub registries: Vec<String>,

    /// Name of the Secret to write. Defaults to `metadata.name`. Immutable (unset counts as
    /// `metadata.name`): for another name, create another PullSecret and delete this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub secret_name: Option<String>,

    /// ServiceAccounts in this namespace whose `imagePullSecrets` get the Secret; `*` means all.
    /// Only the operator's own entry is ever added or removed. A named ServiceAccount that does
    /// not exist makes the object report `ServiceAccountNotFound` (the Secret is still written)
    /// until it is created. Defaults to none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 100),
        inner(regex(pattern = r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$"))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub service_accounts: Vec<String>,

    /// Fraction of the token lifetime after which it is refreshed (with a little jitter), between
    /// 0.1 and 0.9. Defaults to 0.5 (about 6 hours for ECR's 12-hour tokens).
    #[serde(default = "default_refresh_fraction")]
    #[schemars(range(min = 0.1, max = 0.9))]
    pub refresh_fraction: f64,

    /// How often to re-check the Secret for drift, between 10s and 24h, such as `10m` or
    /// `1h30m`. Defaults to the operator's `--default-interval` (10m). Token refreshes happen on their own schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,

    /// Also log in to ECR Public (`public.ecr.aws`): one more `auths` entry in the same Secret,
    /// from ECR Public's own GetAuthorizationToken (always in us-east-1), made with the identity
    /// of the Registry named here (or `spec.identity`'s role), one token per identity shared by
    /// every object and namespace, refreshed like the others. Authenticated pulls from
    /// `public.ecr.aws` are rate-limited far above anonymous ones. Only with the
    /// `dockerconfigjson` format. Defaults to none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr_public: Option<EcrPublicLogin>,

    /// Mint the tokens as a ServiceAccount of this namespace instead of as the operator: the
    /// operator requests a short-lived token for it (audience `sts.amazonaws.com`), exchanges it
    /// with STS `AssumeRoleWithWebIdentity` for its IAM role, and gets the ECR token with those
    /// credentials, so the Secret can pull only what that role may. The role's trust policy must
    /// allow `system:serviceaccount:<namespace>:<name>` (docs/security.md). Defaults to none (the
    /// Registry's identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<TenantIdentity>,

    /// What the Secret is: `dockerconfigjson` (the default: a `kubernetes.io/dockerconfigjson`
    /// image pull secret), `argocd-repository` (an Argo CD repository Secret for one registry,
    /// or one chart path of it with `argocd.path`) or `argocd-repo-creds` (an Argo CD credential
    /// template for every repository whose URL starts with it). The Argo CD formats hold exactly
    /// one registry and no `serviceAccounts`. Immutable: a Secret's type cannot change.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("format is immutable: a Secret's type cannot change; create another object for the other format and delete this one"))]
    pub format: SecretFormat,

    /// How the Argo CD formats describe the repository (only with `argocd-repository` or
    /// `argocd-repo-creds`). Defaults to a Helm repository with `enableOCI` at the registry host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<ArgoCd>,

    /// Pause: while `true` the Secret is neither refreshed nor changed. Defaults to `false`.
    #[serde(default)]
    pub suspend: bool,
}

/// The same Secret as a `PullSecret`, fanned out to every namespace that matches.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ecr-operator.dev",
    version = "v1alpha1",
    kind = "ClusterPullSecret",
    doc = "A kubernetes.io/dockerconfigjson Secret with fresh ECR credentials in every matching namespace.",
    status = "ClusterPullSecretStatus",
    derive = "PartialEq",
    shortname = "ecrcps",
    category = "ecr",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[0].message"
    ),
    printcolumn(name = "Namespaces", type_ = "integer", json_path = ".status.namespaceCount"),
    printcolumn(name = "Expires", type_ = "string", json_path = ".status.expiresAt"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("(has(self.spec.secretName) ? self.spec.secretName : self.metadata.name) == (has(oldSelf.spec.secretName) ? oldSelf.spec.secretName : oldSelf.metadata.name)")
        .message("secretName is immutable: renaming would leave the old Secrets and their ServiceAccount entries behind; create another ClusterPullSecret for the new name and delete this one")
)]
#[x_kube(validation = Rule::new("has(self.namespaceSelector) || (has(self.namespaces) && has(self.namespaces.include))")
    .message("choose namespaces with namespaceSelector (use {} for every namespace) or namespaces.include"))]
#[x_kube(validation = Rule::new("self.format == 'dockerconfigjson' || size(self.registries) == 1")
    .message("the Argo CD formats hold one registry per Secret: name exactly one in registries (one object per registry)"))]
#[x_kube(validation = Rule::new("self.format == 'dockerconfigjson' || !has(self.serviceAccounts) || size(self.serviceAccounts) == 0")
    .message("serviceAccounts are only for the dockerconfigjson format: an Argo CD repository Secret is not an image pull secret"))]
#[x_kube(validation = Rule::new("self.format == 'dockerconfigjson' || !has(self.ecrPublic)")
    .message("ecrPublic is only for the dockerconfigjson format: the Argo CD formats hold one registry"))]
#[x_kube(validation = Rule::new("self.format != 'dockerconfigjson' || !has(self.argocd)")
    .message("argocd is only allowed with format argocd-repository or argocd-repo-creds"))]
#[serde(rename_all = "camelCase")]
pub struct ClusterPullSecretSpec {
    /// Namespaces whose labels match get the Secret; `{}` selects every namespace except
    /// `kube-system`, `kube-public` and `kube-node-lease`, which get it only when
    /// `namespaces.include` names them. Combined with `namespaces` (a namespace must pass both).
    /// `matchExpressions` may use the operators `In`, `NotIn` (each with at least one value),
    /// `Exists` and `DoesNotExist` (without values), checked at admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = crate::api::selector::admission_rules)]
    pub namespace_selector: Option<LabelSelector>,

    /// Namespaces by name: `include` (when set, only these) and `exclude` (never these). A name
    /// in `include` that does not exist is reported (`NamespaceNotFound`) until it is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<NamespaceFilter>,

    /// Names of the `Registry` objects to include, one `auths` entry per registry host.
    /// Defaults to `[default]`.
    #[serde(default = "default_registries")]
    #[schemars(length(min = 1, max = 20), inner(length(min = 1, max = 253)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub registries: Vec<String>,

    /// Name of the Secret written in each namespace. Defaults to `metadata.name`. Immutable
    /// (unset counts as `metadata.name`): for another name, create another ClusterPullSecret and
    /// delete this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub secret_name: Option<String>,

    /// ServiceAccounts in each namespace whose `imagePullSecrets` get the Secret; `*` means all.
    /// Only the operator's own entry is ever added or removed. A named ServiceAccount missing
    /// from a served namespace makes the object report `ServiceAccountNotFound` (the Secrets are
    /// still written) until it is created. Defaults to none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 100),
        inner(regex(pattern = r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$"))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub service_accounts: Vec<String>,

    /// Fraction of the token lifetime after which it is refreshed, between 0.1 and 0.9.
    /// Defaults to 0.5.
    #[serde(default = "default_refresh_fraction")]
    #[schemars(range(min = 0.1, max = 0.9))]
    pub refresh_fraction: f64,

    /// How often to re-check the Secrets for drift, between 10s and 24h, such as `10m`
    /// or `1h30m`. Defaults to the operator's `--default-interval` (10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,

    /// Also log in to ECR Public (`public.ecr.aws`) in every Secret, as `PullSecret.spec.ecrPublic`
    /// does: one ECR Public token per identity, however many namespaces. Only with the
    /// `dockerconfigjson` format. Defaults to none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr_public: Option<EcrPublicLogin>,

    /// Mint each namespace's tokens as the ServiceAccount of this name in that namespace, with
    /// its IAM role (see `PullSecret.spec.identity`): every served namespace proves itself to STS
    /// with its own ServiceAccount, and a namespace where it does not exist or has no role fails
    /// (`IdentityNotFound`, `InvalidIdentity`) while the others are served. Defaults to none (the
    /// Registries' identity, one Secret content for every namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<TenantIdentity>,

    /// What each Secret is: `dockerconfigjson` (the default: a `kubernetes.io/dockerconfigjson`
    /// image pull secret), `argocd-repository` (an Argo CD repository Secret for one registry,
    /// or one chart path of it with `argocd.path`) or `argocd-repo-creds` (an Argo CD credential
    /// template for every repository whose URL starts with it). The Argo CD formats hold exactly
    /// one registry and no `serviceAccounts`. Immutable: a Secret's type cannot change.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("format is immutable: a Secret's type cannot change; create another object for the other format and delete this one"))]
    pub format: SecretFormat,

    /// How the Argo CD formats describe the repository (only with `argocd-repository` or
    /// `argocd-repo-creds`). Defaults to a Helm repository with `enableOCI` at the registry host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<ArgoCd>,

    /// Pause: while `true` the Secrets are neither refreshed nor changed. Defaults to `false`.
    #[serde(default)]
    pub suspend: bool,
}

/// Namespaces by name.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.include) || !has(self.exclude) || self.include.all(n, !(n in self.exclude))")
    .message("a namespace cannot be both included and excluded"))]
pub struct NamespaceFilter {
    /// Only these namespaces (when set). The only way to serve `kube-system`, `kube-public` or
    /// `kube-node-lease`. A name that does not exist makes the object report `NamespaceNotFound`
    /// until it is created (it then gets the Secret within seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1000), inner(length(min = 1, max = 63)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub include: Option<Vec<String>>,

    /// Never these namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1000), inner(length(min = 1, max = 63)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub exclude: Option<Vec<String>>,
}

/// A ServiceAccount whose IAM role mints a pull secret's tokens.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantIdentity {
    /// Name of the ServiceAccount, in the object's own namespace (another namespace's cannot be
    /// named; for a ClusterPullSecret, in each namespace it serves). One that does not exist
    /// makes the object `Stalled` (`IdentityNotFound`) until it is created.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub service_account_name: String,

    /// ARN of the IAM role to assume, such as `arn:aws:iam::111122223333:role/team-a-pull`.
    /// Defaults to the ServiceAccount's `eks.amazonaws.com/role-arn` annotation (as IRSA reads
    /// it); with neither, the object is `Stalled` (`InvalidIdentity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$"))]
    pub role_arn: Option<String>,
}

/// The kind of Secret a `PullSecret` or `ClusterPullSecret` writes.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SecretFormat {
    /// A `kubernetes.io/dockerconfigjson` Secret: one `auths` entry per registry host (kubelet,
    /// Argo CD Image Updater's `pullsecret:<namespace>/<name>`, any Docker client).
    #[default]
    #[serde(rename = "dockerconfigjson")]
    DockerConfigJson,
    /// An Argo CD repository Secret (label `argocd.argoproj.io/secret-type: repository`).
    #[serde(rename = "argocd-repository")]
    ArgoCdRepository,
    /// An Argo CD repository credential template (label `argocd.argoproj.io/secret-type:
    /// repo-creds`): used by every Argo CD repository whose URL starts with its `url`.
    #[serde(rename = "argocd-repo-creds")]
    ArgoCdRepoCreds,
}

impl SecretFormat {
    /// Whether the Secret is one of Argo CD's (not an image pull secret).
    pub fn is_argocd(self) -> bool {
        self != SecretFormat::DockerConfigJson
    }
}

/// The repository an Argo CD Secret describes.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArgoCd {
    /// `helm` (the default: `type: helm`, `enableOCI: "true"` and the registry host without a
    /// scheme as `url`, for OCI Helm charts in every Argo CD version) or `oci` (Argo CD 3.1 and
    /// later: `type: oci` and `url: oci://<host>[/<path>]`).
    #[serde(default, rename = "type")]
    pub type_: ArgoCdRepositoryType,

    /// A repository path under the registry host, appended to `url` (such as `charts` or
    /// `charts/my-chart`): with `argocd-repository`, the Secret serves that chart path only;
    /// with `argocd-repo-creds`, every repository under it. Defaults to none (the whole registry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[a-z0-9]+([._/-][a-z0-9]+)*$"))]
    pub path: Option<String>,

    /// The Argo CD project the repository is restricted to (`project`). Defaults to none (every
    /// project may use it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub project: Option<String>,

    /// The repository's display name in Argo CD (`name`; `argocd-repository` only). Defaults to
    /// the Secret's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,
}

/// The Argo CD repository type.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ArgoCdRepositoryType {
    /// `type: helm` with `enableOCI: "true"`.
    #[default]
    Helm,
    /// `type: oci` (Argo CD 3.1 and later).
    Oci,
}

fn default_registries() -> Vec<String> {
    vec![crate::api::common::default_registry_name()]
}

fn default_refresh_fraction() -> f64 {
    0.5
}

/// A registry whose credentials are in the Secret.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PullSecretRegistry {
    /// Name of the `Registry` object.
    pub name: String,
    /// The `auths` key in the Secret: the registry host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Observed state of a `PullSecret`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PullSecretStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, and `Reconciling` / `Stalled` while true (kstatus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Name of the Secret written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,

    /// The IAM role the tokens were minted with (`spec.identity`); unset when the Registries'
    /// identity is used. An ARN, never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,

    /// When the earliest token in the Secret expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,

    /// When the Secret's credentials were last refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh_time: Option<Time>,

    /// The registries in the Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<PullSecretRegistry>,

    /// Value of the `ecr-operator.dev/reconcile-requested-at` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// Observed state of a `ClusterPullSecret`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPullSecretStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, and `Reconciling` / `Stalled` while true (kstatus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Name of the Secret written in each namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,

    /// The IAM roles the tokens were minted with (`spec.identity`: each namespace's), sorted, at
    /// most 20; empty when the Registries' identity is used. ARNs, never a secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_arns: Vec<String>,

    /// Number of namespaces that hold an up-to-date Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_count: Option<i32>,

    /// Namespaces where the Secret could not be written (at most 20 listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_namespaces: Vec<String>,

    /// When the earliest token in the Secrets expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,

    /// When the credentials were last refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh_time: Option<Time>,

    /// The registries in the Secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<PullSecretRegistry>,

    /// Value of the `ecr-operator.dev/reconcile-requested-at` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// `spec.ecrPublic`: a login for `public.ecr.aws` in the same Secret.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EcrPublicLogin {
    /// The `Registry` whose identity requests the ECR Public token (ECR Public is reached in
    /// us-east-1 whatever its region). Defaults to `default`.
    #[serde(default = "crate::api::common::default_registry_name")]
    #[schemars(length(min = 1, max = 253))]
    pub registry: String,
}
