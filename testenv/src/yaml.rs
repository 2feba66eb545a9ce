//! YAML files and documents, and applying one document of any kind.

use std::path::{Path, PathBuf};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use serde_json::Value;

use crate::error::{Error, Result, io};

/// The `*.yaml` files of a directory, sorted.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(format!("reading {}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The documents of a multi-document YAML text, without the empty ones (only comments, or
/// null).
pub fn yaml_documents(text: &str) -> Result<Vec<Value>> {
    serde_saphyr::from_multiple(text).map_err(|e| Error::Setup(format!("invalid YAML document: {e}")))
}

/// Server-side applies one document (any kind the server knows) under `field_manager`;
/// namespaced objects go to `namespace`. Returns what the server stored.
pub async fn apply_document(
    client: &kube::Client,
    namespace: &str,
    doc: &Value,
    field_manager: &str,
) -> Result<DynamicObject, kube::Error> {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, doc["kind"].as_str().unwrap_or_default());
    let (resource, caps) = pinned_kind(client, &gvk).await?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), namespace, &resource),
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    api.patch(
        name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(doc),
    )
    .await
}
