//! A local stand-in for the EKS Pod Identity agent, for tests only.
//!
//! On EKS, the agent (a DaemonSet listening on 169.254.170.23) serves the container-credentials
//! protocol: the SDK reads `AWS_CONTAINER_CREDENTIALS_FULL_URI`, sends `GET` there with the
//! content of `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (a projected ServiceAccount token) as the
//! `Authorization` header, and gets back JSON credentials (`AccessKeyId`, `SecretAccessKey`,
//! `Token`, `Expiration`). The real agent exchanges the token with the EKS Auth API
//! (`AssumeRoleForPodIdentity`), which moto does not serve. This stand-in serves the same
//! protocol on 127.0.0.1 (the SDK accepts loopback over plain HTTP) and, for a request carrying
//! the expected token, asks STS at the local endpoint for the role's credentials with
//! `AssumeRole`. A request with another token gets 401. It counts what it served and refused,
//! and never logs a token or a key.
//!
//! Which token is good is a [`TokenCheck`]: the exact token a test wrote into a file for an
//! operator process, or, for a Pod whose token the kubelet projects (and rotates), what the EKS
//! Auth API checks: the API server's TokenReview says the token is valid for the Pod Identity
//! audience and belongs to the expected ServiceAccount. In a Pod on the test cluster's node, the
//! stand-in is reached at `169.254.170.23:<port>`, which the node sends to the host's 127.0.0.1
//! (tests/testcluster/README.md).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::Result;
use crate::http::{LoopbackServer, PlainClient};

/// How the stand-in decides whether a presented token is good.
#[derive(Clone)]
pub enum TokenCheck {
    /// Exactly this token (the file a test wrote for an operator process).
    Exact(String),
    /// What the EKS Auth API checks: a TokenReview by the API server finds the token valid for
    /// `audience`, for the user `username` (`system:serviceaccount:<namespace>:<name>`).
    Review {
        client: kube::Client,
        audience: String,
        username: String,
    },
}

/// A token's fingerprint, to tell tokens apart without keeping or printing them.
pub fn token_fingerprint(token: &str) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    token.trim().hash(&mut h);
    h.finish()
}

impl TokenCheck {
    /// `Some(pod name)` when the token is good (the name the TokenReview reports, empty for
    /// [`TokenCheck::Exact`]), `None` otherwise.
    async fn accepts(&self, presented: &str) -> Option<String> {
        if presented.is_empty() {
            return None;
        }
        match self {
            TokenCheck::Exact(token) => (presented == token).then(String::new),
            TokenCheck::Review {
                client,
                audience,
                username,
            } => {
                use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
                let review = TokenReview {
                    spec: TokenReviewSpec {
                        token: Some(presented.to_owned()),
                        audiences: Some(vec![audience.clone()]),
                    },
                    ..TokenReview::default()
                };
                let api: kube::Api<TokenReview> = kube::Api::all(client.clone());
                let reviewed = api
                    .create(&kube::api::PostParams::default(), &review)
                    .await
                    .ok()?;
                let status = reviewed.status.unwrap_or_default();
                let user = status.user.unwrap_or_default();
                let good = status.authenticated == Some(true)
                    && user.username.as_deref() == Some(username.as_str())
                    && status.audiences.unwrap_or_default().contains(audience);
                let pod = user
                    .extra
                    .and_then(|e| e.get("authentication.kubernetes.io/pod-name").cloned())
                    .and_then(|names| names.into_iter().next())
                    .unwrap_or_default();
                good.then_some(pod)
            }
        }
    }
}

struct State {
    check: TokenCheck,
    role_arn: String,
    sts: String,
    served: AtomicUsize,
    refused: AtomicUsize,
    /// The secret access keys handed out, so a test can check none reaches a log.
    issued: Mutex<Vec<String>>,
    /// The tokens accepted: the Pod the TokenReview named, and the token's fingerprint.
    accepted: Mutex<Vec<(String, u64)>>,
    /// Seconds until the credentials handed out expire (0: STS's own expiration).
    ttl_seconds: AtomicUsize,
}

/// A running stand-in. Dropping it stops it.
pub struct PodIdentityAgent {
    /// `http://127.0.0.1:<port>/v1/credentials`: the `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub uri: String,
    state: Arc<State>,
    _server: LoopbackServer,
}

impl PodIdentityAgent {
    /// Serves credentials for `role_arn`, obtained from STS at `sts_endpoint`, to requests whose
    /// `Authorization` header is `token`.
    pub fn start(sts_endpoint: &str, role_arn: &str, token: &str) -> Result<Self> {
        Self::start_checking(sts_endpoint, role_arn, TokenCheck::Exact(token.trim().to_owned()))
    }

    /// Serves credentials for `role_arn`, obtained from STS at `sts_endpoint`, to requests whose
    /// `Authorization` header passes `check`.
    pub fn start_checking(sts_endpoint: &str, role_arn: &str, check: TokenCheck) -> Result<Self> {
        let state = Arc::new(State {
            check,
            role_arn: role_arn.to_owned(),
            sts: sts_endpoint.trim_end_matches('/').to_owned(),
            served: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            issued: Mutex::new(Vec::new()),
            accepted: Mutex::new(Vec::new()),
            ttl_seconds: AtomicUsize::new(0),
        });
        let st = state.clone();
        let server = LoopbackServer::start("the Pod Identity stand-in", move |req, client| {
            handle(req, st.clone(), client)
        })?;
        Ok(Self {
            uri: format!("http://{}/v1/credentials", server.addr),
            state,
            _server: server,
        })
    }

    /// Credential requests answered with credentials.
    pub fn served(&self) -> usize {
        self.state.served.load(Ordering::Relaxed)
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.uri
            .rsplit(':')
            .next()
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_default()
    }

    /// Hands out credentials that expire `seconds` from now (instead of STS's hour), so that
    /// the SDK fetches again soon, presenting the token file as it is then.
    pub fn expire_credentials_after(&self, seconds: usize) {
        self.state.ttl_seconds.store(seconds, Ordering::Relaxed);
    }

    /// The tokens accepted so far, as (Pod name from the TokenReview, [`token_fingerprint`]).
    pub fn accepted(&self) -> Vec<(String, u64)> {
        self.state.accepted.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Requests refused (wrong or missing token).
    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::Relaxed)
    }

    /// The secret access keys handed out so far (for checking that none reaches a log).
    pub fn issued_secrets(&self) -> Vec<String> {
        self.state.issued.lock().map(|i| i.clone()).unwrap_or_default()
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// The text of the first `<tag>...</tag>` in an STS XML response.
fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_owned())
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
    client: PlainClient,
) -> std::result::Result<Response<Full<Bytes>>, std::io::Error> {
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    let Some(pod) = state.check.accepts(presented).await else {
        state.refused.fetch_add(1, Ordering::Relaxed);
        return Ok(reply(
            StatusCode::UNAUTHORIZED,
            r#"{"code":"AccessDeniedException","message":"invalid token"}"#.into(),
        ));
    };
    if let Ok(mut accepted) = state.accepted.lock() {
        accepted.push((pod, token_fingerprint(presented)));
    }
    // moto does not check signatures: a query-protocol AssumeRole with an unsigned SigV4-shaped
    // Authorization header (moto routes by the service named in its credential scope) is enough.
    let form = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleSessionName=eks-pod-identity&DurationSeconds=3600&RoleArn={}",
        state.role_arn.replace(':', "%3A").replace('/', "%2F")
    );
    let sts = Request::post(format!("{}/", state.sts))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(Full::new(Bytes::from(form)))
        .map_err(std::io::Error::other)?;
    let resp = client.request(sts).await.map_err(std::io::Error::other)?;
    let ok = resp.status().is_success();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let xml = String::from_utf8_lossy(&body);
    let fields = ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"].map(|t| xml_value(&xml, t));
    let [Some(key), Some(secret), Some(token), Some(expiration)] = fields else {
        let status = if ok {
            StatusCode::BAD_GATEWAY
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return Ok(reply(
            status,
            r#"{"code":"ServiceUnavailable","message":"STS did not answer"}"#.into(),
        ));
    };
    if let Ok(mut issued) = state.issued.lock() {
        issued.push(secret.clone());
    }
    state.served.fetch_add(1, Ordering::Relaxed);
    let account = state.role_arn.split(':').nth(4).unwrap_or_default().to_owned();
    let ttl = state.ttl_seconds.load(Ordering::Relaxed);
    let expiration = match i64::try_from(ttl) {
        Ok(ttl) if ttl > 0 => k8s_openapi::jiff::Timestamp::now()
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(ttl))
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or(expiration),
        _ => expiration,
    };
    let body = serde_json::json!({
        "AccessKeyId": key, "SecretAccessKey": secret, "Token": token, "AccountId": account,
        "Expiration": expiration,
    });
    Ok(reply(StatusCode::OK, body.to_string()))
}
