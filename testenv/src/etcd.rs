//! etcd's v3 JSON gateway: compaction, as etcd's periodic compaction does it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::control_plane::ControlPlane;
use crate::error::{Error, Result, io};

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

/// A POST to etcd's v3 JSON gateway; the parsed answer.
fn etcd_post(base: &str, path: &str, body: &str) -> Result<Value> {
    let host = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).map_err(io("connecting to etcd"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io("configuring the etcd connection"))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(io("writing to etcd"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(io("reading from etcd"))?;
    let (head, payload) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.1 200") {
        return Err(Error::Setup(format!("etcd {path}: {head}\n{payload}")));
    }
    // The gateway may answer chunked; the JSON object is between the first '{' and the last '}'.
    let json = payload
        .find('{')
        .and_then(|a| payload.rfind('}').map(|b| &payload[a..=b]))
        .unwrap_or(payload);
    serde_json::from_str(json).map_err(|e| Error::Setup(format!("etcd {path}: {e}: {payload}")))
}
