//! etcd's v3 JSON gateway: compaction, as etcd's periodic compaction does it.

use std::time::Duration;

use hyper::Method;
use serde_json::Value;

use crate::control_plane::ControlPlane;
use crate::error::{Error, Result};
use crate::http;

impl ControlPlane {
    /// Compacts etcd's history up to its current revision (physically), as etcd's periodic
    /// compaction does, so a watch from an older resourceVersion can only be answered with
    /// 410 Gone. Returns the revision.
    pub fn compact_etcd(&self) -> Result<u64> {
        let range = etcd_post(&self.etcd, "/v3/kv/range", r#"{"key":"AA==","limit":1}"#)?;
        let revision: u64 = range["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| Error::Setup(format!("no revision in {range}")))?;
        etcd_post(
            &self.etcd,
            "/v3/kv/compaction",
            &format!(r#"{{"revision":"{revision}","physical":true}}"#),
        )?;
        Ok(revision)
    }
}

/// A POST to etcd's v3 JSON gateway at `base` (`http://127.0.0.1:<port>`); the parsed answer.
fn etcd_post(base: &str, path: &str, body: &str) -> Result<Value> {
    let resp = http::request(
        Method::POST,
        &format!("{base}{path}"),
        Some(("application/json", body.to_owned())),
        Duration::from_secs(30),
        "calling etcd",
    )?;
    let payload = String::from_utf8_lossy(&resp.body);
    if resp.status != 200 {
        return Err(Error::Setup(format!(
            "etcd {path}: HTTP {}\n{payload}",
            resp.status
        )));
    }
    serde_json::from_str(&payload).map_err(|e| Error::Setup(format!("etcd {path}: {e}: {payload}")))
}
