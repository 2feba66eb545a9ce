//! A blocking HTTP/1.1 client (hyper) for the plain-HTTP endpoints the harness talks to: etcd's
//! JSON gateway, moto's control API, and the operator's probes and metrics.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::error::{Error, Result};

/// An answer: status code and body.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// Sends one request to `url` and reads the whole answer, within `timeout`. `body` is
/// `(content type, bytes)`; without it the request has an empty body. Usable from synchronous
/// code and from inside an async runtime alike: the request runs on a thread of its own with a
/// runtime of its own. Failures are [`Error::Io`] while `action`.
pub(crate) fn request(
    method: Method,
    url: &str,
    body: Option<(&'static str, String)>,
    timeout: Duration,
    action: &str,
) -> Result<Response> {
    let failed = |source: std::io::Error| Error::Io {
        action: action.to_owned(),
        source,
    };
    let (content_type, body) = body.map_or((None, String::new()), |(t, b)| (Some(t), b));
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header(CONTENT_LENGTH, body.len());
    if let Some(t) = content_type {
        req = req.header(CONTENT_TYPE, t);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| failed(std::io::Error::other(e)))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(&failed)?;
            rt.block_on(async {
                let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(0)
                    .build_http();
                let exchange = async {
                    let resp = client.request(req).await.map_err(std::io::Error::other)?;
                    let status = resp.status().as_u16();
                    let body = resp.into_body().collect().await.map_err(std::io::Error::other)?;
                    Ok(Response {
                        status,
                        body: body.to_bytes(),
                    })
                };
                tokio::time::timeout(timeout, exchange)
                    .await
                    .map_err(|_| failed(std::io::ErrorKind::TimedOut.into()))?
                    .map_err(&failed)
            })
        })
        .join()
        .map_err(|_| failed(std::io::Error::other("the HTTP client thread panicked")))?
    })
}
