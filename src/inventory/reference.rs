//! Image references as Kubernetes objects spell them, parsed the way the container runtime
//! does (the distribution reference grammar): `[host[:port]/]path[:tag][@digest]`, with the
//! `docker.io` defaults (no host: `docker.io`; a one-component path on `docker.io`:
//! `library/<name>`), and the kubelet's `status.containerStatuses[].imageID` forms
//! (`docker-pullable://host/path@sha256:...`, `host/path@sha256:...`; a bare image ID such as
//! `sha256:...` or `docker://sha256:...` names no repository and is not a reference).

use std::fmt;

/// The host a reference without one resolves to.
pub const DEFAULT_HOST: &str = "docker.io";

/// One parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    /// Registry host, with its port if any, lower-cased (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`).
    pub host: String,
    /// Repository path inside the registry (`shop/web`).
    pub repository: String,
    /// The tag, when the reference names one (`None` for a digest-only reference).
    pub tag: Option<String>,
    /// The digest (`sha256:<64 hex>`), when the reference pins one.
    pub digest: Option<String>,
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    !alg.is_empty()
        && alg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c))
        && hex.len() >= 32
        && hex.chars().all(|c| c.is_ascii_hexdigit())
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !t.starts_with(['.', '-'])
}

fn valid_path(p: &str) -> bool {
    !p.is_empty()
        && p.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
        })
}

/// Parses an image reference from a container spec (`nginx`, `shop/web:1.2`,
/// `123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web@sha256:...`). `None` when it is not a
/// valid reference.
pub fn parse(reference: &str) -> Option<ImageRef> {
    let reference = reference.trim();
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) if valid_digest(d) => (r, Some(d.to_owned())),
        Some(_) => return None,
        None => (reference, None),
    };
    // The first component is a host when it has a '.' or a ':' or is "localhost".
    let (host, path) = match rest.split_once('/') {
        Some((first, after)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_ascii_lowercase(), after)
        }
        _ => (DEFAULT_HOST.to_owned(), rest),
    };
    // A tag follows the last ':' of the last path component (a ':' before a '/' is a port).
    let last = path.rsplit('/').next().unwrap_or(path);
    let (path, tag) = match last.rsplit_once(':') {
        Some((_, t)) => {
            let cut = path.len() - t.len() - 1;
            (&path[..cut], Some(t.to_owned()))
        }
        None => (path, None),
    };
    if tag.as_deref().is_some_and(|t| !valid_tag(t)) || !valid_path(path) {
        return None;
    }
    let host = match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DEFAULT_HOST.to_owned(),
        _ => host,
    };
    let repository = if host == DEFAULT_HOST && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    Some(ImageRef {
        host,
        repository,
        tag,
        digest,
    })
}

/// Parses a container status's `imageID`: the digest the kubelet pulled, with its repository.
/// `None` for an image ID that names no repository (`sha256:...`, `docker://sha256:...`) or
/// has no digest.
pub fn parse_image_id(image_id: &str) -> Option<ImageRef> {
    let s = image_id
        .strip_prefix("docker-pullable://")
        .or_else(|| image_id.strip_prefix("docker://"))
        .unwrap_or(image_id);
    let r = parse(s)?;
    r.digest.is_some().then_some(ImageRef { tag: None, ..r })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn r(host: &str, repo: &str, tag: Option<&str>, digest: Option<&str>) -> Option<ImageRef> {
        Some(ImageRef {
            host: host.into(),
            repository: repo.into(),
            tag: tag.map(Into::into),
            digest: digest.map(Into::into),
        })
    }

    #[test]
    fn references_parse_like_the_container_runtime() {
        let ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
        for (input, want) in [
            ("nginx", r("docker.io", "library/nginx", None, None)),
            ("nginx:1.27", r("docker.io", "library/nginx", Some("1.27"), None)),
            (
                "bitnami/redis:7",
                r("docker.io", "bitnami/redis", Some("7"), None),
            ),
            ("docker.io/nginx", r("docker.io", "library/nginx", None, None)),
            (
                "index.docker.io/library/nginx:1",
                r("docker.io", "library/nginx", Some("1"), None),
            ),
            ("localhost/app", r("localhost", "app", None, None)),
            (
                "localhost:5000/app:dev",
                r("localhost:5000", "app", Some("dev"), None),
            ),
            ("127.0.0.1:5000/a/b/c", r("127.0.0.1:5000", "a/b/c", None, None)),
            (
                &format!("{ecr}/shop/web:v1"),
                r(ecr, "shop/web", Some("v1"), None),
            ),
            (&format!("{ecr}/shop/web@{D}"), r(ecr, "shop/web", None, Some(D))),
            (
                &format!("{ecr}/shop/web:v1@{D}"),
                r(ecr, "shop/web", Some("v1"), Some(D)),
            ),
            (&format!("{}/Shop", ecr.to_uppercase()), None),
            (
                &format!("{}/shop", ecr.to_uppercase()),
                r(ecr, "shop", None, None),
            ),
            ("gcr.io/p/img:latest", r("gcr.io", "p/img", Some("latest"), None)),
            ("", None),
            ("UPPER/case", None),
            ("a//b", None),
            ("img:bad tag", None),
            ("img:-x", None),
            ("img@sha256:nothex", None),
            ("img@md5", None),
        ] {
            assert_eq!(parse(input), want, "{input}");
        }
    }

    #[test]
    fn image_ids_name_a_digest_or_nothing() {
        let ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
        for (input, want) in [
            (
                format!("docker-pullable://{ecr}/shop/web@{D}"),
                r(ecr, "shop/web", None, Some(D)),
            ),
            (format!("{ecr}/shop/web@{D}"), r(ecr, "shop/web", None, Some(D))),
            (
                format!("{ecr}/shop/web:v1@{D}"),
                r(ecr, "shop/web", None, Some(D)),
            ),
            (
                format!("docker.io/library/nginx@{D}"),
                r("docker.io", "library/nginx", None, Some(D)),
            ),
            (D.to_owned(), None),
            (format!("docker://{D}"), None),
            (format!("{ecr}/shop/web:v1"), None),
            (String::new(), None),
        ] {
            assert_eq!(parse_image_id(&input), want, "{input}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "docker.io/library/nginx:1",
            &format!("h.example/a/b@{D}"),
            &format!("h.example/a:t@{D}"),
        ] {
            let parsed = parse(s).unwrap();
            assert_eq!(parsed.to_string(), s);
            assert_eq!(parse(&parsed.to_string()), Some(parsed));
        }
    }
}
