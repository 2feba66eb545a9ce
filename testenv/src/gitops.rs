//! The Argo CD health check of `docs/gitops.md`, run in a Lua 5.1 interpreter (Argo CD embeds
//! gopher-lua, a Lua 5.1) so the docs are tested, not just written.

use mlua::{Lua, LuaSerdeExt};
use serde_json::Value;

use crate::{Error, Result, repo_root, yaml_documents};

/// The `resource.customizations.health.*` entries of the `argocd-cm` ConfigMap in
/// `docs/gitops.md`: (kind, Lua script).
pub fn argocd_health_checks() -> Result<Vec<(String, String)>> {
    let path = repo_root().join("docs/gitops.md");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Setup(format!("reading {}: {e}", path.display())))?;
    let mut checks = Vec::new();
    for block in text.split("```yaml").skip(1) {
        let yaml = block.split("```").next().unwrap_or_default();
        for doc in yaml_documents(yaml)? {
            if doc["kind"] != "ConfigMap" || doc["metadata"]["name"] != "argocd-cm" {
                continue;
            }
            for (key, script) in doc["data"].as_object().into_iter().flatten() {
                if let (Some(kind), Some(script)) = (
                    key.strip_prefix("resource.customizations.health.ecr-operator.dev_"),
                    script.as_str(),
                ) {
                    checks.push((kind.to_owned(), script.to_owned()));
                }
            }
        }
    }
    Ok(checks)
}

/// Runs one health script with `obj` bound as Argo CD binds it; returns (status, message).
pub fn argocd_health(script: &str, obj: &Value) -> Result<(String, String)> {
    let lua = Lua::new();
    let setup = |e: mlua::Error| Error::Setup(format!("Lua: {e}"));
    // JSON null becomes nil, as in Argo CD (not mlua's default null sentinel).
    let options = mlua::serde::ser::Options::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    let value = lua.to_value_with(obj, options).map_err(setup)?;
    lua.globals().set("obj", value).map_err(setup)?;
    let hs: mlua::Table = lua.load(script).eval().map_err(setup)?;
    Ok((
        hs.get("status").map_err(setup)?,
        hs.get("message").map_err(setup)?,
    ))
}
