//! Pure: what a pull Secret holds in each `format`: a `kubernetes.io/dockerconfigjson` image
//! pull secret, or an Argo CD repository Secret (`argocd-repository`) or credential template
//! (`argocd-repo-creds`) with exactly the fields Argo CD reads. Only these fields are applied, so
//! fields another writer (Argo CD itself, a user) adds to the Secret survive every refresh.

use std::collections::BTreeMap;

use secrecy::SecretString;

use super::secret::DOCKERCONFIGJSON;
use crate::api::v1alpha1::{ArgoCd, ArgoCdRepositoryType, SecretFormat};
use crate::error::{Error, Result};
use crate::secrets::dockerconfig;

/// The label Argo CD finds its repository Secrets by.
pub const ARGOCD_SECRET_TYPE: &str = "argocd.argoproj.io/secret-type";

/// The label every object of an Argo CD installation carries (its manifests and its Helm chart):
/// a namespace with a ServiceAccount labelled so is one where Argo CD runs and reads repository
/// Secrets.
pub const ARGOCD_PART_OF: &str = "app.kubernetes.io/part-of=argocd";

/// Pure: whether a ServiceAccount with these labels is one of Argo CD's ([`ARGOCD_PART_OF`]).
pub fn is_argocd_account(labels: &BTreeMap<String, String>) -> bool {
    let (key, value) = ARGOCD_PART_OF.split_once('=').unwrap_or((ARGOCD_PART_OF, ""));
    labels.get(key).map(String::as_str) == Some(value)
}

/// The Secret's `type`, data and the labels of its format (besides the operator's own).
pub struct SecretBody {
    pub type_: &'static str,
    /// Only the keys the operator owns; their values may hold a token.
    pub data: BTreeMap<String, SecretString>,
    pub labels: BTreeMap<String, String>,
}

/// Pure: the Secret of `format` for `logins` (registry host → ECR token). The Argo CD formats
/// hold exactly one registry (admission checks it; an object stored before is `InvalidSpec`).
pub fn secret_body(
    format: SecretFormat,
    argocd: Option<&ArgoCd>,
    secret_name: &str,
    logins: &BTreeMap<String, SecretString>,
) -> Result<SecretBody> {
    let invalid_token = |e: dockerconfig::InvalidToken| Error::InvalidToken(e.to_string());
    let label = match format {
        SecretFormat::DockerConfigJson => {
            let json = dockerconfig::render(logins).map_err(invalid_token)?;
            return Ok(SecretBody {
                type_: "kubernetes.io/dockerconfigjson",
                data: BTreeMap::from([(DOCKERCONFIGJSON.to_owned(), json)]),
                labels: BTreeMap::new(),
            });
        }
        SecretFormat::ArgoCdRepository => "repository",
        SecretFormat::ArgoCdRepoCreds => "repo-creds",
    };
    let [(host, token)] = logins.iter().collect::<Vec<_>>()[..] else {
        return Err(Error::InvalidSpec(format!(
            "the Argo CD formats hold one registry per Secret, and this object names {}: name exactly one in registries",
            logins.len()
        )));
    };
    let options = argocd.cloned().unwrap_or_default();
    let (user, password) = dockerconfig::login(token).map_err(invalid_token)?;
    let plain = |v: &str| SecretString::from(v.to_owned());
    let mut data = BTreeMap::from([
        (
            "url".to_owned(),
            plain(&argocd_url(options.type_, host, options.path.as_deref())),
        ),
        ("username".to_owned(), plain(&user)),
        ("password".to_owned(), password),
    ]);
    match options.type_ {
        ArgoCdRepositoryType::Helm => {
            data.insert("type".to_owned(), plain("helm"));
            data.insert("enableOCI".to_owned(), plain("true"));
        }
        ArgoCdRepositoryType::Oci => {
            data.insert("type".to_owned(), plain("oci"));
        }
    }
    if format == SecretFormat::ArgoCdRepository {
        data.insert(
            "name".to_owned(),
            plain(options.name.as_deref().unwrap_or(secret_name)),
        );
    }
    if let Some(project) = &options.project {
        data.insert("project".to_owned(), plain(project));
    }
    Ok(SecretBody {
        type_: "Opaque",
        data,
        labels: BTreeMap::from([(ARGOCD_SECRET_TYPE.to_owned(), label.to_owned())]),
    })
}

/// Pure: the `url` Argo CD matches: for `helm` (with `enableOCI`) the host without a scheme, as
/// Argo CD's Helm OCI client requires; for `oci` the `oci://` URL; with `path` appended.
pub fn argocd_url(type_: ArgoCdRepositoryType, host: &str, path: Option<&str>) -> String {
    let base = match path {
        Some(p) => format!("{host}/{}", p.trim_matches('/')),
        None => host.to_owned(),
    };
    match type_ {
        ArgoCdRepositoryType::Helm => base,
        ArgoCdRepositoryType::Oci => format!("oci://{base}"),
    }
}

/// Pure: the report on namespaces where an Argo CD Secret was written but Argo CD does not run
/// (`None` when there are none): the Secret is written anyway and used once Argo CD is
/// installed there (the ServiceAccount watch re-queues the object when it is).
pub fn argocd_not_found(namespaces: &[String]) -> Option<Error> {
    let place = match namespaces {
        [] => return None,
        [one] => format!("namespace {one}"),
        _ => format!(
            "{} namespaces ({})",
            namespaces.len(),
            crate::text::listed(namespaces, 10)
        ),
    };
    Some(Error::ArgoCdNotFound(format!(
        "Argo CD does not run in {place} (no ServiceAccount labelled {ARGOCD_PART_OF}): Argo CD reads repository Secrets only in its own namespace; the Secret is written and used once Argo CD is installed there"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use secrecy::ExposeSecret;

    const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    fn reveal(body: &SecretBody, key: &str) -> Option<String> {
        body.data.get(key).map(|v| v.expose_secret().to_owned())
    }

    fn logins(n: usize) -> BTreeMap<String, SecretString> {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:p4ss");
        (0..n)
            .map(|i| {
                let host = if i == 0 {
                    HOST.to_owned()
                } else {
                    format!("{i}.{HOST}")
                };
                (host, SecretString::from(token.clone()))
            })
            .collect()
    }

    fn argocd(
        type_: ArgoCdRepositoryType,
        path: Option<&str>,
        project: Option<&str>,
        name: Option<&str>,
    ) -> ArgoCd {
        ArgoCd {
            type_,
            path: path.map(str::to_owned),
            project: project.map(str::to_owned),
            name: name.map(str::to_owned),
        }
    }

    /// Every format and option, field by field: exactly the keys Argo CD reads, and the label.
    #[test]
    fn each_format_holds_exactly_its_fields() {
        use ArgoCdRepositoryType::{Helm, Oci};
        use SecretFormat::{ArgoCdRepoCreds, ArgoCdRepository};
        type Case<'a> = (SecretFormat, Option<ArgoCd>, &'a str, Vec<(&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            (
                ArgoCdRepository,
                None,
                "repository",
                vec![
                    ("enableOCI", "true"),
                    ("name", "ecr-charts"),
                    ("password", "p4ss"),
                    ("type", "helm"),
                    ("url", HOST),
                    ("username", "AWS"),
                ],
            ),
            (
                ArgoCdRepository,
                Some(argocd(Helm, Some("charts/web"), Some("team-a"), Some("web"))),
                "repository",
                vec![
                    ("enableOCI", "true"),
                    ("name", "web"),
                    ("password", "p4ss"),
                    ("project", "team-a"),
                    ("type", "helm"),
                    ("url", "123456789012.dkr.ecr.us-east-1.amazonaws.com/charts/web"),
                    ("username", "AWS"),
                ],
            ),
            (
                ArgoCdRepository,
                Some(argocd(Oci, Some("charts/web"), None, None)),
                "repository",
                vec![
                    ("name", "ecr-charts"),
                    ("password", "p4ss"),
                    ("type", "oci"),
                    (
                        "url",
                        "oci://123456789012.dkr.ecr.us-east-1.amazonaws.com/charts/web",
                    ),
                    ("username", "AWS"),
                ],
            ),
            (
                ArgoCdRepoCreds,
                None,
                "repo-creds",
                vec![
                    ("enableOCI", "true"),
                    ("password", "p4ss"),
                    ("type", "helm"),
                    ("url", HOST),
                    ("username", "AWS"),
                ],
            ),
            (
                ArgoCdRepoCreds,
                Some(argocd(Oci, None, Some("team-a"), Some("ignored"))),
                "repo-creds",
                vec![
                    ("password", "p4ss"),
                    ("project", "team-a"),
                    ("type", "oci"),
                    ("url", "oci://123456789012.dkr.ecr.us-east-1.amazonaws.com"),
                    ("username", "AWS"),
                ],
            ),
        ];
        for (format, options, label, expected) in cases {
            let body = secret_body(format, options.as_ref(), "ecr-charts", &logins(1)).unwrap();
            assert_eq!(body.type_, "Opaque", "{format:?}");
            let got: Vec<(String, String)> = body
                .data
                .keys()
                .map(|k| (k.clone(), reveal(&body, k).unwrap()))
                .collect();
            let expected: Vec<(String, String)> = expected
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(got, expected, "{format:?} {options:?}");
            assert_eq!(
                body.labels,
                BTreeMap::from([(ARGOCD_SECRET_TYPE.to_owned(), label.to_owned())])
            );
        }
    }

    #[test]
    fn dockerconfigjson_is_the_image_pull_secret_of_every_registry() {
        let body = secret_body(SecretFormat::DockerConfigJson, None, "ecr", &logins(2)).unwrap();
        assert_eq!(body.type_, "kubernetes.io/dockerconfigjson");
        assert!(body.labels.is_empty());
        let json: serde_json::Value =
            serde_json::from_str(&reveal(&body, DOCKERCONFIGJSON).unwrap()).unwrap();
        assert_eq!(json["auths"].as_object().unwrap().len(), 2);
        assert_eq!(body.data.len(), 1);
    }

    /// An Argo CD Secret for anything but one registry, or from a token that does not decode, is
    /// refused with a reason, and the message never holds the token.
    #[test]
    fn argocd_formats_refuse_other_than_one_registry_and_bad_tokens() {
        for n in [0, 2] {
            let err = secret_body(SecretFormat::ArgoCdRepository, None, "x", &logins(n))
                .err()
                .unwrap();
            assert_eq!(err.reason(), "InvalidSpec", "{n}");
        }
        let bad = BTreeMap::from([(HOST.to_owned(), SecretString::from("bm90LWEtbG9naW4=".to_owned()))]);
        let err = secret_body(SecretFormat::ArgoCdRepoCreds, None, "x", &bad)
            .err()
            .unwrap();
        assert_eq!(err.reason(), "InvalidToken");
        assert!(!err.to_string().contains("bm90LWEtbG9naW4"));
    }

    #[test]
    fn urls_and_the_report_on_namespaces_without_argocd() {
        use ArgoCdRepositoryType::{Helm, Oci};
        for (t, path, url) in [
            (Helm, None, "h.example"),
            (Helm, Some("/charts/"), "h.example/charts"),
            (Oci, None, "oci://h.example"),
            (Oci, Some("a/b"), "oci://h.example/a/b"),
        ] {
            assert_eq!(argocd_url(t, "h.example", path), url);
        }
        assert!(argocd_not_found(&[]).is_none());
        let one = argocd_not_found(&["apps".into()]).unwrap();
        assert_eq!(one.reason(), "ArgoCdNotFound");
        assert!(one.to_string().starts_with("Argo CD does not run in namespace apps (no ServiceAccount labelled app.kubernetes.io/part-of=argocd)"));
        let two = argocd_not_found(&["a".into(), "b".into()]).unwrap();
        assert!(two.to_string().contains("in 2 namespaces (a and b)"), "{two}");
    }
}
