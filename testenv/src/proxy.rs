//! A fault-injecting HTTP proxy between the operator and moto: it logs every ECR operation it
//! sees (an independent count of the operator's ECR calls) and can answer a deterministic share
//! of calls with `ThrottlingException`, HTTP 500, a delay, or a dropped connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::Result;
use crate::http::{LoopbackServer, PlainClient};

/// What to inject, as shares of calls (percent) chosen deterministically by call number.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// Answer `400 ThrottlingException`.
    pub throttle_percent: u64,
    /// Answer `500 ServerException`.
    pub error_percent: u64,
    /// Close the connection without an answer.
    pub drop_percent: u64,
    /// Delay every forwarded call.
    pub delay: Duration,
    /// Make every `GetAuthorizationToken` answer a new password (moto's is the same every
    /// time): the proxy appends `-<call number>` to each password moto returns, so a refresh
    /// changes what the Secrets hold, as it does with ECR.
    pub rotate_tokens: bool,
}

/// A fault the proxy injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Throttle,
    ServerError,
    Drop,
}

/// One call the proxy saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// ECR operation, from `X-Amz-Target` (e.g. `CreateRepository`).
    pub operation: String,
    /// Whether it was an ECR Public call (`X-Amz-Target` `SpencerFrontendService.*`), whose
    /// operations share names with ECR's (CreateRepository, GetAuthorizationToken).
    pub ecr_public: bool,
    /// Set when the proxy answered instead of moto.
    pub injected: Option<Fault>,
    /// For STS `AssumeRoleWithWebIdentity`: the role and the claims of the token presented.
    pub web_identity: Option<WebIdentity>,
}

/// What an `AssumeRoleWithWebIdentity` call asked for (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebIdentity {
    pub role_arn: String,
    pub session_name: String,
    /// The token's `iss`, `sub` and `aud` claims (its payload, not verified: moto does not
    /// verify it either).
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

/// ECR operations that change state.
pub fn is_write(operation: &str) -> bool {
    [
        "Create", "Put", "Set", "Delete", "Tag", "Untag", "Batch", "Start", "Update", "Upload", "Initiate",
        "Complete",
    ]
    .iter()
    .any(|p| operation.starts_with(p))
        && operation != "BatchGetImage"
        && operation != "BatchCheckLayerAvailability"
}

#[derive(Default)]
struct State {
    calls: Mutex<Vec<Call>>,
    /// Web-identity tokens presented and session credentials issued through the proxy.
    issued: Mutex<Vec<String>>,
    plan: Mutex<FaultPlan>,
    counter: AtomicU64,
}

/// A running proxy. Dropping it stops it.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`: use it as the Registry's `spec.endpoint`.
    pub endpoint: String,
    state: Arc<State>,
    _server: LoopbackServer,
}

impl FaultProxy {
    /// Starts a proxy on a free 127.0.0.1 port forwarding to `upstream` (e.g. moto's endpoint).
    pub fn start(upstream: &str) -> Result<Self> {
        let state = Arc::new(State::default());
        let upstream = upstream.trim_end_matches('/').to_owned();
        let st = state.clone();
        let server = LoopbackServer::start("the proxy", move |req, client| {
            handle(req, st.clone(), client, upstream.clone())
        })?;
        Ok(Self {
            endpoint: format!("http://{}", server.addr),
            state,
            _server: server,
        })
    }

    /// Replaces the fault plan (takes effect for the next call).
    pub fn set_plan(&self, plan: FaultPlan) {
        if let Ok(mut p) = self.state.plan.lock() {
            *p = plan;
        }
    }

    /// Every call seen so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The web-identity tokens presented to STS and the session credentials (access key IDs,
    /// secret keys, session tokens) STS answered through the proxy: what must never appear in
    /// the operator's log, events, status or metrics.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.state.issued.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The `AssumeRoleWithWebIdentity` calls that reached STS.
    pub fn web_identities(&self) -> Vec<WebIdentity> {
        self.calls()
            .into_iter()
            .filter(|c| c.injected.is_none())
            .filter_map(|c| c.web_identity)
            .collect()
    }

    /// Forgets the calls seen so far.
    pub fn clear(&self) {
        if let Ok(mut c) = self.state.calls.lock() {
            c.clear();
        }
    }

    /// How many calls of `operation` reached moto.
    pub fn forwarded(&self, operation: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.injected.is_none() && c.operation == operation)
            .count()
    }

    /// How many calls of `operation` reached moto, of ECR Public (`ecr_public`) or of ECR.
    pub fn forwarded_of(&self, operation: &str, ecr_public: bool) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.injected.is_none() && c.operation == operation && c.ecr_public == ecr_public)
            .count()
    }

    /// The state-changing operations that reached moto.
    pub fn forwarded_writes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.injected.is_none() && is_write(&c.operation))
            .map(|c| c.operation)
            .collect()
    }
}

/// The `Action` of a form-encoded (query protocol) request body, e.g. STS's
/// `Action=AssumeRoleWithWebIdentity&...`.
fn form_action(body: &[u8]) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_owned)
}

/// The decoded value of `key` in a form-encoded body.
fn form_value(body: &[u8], key: &str) -> Option<String> {
    let raw = std::str::from_utf8(body)
        .ok()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{key}=")))?
        .replace('+', " ");
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'%', Some(b)) = (bytes[i], escaped) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The claims of a JWT's payload (not verified).
fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

/// What an `AssumeRoleWithWebIdentity` request asks for, and its token.
fn web_identity(body: &[u8]) -> Option<(WebIdentity, String)> {
    let token = form_value(body, "WebIdentityToken")?;
    let claims = jwt_claims(&token).unwrap_or_default();
    let audiences = match &claims["aud"] {
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        serde_json::Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    };
    let identity = WebIdentity {
        role_arn: form_value(body, "RoleArn").unwrap_or_default(),
        session_name: form_value(body, "RoleSessionName").unwrap_or_default(),
        issuer: claims["iss"].as_str().unwrap_or_default().to_owned(),
        subject: claims["sub"].as_str().unwrap_or_default().to_owned(),
        audiences,
    };
    Some((identity, token))
}

/// The text of every `<tag>` element of an XML answer.
fn xml_values(body: &[u8], tag: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    text.split(open.as_str())
        .skip(1)
        .filter_map(|rest| rest.split_once(close.as_str()).map(|(v, _)| v.trim().to_owned()))
        .filter(|v| !v.is_empty())
        .collect()
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = format!(r#"{{"__type":"{code}","message":"{message}"}}"#);
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(code) {
        h.insert("x-amzn-errortype", v);
    }
    resp
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
    client: PlainClient,
    upstream: String,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    // JSON protocols (ECR) name the operation in `X-Amz-Target`; query protocols (STS) in the
    // form body's `Action`. Only the operation's name is kept: a body may carry a token.
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    let ecr_public = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("SpencerFrontendService."));
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .map(str::to_owned)
        .or_else(|| form_action(&body))
        .unwrap_or_else(|| "unknown".to_owned());
    let n = state.counter.fetch_add(1, Ordering::Relaxed);
    let is_token = operation == "GetAuthorizationToken";
    let web = (operation == "AssumeRoleWithWebIdentity")
        .then(|| web_identity(&body))
        .flatten();
    if let (Some((_, token)), Ok(mut issued)) = (&web, state.issued.lock()) {
        issued.push(token.clone());
    }
    let plan = state.plan.lock().map(|p| p.clone()).unwrap_or_default();
    // A fixed scramble of the call number: deterministic, but spread over the calls.
    let roll = (n.wrapping_mul(2_654_435_761) >> 8) % 100;
    let fault = if roll < plan.throttle_percent {
        Some(Fault::Throttle)
    } else if roll < plan.throttle_percent + plan.error_percent {
        Some(Fault::ServerError)
    } else if roll < plan.throttle_percent + plan.error_percent + plan.drop_percent {
        Some(Fault::Drop)
    } else {
        None
    };
    if let Ok(mut calls) = state.calls.lock() {
        calls.push(Call {
            operation,
            ecr_public,
            injected: fault,
            web_identity: web.map(|(w, _)| w),
        });
    }
    match fault {
        Some(Fault::Throttle) => {
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded",
            ));
        }
        Some(Fault::ServerError) => {
            return Ok(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServerException",
                "injected by the fault proxy",
            ));
        }
        Some(Fault::Drop) => return Err(std::io::Error::other("connection dropped by the fault proxy")),
        None => {}
    }
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: hyper::Uri = format!("{upstream}{path}")
        .parse()
        .map_err(std::io::Error::other)?;
    let mut forward = Request::builder().method(parts.method).uri(uri);
    for (k, v) in &parts.headers {
        forward = forward.header(k, v);
    }
    let forward = forward.body(Full::new(body)).map_err(std::io::Error::other)?;
    let resp = client.request(forward).await.map_err(std::io::Error::other)?;
    let (mut parts, body) = resp.into_parts();
    let mut body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    if let Ok(mut issued) = state.issued.lock() {
        for tag in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
            issued.extend(xml_values(&body, tag));
        }
    }
    if plan.rotate_tokens && parts.status.is_success() && is_token {
        body = rotated(&body, n);
        parts.headers.remove(hyper::header::CONTENT_LENGTH);
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// moto's `GetAuthorizationToken` answer with `-<n>` appended to every password.
fn rotated(body: &Bytes, n: u64) -> Bytes {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.clone();
    };
    if let Some(items) = json["authorizationData"].as_array_mut() {
        for item in items {
            let decoded = item["authorizationToken"]
                .as_str()
                .and_then(|t| engine.decode(t).ok())
                .and_then(|raw| String::from_utf8(raw).ok());
            if let Some(login) = decoded {
                item["authorizationToken"] = serde_json::Value::String(engine.encode(format!("{login}-{n}")));
            }
        }
    }
    Bytes::from(json.to_string())
}
