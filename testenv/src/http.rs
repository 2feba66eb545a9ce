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

/// A small HTTP/1.1 server on a free 127.0.0.1 port, on a thread and runtime of its own: the
/// fault proxy and the Pod Identity stand-in. Each request is answered by `handler`, which gets a
/// plain-HTTP client for calls of its own. Dropping the server stops it.
pub(crate) struct LoopbackServer {
    pub(crate) addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The client a [`LoopbackServer`] handler gets.
pub(crate) type PlainClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

impl LoopbackServer {
    /// Binds and starts serving; `what` names it in errors (e.g. "the proxy").
    pub(crate) fn start<H, F>(what: &str, handler: H) -> Result<Self>
    where
        H: Fn(hyper::Request<hyper::body::Incoming>, PlainClient) -> F + Clone + Send + 'static,
        F: Future<Output = std::result::Result<hyper::Response<Full<Bytes>>, std::io::Error>>
            + Send
            + 'static,
    {
        let io = |action: String| move |source| Error::Io { action, source };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io(format!("binding {what}")))?;
        listener
            .set_nonblocking(true)
            .map_err(io(format!("configuring {what}")))?;
        let addr = listener.local_addr().map_err(io(format!("binding {what}")))?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let client: PlainClient = Client::builder(TokioExecutor::new()).build_http();
                loop {
                    let accepted = tokio::select! {
                        a = listener.accept() => a,
                        _ = &mut stopped => return,
                    };
                    let Ok((stream, _)) = accepted else { continue };
                    let (handler, client) = (handler.clone(), client.clone());
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| handler(req, client.clone()));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
