//! The HTTP endpoints: `/metrics` (OpenMetrics text), `/healthz` (liveness), `/readyz` (ready once
//! the caches are synced and every controller has listed its kind).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::metrics::Metrics;

/// Shared readiness: ready when every part is (the caches, and each running controller's list of
/// its kind); not ready before any part reports.
#[derive(Clone, Default)]
pub struct Readiness(Arc<Mutex<BTreeMap<&'static str, bool>>>);

/// The part of [`Readiness`] that [`Readiness::set`] sets.
const CACHES: &str = "caches";

impl Readiness {
    /// Sets the caches' part (a standby sets it alone).
    pub fn set(&self, ready: bool) {
        self.mark(CACHES, ready);
    }

    /// Sets one part: a controller once its watch has listed its kind (`true`), or while the
    /// list fails (`false`).
    pub fn mark(&self, part: &'static str, ready: bool) {
        if let Ok(mut parts) = self.0.lock() {
            parts.insert(part, ready);
        }
    }

    /// The parts that are not ready, or `["caches"]` before anything reported.
    pub fn waiting_for(&self) -> Vec<&'static str> {
        let Ok(parts) = self.0.lock() else {
            return vec!["lock"];
        };
        if !parts.contains_key(CACHES) {
            return vec![CACHES];
        }
        parts
            .iter()
            .filter(|(_, ready)| !**ready)
            .map(|(part, _)| *part)
            .collect()
    }

    pub fn is_ready(&self) -> bool {
        self.waiting_for().is_empty()
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

/// Pure routing.
pub fn route(path: &str, metrics: &Metrics, readiness: &Readiness) -> Response<Full<Bytes>> {
    match path {
        "/metrics" => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => match readiness.waiting_for().as_slice() {
            [] => respond(StatusCode::OK, "text/plain", "ready\n".into()),
            waiting => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: waiting for {}\n", waiting.join(", ")),
            ),
        },
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// Serves until the process ends. Binding failures are returned.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, readiness: Readiness) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (metrics, readiness) = (metrics.clone(), readiness.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let resp = route(req.uri().path(), &metrics, &readiness);
                    async move { Ok::<_, std::convert::Infallible>(resp) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let m = Metrics::default();
        let r = Readiness::default();
        assert_eq!(route("/healthz", &m, &r).status(), StatusCode::OK);
        assert_eq!(route("/readyz", &m, &r).status(), StatusCode::SERVICE_UNAVAILABLE);
        r.set(true);
        assert_eq!(route("/readyz", &m, &r).status(), StatusCode::OK);
        // A controller whose list has not succeeded yet makes the process unready, by name.
        r.mark("repository", false);
        let waiting = route("/readyz", &m, &r);
        assert_eq!(waiting.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.waiting_for(), ["repository"]);
        r.mark("repository", true);
        assert_eq!(route("/readyz", &m, &r).status(), StatusCode::OK);
        let metrics = route("/metrics", &m, &r);
        assert_eq!(metrics.status(), StatusCode::OK);
        assert!(
            metrics.headers()[hyper::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        assert_eq!(route("/other", &m, &r).status(), StatusCode::NOT_FOUND);
    }
}
