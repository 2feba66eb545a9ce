//! `kubernetes.io/dockerconfigjson` rendering (pure).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

#[derive(Serialize)]
struct Entry<'a> {
    username: &'a str,
    password: &'a str,
    auth: &'a str,
}

#[derive(Serialize)]
struct DockerConfig<'a> {
    auths: BTreeMap<&'a str, Entry<'a>>,
}

/// The token could not be decoded (never includes the token itself).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("ECR returned an authorization token that is not base64 of user:password")]
pub struct InvalidToken;

/// The registry host of a `proxyEndpoint` (`https://host` → `host`).
pub fn host_of(proxy_endpoint: &str) -> &str {
    let rest = proxy_endpoint
        .split_once("://")
        .map_or(proxy_endpoint, |(_, r)| r);
    rest.trim_end_matches('/')
}

/// The user name and password in an ECR token (base64 of `user:password`).
pub fn login(token: &SecretString) -> Result<(String, SecretString), InvalidToken> {
    let raw = STANDARD
        .decode(token.expose_secret().trim())
        .map_err(|_| InvalidToken)?;
    let text = String::from_utf8(raw).map_err(|_| InvalidToken)?;
    let (user, password) = text.split_once(':').ok_or(InvalidToken)?;
    Ok((user.to_owned(), SecretString::from(password.to_owned())))
}

/// `{"auths": {host: {"username", "password", "auth"}}}`, one entry per host (sorted), from ECR
/// tokens (`auth` is the token as ECR returns it: base64 of `AWS:<password>`).
pub fn render(logins: &BTreeMap<String, SecretString>) -> Result<SecretString, InvalidToken> {
    let mut decoded = BTreeMap::new();
    for (host, token) in logins {
        let (user, password) = login(token)?;
        decoded.insert(
            host.as_str(),
            (user, password.expose_secret().to_owned(), token.expose_secret()),
        );
    }
    let auths = decoded
        .iter()
        .map(|(host, (user, password, auth))| {
            (
                *host,
                Entry {
                    username: user,
                    password,
                    auth,
                },
            )
        })
        .collect();
    let json = serde_json::to_string(&DockerConfig { auths }).map_err(|_| InvalidToken)?;
    Ok(SecretString::from(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_entry_per_host_as_kubelet_expects() {
        let token = STANDARD.encode("AWS:s3cr3t-password");
        let logins = BTreeMap::from([
            (
                "222222222222.dkr.ecr.eu-west-1.amazonaws.com".to_owned(),
                SecretString::from(token.clone()),
            ),
            (
                "111111111111.dkr.ecr.us-east-1.amazonaws.com".to_owned(),
                SecretString::from(token.clone()),
            ),
        ]);
        let json: serde_json::Value = serde_json::from_str(render(&logins).unwrap().expose_secret()).unwrap();
        let auths = json["auths"].as_object().unwrap();
        assert_eq!(auths.len(), 2);
        let e = &auths["111111111111.dkr.ecr.us-east-1.amazonaws.com"];
        assert_eq!(e["username"], "AWS");
        assert_eq!(e["password"], "s3cr3t-password");
        assert_eq!(e["auth"], token);
        assert_eq!(json.as_object().unwrap().len(), 1, "only auths");
    }

    #[test]
    fn bad_tokens_are_refused_without_echoing_them() {
        for bad in ["not base64!!", &STANDARD.encode("no-colon")] {
            let logins = BTreeMap::from([("h".to_owned(), SecretString::from(bad.to_owned()))]);
            let err = render(&logins).unwrap_err();
            assert!(!err.to_string().contains(bad));
        }
    }

    #[test]
    fn host_of_strips_the_scheme() {
        assert_eq!(
            host_of("https://1.dkr.ecr.us-east-1.amazonaws.com"),
            "1.dkr.ecr.us-east-1.amazonaws.com"
        );
        assert_eq!(
            host_of("1.dkr.ecr.us-east-1.amazonaws.com/"),
            "1.dkr.ecr.us-east-1.amazonaws.com"
        );
    }
}
