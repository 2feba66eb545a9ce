//! What GitOps tools read from an object's status: the Argo CD health check of `docs/gitops.md`,
//! run in a Lua 5.1 interpreter (Argo CD embeds gopher-lua, a Lua 5.1) so the docs are tested, not
//! just written; and the verdict of the real kstatus library (what Flux's health checks use), from
//! the small Go command in `tests/kstatus/`.

use std::io::Write;
use std::process::{Command, Stdio};

use mlua::{Lua, LuaSerdeExt};
use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result, io, kstatus_bin, repo_root, yaml_documents};

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

/// One verdict of the `kstatus` command.
#[derive(Deserialize)]
struct Verdict {
    status: String,
    message: String,
}

/// The real kstatus library's verdict on each object (`status.Compute` of
/// `sigs.k8s.io/cli-utils/pkg/kstatus/status`), in order: (status, message). The status is
/// `Current`, `InProgress`, `Failed`, `Terminating`, ..., or `Error` when kstatus could not
/// compute one (the message then says why).
pub fn kstatus_verdicts(objects: &[Value]) -> Result<Vec<(String, String)>> {
    let bin = kstatus_bin()?;
    let input = serde_json::to_vec(objects).map_err(|e| Error::Setup(format!("encoding objects: {e}")))?;
    let mut child = Command::new(&bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io(format!("running {}", bin.display())))?;
    // The command reads all of its input before it writes anything, so this cannot block on a
    // full stdout pipe.
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&input)
            .map_err(io(format!("writing to {}", bin.display())))?;
    }
    let out = child
        .wait_with_output()
        .map_err(io(format!("running {}", bin.display())))?;
    if !out.status.success() {
        return Err(Error::Setup(format!(
            "{} failed with {}: {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let verdicts: Vec<Verdict> = serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::Setup(format!(
            "{} printed no verdicts ({e}): {}",
            bin.display(),
            String::from_utf8_lossy(&out.stdout)
        ))
    })?;
    if verdicts.len() != objects.len() {
        return Err(Error::Setup(format!(
            "{} gave {} verdicts for {} objects",
            bin.display(),
            verdicts.len(),
            objects.len()
        )));
    }
    Ok(verdicts.into_iter().map(|v| (v.status, v.message)).collect())
}
