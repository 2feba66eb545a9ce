//! `PublicRepository`: one Amazon ECR Public repository (`public.ecr.aws/<alias>/<name>`) and its
//! gallery catalog data.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Adoption, DeletionPolicy, ManagementPolicy};
use crate::api::common::{PolicyDocument, RegistryRef};
use crate::api::interval::Interval;

/// The largest logo ECR Public takes, in bytes.
pub const PUBLIC_LOGO_MAX_BYTES: usize = 512_000;

/// An Amazon ECR Public repository, kept in sync with this spec by ecr-operator.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ecr-operator.dev",
    version = "v1alpha1",
    doc = "An Amazon ECR Public repository (public.ecr.aws) and its gallery catalog data, managed by ecr-operator.",
    kind = "PublicRepository",
    namespaced,
    status = "PublicRepositoryStatus",
    derive = "PartialEq",
    shortname = "ecrpub",
    category = "ecr",
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.conditions[0].message"),
    printcolumn(name = "URI", type_ = "string", json_path = ".status.repositoryUri"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("has(self.spec.name) || (size(self.metadata.name) >= 2 && size(self.metadata.name) <= 205 && !self.metadata.name.contains('.'))")
        .message("the ECR Public name defaults to metadata.name, which must then be 2 to 205 characters without dots; set spec.name"),
    validation = Rule::new("(has(self.spec.name) ? self.spec.name : self.metadata.name) == (has(oldSelf.spec.name) ? oldSelf.spec.name : oldSelf.metadata.name)")
        .message("spec.name is immutable: the ECR Public repository name cannot change; create a new PublicRepository instead")
)]
#[x_kube(validation = Rule::new("!self.forceDelete || self.deletionPolicy == 'Delete'")
    .message("forceDelete requires deletionPolicy: Delete"))]
#[serde(rename_all = "camelCase")]
pub struct PublicRepositorySpec {
    /// The cluster-scoped `Registry` whose identity and account own the public repository. ECR
    /// Public has one registry per account, always served from `us-east-1`, whatever the
    /// Registry's region. Defaults to the Registry named `default`. Immutable.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("registryRef is immutable: to move a public repository to another account, create a new PublicRepository there"))]
    pub registry_ref: RegistryRef,

    /// Name of the repository in ECR Public, e.g. `my-project/web`: 2 to 205 lowercase
    /// characters, words separated by `.`, `_` or `-`, path segments by `/`. Defaults to
    /// `metadata.name`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 205),
        regex(pattern = r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
    )]
    pub name: Option<String>,

    /// What the Amazon ECR Public Gallery shows for the repository. When unset, the operator
    /// leaves the catalog data alone; when set, every text field and list here is authoritative
    /// (an omitted one is made empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_data: Option<CatalogData>,

    /// Tags on the repository. Keys listed here are authoritative; keys the operator set earlier
    /// and that were removed here are removed; other keys are left alone. At most 199 (ECR Public
    /// allows 200; the operator uses one for `ecr-operator.dev/owner`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 199))]
    #[x_kube(validation = Rule::new("self.all(k, size(k) >= 1 && size(k) <= 128 && !k.startsWith('aws:') && !k.startsWith('ecr-operator.dev/'))")
        .message("tag keys must be 1 to 128 characters and must not start with 'aws:' or 'ecr-operator.dev/'"))]
    #[x_kube(validation = Rule::new("self.all(k, size(self[k]) <= 256)")
        .message("tag values must be at most 256 characters"))]
    pub tags: BTreeMap<String, String>,

    /// The repository policy as a YAML object, compared with ECR Public semantically. When unset,
    /// the operator leaves the repository policy alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyDocument>,

    /// What happens in ECR Public when this object is deleted: `Retain` (default) leaves the
    /// repository and its images; `Delete` deletes it, but only if it holds no images unless
    /// `forceDelete` is also set.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// With `deletionPolicy: Delete`, delete the repository even when it still holds images
    /// (they are lost, and so is everyone's pull of them). Defaults to `false`.
    #[serde(default)]
    pub force_delete: bool,

    /// `Full` (default): create and correct the repository. `ObserveOnly`: never write to ECR
    /// Public; report drift in the status only.
    #[serde(default)]
    pub management_policy: ManagementPolicy,

    /// `AdoptOrCreate` (default): take over an existing public repository of the same name that
    /// no other object owns, or create it. `CreateOnly`: refuse an existing repository (reason
    /// `AlreadyExists`).
    #[serde(default)]
    pub adoption: Adoption,

    /// How often to re-check ECR Public for drift, between 10s and 24h, such as `10m` or
    /// `1h30m`. Defaults to the operator's `--default-interval` (10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,

    /// Pause reconciliation: no ECR Public calls are made while `true`. Defaults to `false`.
    #[serde(default)]
    pub suspend: bool,
}

/// The gallery catalog data of a public repository, within ECR Public's limits.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CatalogData {
    /// A short description, shown in search results and on the repository's page. At most
    /// 1,024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,

    /// A detailed description of the repository's contents, in Markdown. At most 25,600
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 25600))]
    pub about_text: Option<String>,

    /// How to use the images (pull commands, tags, support), in Markdown. At most 25,600
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 25600))]
    pub usage_text: Option<String>,

    /// The architectures the images run on, shown as Gallery badges and search filters: `ARM`,
    /// `ARM 64`, `x86`, `x86-64`. Each at most once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b == a))")
        .message("architectures must not repeat"))]
    pub architectures: Vec<Architecture>,

    /// The operating systems the images run on, shown as Gallery badges and search filters:
    /// `Linux`, `Windows`. Each at most once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    #[x_kube(validation = Rule::new("self.all(o, self.exists_one(p, p == o))")
        .message("operatingSystems must not repeat"))]
    pub operating_systems: Vec<OperatingSystem>,

    /// The repository's logo: a PNG or JPEG image of at most 512,000 bytes, read from a key of a
    /// ConfigMap (`binaryData`) or a Secret in this namespace. Sent when it changes (ECR Public
    /// answers a URL, not the image, so the operator records the SHA-256 of what it sent in
    /// `status.logoSha256`). Removing it here leaves the Gallery's logo as it is. The Gallery
    /// shows logos of verified accounts only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<LogoSource>,
}

/// An architecture badge of the ECR Public Gallery, in ECR Public's spelling.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Architecture {
    #[serde(rename = "ARM")]
    Arm,
    #[serde(rename = "ARM 64")]
    Arm64,
    #[serde(rename = "x86")]
    X86,
    #[serde(rename = "x86-64")]
    X86_64,
}

impl Architecture {
    /// ECR Public's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Arm => "ARM",
            Architecture::Arm64 => "ARM 64",
            Architecture::X86 => "x86",
            Architecture::X86_64 => "x86-64",
        }
    }
}

/// An operating system badge of the ECR Public Gallery.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OperatingSystem {
    Linux,
    Windows,
}

impl OperatingSystem {
    /// ECR Public's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatingSystem::Linux => "Linux",
            OperatingSystem::Windows => "Windows",
        }
    }
}

/// Where the logo image is: exactly one of a ConfigMap key or a Secret key, in the
/// PublicRepository's namespace.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.configMapKeyRef) != has(self.secretKeyRef)")
    .message("logo needs exactly one of configMapKeyRef or secretKeyRef"))]
pub struct LogoSource {
    /// A key of a ConfigMap: its `binaryData` (or, for text formats, `data`) holds the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<LocalKeyRef>,
    /// A key of a Secret (the operator needs `get` on Secrets in this namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<LocalKeyRef>,
}

/// A key of an object in the same namespace.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LocalKeyRef {
    /// The object's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key holding the image.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Observed state of a `PublicRepository`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PublicRepositoryStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, and `Reconciling` / `Stalled` while true (kstatus), plus `Drifted` for
    /// `ObserveOnly` repositories (True while ECR Public differs from the spec).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// `public.ecr.aws/<alias>/<name>`: what `docker pull` uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_uri: Option<String>,

    /// ARN of the public repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_arn: Option<String>,

    /// Account ID of the public registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,

    /// The public registry's primary alias (the `<alias>` of the URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_alias: Option<String>,

    /// The public registry's display name in the Gallery, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_display_name: Option<String>,

    /// When ECR Public created the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,

    /// SHA-256 (hex) of the logo the operator last sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_sha256: Option<String>,

    /// Tag keys this operator set, so that keys removed from `spec.tags` can be removed while
    /// keys set by others are left alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_tag_keys: Vec<String>,

    /// Value of the `ecr-operator.dev/reconcile-requested-at` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl PublicRepository {
    /// The ECR Public repository name: `spec.name`, else `metadata.name`.
    pub fn ecr_name(&self) -> String {
        self.spec
            .name
            .clone()
            .unwrap_or_else(|| kube::ResourceExt::name_any(self))
    }
}
