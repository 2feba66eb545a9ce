//! `cargo xtask image`: the operator's OCI image, built without a container engine.
//!
//! The image has two layers. The base holds what `gcr.io/distroless/cc-debian12:nonroot` (the
//! Dockerfile's base) holds for a program like ours: the files of Debian's libc6, libgcc-s1 and
//! gcc-12-base packages, the CA bundle built from Debian's ca-certificates (as
//! `update-ca-certificates` builds it), `/etc/passwd` and `/etc/group` with `nonroot` (65532),
//! `/home/nonroot`, `/tmp`, `/etc/os-release` and the packages' control files in
//! `/var/lib/dpkg/status.d/` (where image scanners look for them). The second layer is the
//! release binary at `/ecr-operator`, where the Dockerfile copies it.
//!
//! The output is reproducible: every entry has the commit time as its mtime, uid and gid are
//! numbers without names, entries are sorted, gzip has no timestamp, JSON keys are sorted, and
//! the only inputs are the packages (`tests/image/install.sh base`), the binary, the version and
//! the git commit. The same inputs give the same digest, whichever directory or time they come
//! from.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Where the operator's binary is in the image (the Dockerfile's `COPY` destination).
pub const BINARY_PATH: &str = "ecr-operator";
/// The CA bundle's path: where Debian's `update-ca-certificates` writes it, where distroless has
/// it, and what `SSL_CERT_FILE` names.
pub const CA_BUNDLE_PATH: &str = "etc/ssl/certs/ca-certificates.crt";
/// `nonroot` in distroless: the user the operator runs as.
pub const NONROOT: u64 = 65532;

const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What the labels and annotations say about the build.
#[derive(Debug, Clone)]
pub struct Meta {
    pub title: String,
    pub description: String,
    pub version: String,
    /// The git commit, with `-dirty` when tracked files differ from it.
    pub revision: String,
    pub source: String,
    pub licenses: String,
    /// Seconds since the epoch: the commit time, or `SOURCE_DATE_EPOCH`.
    pub created: u64,
}

/// One Debian package of the base, as `tests/image/install.sh base` left it.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// The package's file system tree (`dpkg-deb --fsys-tarfile`).
    pub tree: Vec<u8>,
    /// Its control fields (`dpkg-deb --field`).
    pub control: String,
}

/// The base's inputs.
#[derive(Debug, Clone)]
pub struct Base {
    pub packages: Vec<Package>,
    /// `ID`, `VERSION_ID` and `VERSION_CODENAME` of the Debian release the packages come from.
    pub release: BTreeMap<String, String>,
}

impl Base {
    /// Reads the directory `tests/image/install.sh base` printed.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        let text =
            |name: &str| read(name).and_then(|b| String::from_utf8(b).map_err(|e| format!("{name}: {e}")));
        let mut packages = Vec::new();
        for line in text("packages")?.lines().filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, version, arch] = fields[..] else {
                return Err(format!("{}: bad line {line:?}", dir.join("packages").display()));
            };
            packages.push(Package {
                name: name.to_owned(),
                version: version.to_owned(),
                arch: arch.to_owned(),
                tree: read(&format!("{name}.tar"))?,
                control: text(&format!("{name}.control"))?,
            });
        }
        let release = text("release")?
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(Self { packages, release })
    }

    /// The Debian architecture of the base (that of libc6).
    pub fn debian_arch(&self) -> Result<&str, String> {
        self.packages
            .iter()
            .find(|p| p.name == "libc6")
            .map(|p| p.arch.as_str())
            .ok_or_else(|| "the base has no libc6".to_owned())
    }
}

/// A file system entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl Node {
    fn dir(mode: u32) -> Self {
        Self {
            kind: Kind::Dir,
            mode,
            uid: 0,
            gid: 0,
        }
    }
    fn file(mode: u32, data: impl Into<Vec<u8>>) -> Self {
        Self {
            kind: Kind::File(data.into()),
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// A layer's tree: paths relative to `/`, without `./` or a trailing `/`.
pub type Tree = BTreeMap<String, Node>;

/// Adds `node` at `path`, creating missing parent directories (0755, root). A directory already
/// there is kept; any other entry twice is an error unless identical.
fn put(tree: &mut Tree, path: &str, node: Node) -> Result<(), String> {
    let mut parent = String::new();
    for part in path
        .split('/')
        .collect::<Vec<_>>()
        .split_last()
        .map_or(&[][..], |(_, p)| p)
    {
        if !parent.is_empty() {
            parent.push('/');
        }
        parent.push_str(part);
        tree.entry(parent.clone()).or_insert_with(|| Node::dir(0o755));
    }
    match tree.get(path) {
        Some(old) if old.kind == Kind::Dir && node.kind == Kind::Dir => Ok(()),
        Some(old) if *old == node => Ok(()),
        Some(_) => Err(format!("two different entries for /{path}")),
        None => {
            tree.insert(path.to_owned(), node);
            Ok(())
        }
    }
}

/// The path of a tar entry of a Debian package, normalised (`./usr/` → `usr`).
fn normalise(path: &str) -> String {
    path.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_owned()
}

/// The entries of a package's file system tar, and its files' contents by path.
fn package_entries(pkg: &Package) -> Result<Vec<(String, Node)>, String> {
    let mut archive = tar::Archive::new(pkg.tree.as_slice());
    let mut out = Vec::new();
    let entries = archive.entries().map_err(|e| format!("{}: {e}", pkg.name))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{}: {e}", pkg.name))?;
        let header = entry.header();
        let path = normalise(
            &entry
                .path()
                .map_err(|e| format!("{}: {e}", pkg.name))?
                .to_string_lossy(),
        );
        if path.is_empty() {
            continue;
        }
        let mode = header.mode().map_err(|e| format!("{}: {path}: {e}", pkg.name))? & 0o7777;
        let uid = header.uid().map_err(|e| format!("{}: {path}: {e}", pkg.name))?;
        let gid = header.gid().map_err(|e| format!("{}: {path}: {e}", pkg.name))?;
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| format!("{}: {path}: {e}", pkg.name))?;
                Kind::File(data)
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| format!("{}: {path}: {e}", pkg.name))?
                    .ok_or_else(|| format!("{}: {path}: symlink without a target", pkg.name))?;
                Kind::Symlink(target.to_string_lossy().into_owned())
            }
            other => return Err(format!("{}: {path}: unsupported entry type {other:?}", pkg.name)),
        };
        out.push((path, Node { kind, mode, uid, gid }));
    }
    Ok(out)
}

/// The CA bundle from the certificates of Debian's ca-certificates package, as
/// `update-ca-certificates` writes it with the default selection (every certificate the package
/// ships, in name order, each ending with a newline).
fn ca_bundle(entries: &[(String, Node)]) -> Result<Vec<u8>, String> {
    let mut certs: Vec<(&String, &Vec<u8>)> = entries
        .iter()
        .filter(|(path, _)| path.starts_with("usr/share/ca-certificates/") && path.ends_with(".crt"))
        .filter_map(|(path, node)| match &node.kind {
            Kind::File(data) => Some((path, data)),
            _ => None,
        })
        .collect();
    certs.sort();
    if certs.is_empty() {
        return Err("ca-certificates ships no certificate".into());
    }
    let mut bundle = Vec::new();
    for (_, data) in certs {
        bundle.extend_from_slice(data);
        if !data.ends_with(b"\n") {
            bundle.push(b'\n');
        }
    }
    Ok(bundle)
}

/// The base layer's tree.
pub fn base_tree(base: &Base) -> Result<Tree, String> {
    let mut tree = Tree::new();
    for pkg in &base.packages {
        let entries = package_entries(pkg)?;
        if pkg.name == "ca-certificates" {
            // Only the bundle and the licence: the update script and the single certificates
            // are of no use without a shell (distroless does the same).
            put(&mut tree, CA_BUNDLE_PATH, Node::file(0o644, ca_bundle(&entries)?))?;
            let copyright = "usr/share/doc/ca-certificates/copyright";
            let (_, node) = entries
                .into_iter()
                .find(|(p, _)| p == copyright)
                .ok_or_else(|| format!("ca-certificates has no /{copyright}"))?;
            put(&mut tree, copyright, node)?;
        } else {
            for (path, node) in entries {
                put(&mut tree, &path, node)?;
            }
        }
        put(
            &mut tree,
            &format!("var/lib/dpkg/status.d/{}", pkg.name),
            Node::file(0o644, pkg.control.as_bytes()),
        )?;
    }
    put(
        &mut tree,
        "etc/passwd",
        Node::file(
            0o644,
            "root:x:0:0:root:/root:/sbin/nologin\n\
             nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
             nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
        ),
    )?;
    put(
        &mut tree,
        "etc/group",
        Node::file(
            0o644,
            "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n",
        ),
    )?;
    put(
        &mut tree,
        "etc/nsswitch.conf",
        Node::file(
            0o644,
            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n\
             protocols: files\nservices: files\nethers: files\nrpc: files\n",
        ),
    )?;
    let field = |k: &str| base.release.get(k).map_or("", String::as_str);
    let os_release = format!(
        "PRETTY_NAME=\"ecr-operator base (Debian GNU/Linux {v} packages)\"\nNAME=\"Debian GNU/Linux\"\n\
         ID={id}\nVERSION_ID=\"{v}\"\nVERSION=\"Debian GNU/Linux {v} ({c})\"\nVERSION_CODENAME={c}\n",
        id = field("ID"),
        v = field("VERSION_ID"),
        c = field("VERSION_CODENAME"),
    );
    put(&mut tree, "etc/os-release", Node::file(0o644, os_release))?;
    put(&mut tree, "root", Node::dir(0o700))?;
    put(&mut tree, "tmp", Node::dir(0o1777))?;
    put(
        &mut tree,
        "home/nonroot",
        Node {
            kind: Kind::Dir,
            mode: 0o700,
            uid: NONROOT,
            gid: NONROOT,
        },
    )?;
    Ok(tree)
}

/// The application layer's tree: the binary, as the Dockerfile's `COPY` leaves it (root, 0755).
pub fn app_tree(binary: Vec<u8>) -> Tree {
    Tree::from([(BINARY_PATH.to_owned(), Node::file(0o755, binary))])
}

/// A layer: its tar, gzipped, and both digests.
#[derive(Debug, Clone)]
pub struct Layer {
    pub gz: Vec<u8>,
    pub tar_size: u64,
    /// sha256 of the uncompressed tar (the config's `diff_ids`).
    pub diff_id: String,
    /// sha256 of the gzipped tar (the manifest's layer digest).
    pub digest: String,
}

fn sha256(data: &[u8]) -> String {
    let mut hex = String::from("sha256:");
    for b in Sha256::digest(data) {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// A header with everything fixed but the type, path, size and mode.
fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_size(size);
    h.set_mtime(mtime);
    h
}

/// Writes `tree` as a tar (sorted, every mtime `mtime`).
pub fn tar_of(tree: &Tree, mtime: u64) -> Result<Vec<u8>, String> {
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    for (path, node) in tree {
        let err = |e: std::io::Error| format!("/{path}: {e}");
        match &node.kind {
            Kind::Dir => {
                let mut h = header(tar::EntryType::Directory, node.mode, node.uid, node.gid, 0, mtime);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())
                    .map_err(err)?;
            }
            Kind::File(data) => {
                let mut h = header(
                    tar::EntryType::Regular,
                    node.mode,
                    node.uid,
                    node.gid,
                    data.len() as u64,
                    mtime,
                );
                b.append_data(&mut h, path, data.as_slice()).map_err(err)?;
            }
            Kind::Symlink(target) => {
                let mut h = header(tar::EntryType::Symlink, node.mode, node.uid, node.gid, 0, mtime);
                b.append_link(&mut h, path, target).map_err(err)?;
            }
        }
    }
    b.into_inner().map_err(|e| e.to_string())
}

fn gzip(data: &[u8]) -> Result<Vec<u8>, String> {
    // No file name, mtime 0, OS "unknown": nothing of the build host in the header.
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(data).map_err(|e| e.to_string())?;
    gz.finish().map_err(|e| e.to_string())
}

pub fn layer(tree: &Tree, mtime: u64) -> Result<Layer, String> {
    let tar = tar_of(tree, mtime)?;
    let gz = gzip(&tar)?;
    Ok(Layer {
        diff_id: sha256(&tar),
        digest: sha256(&gz),
        tar_size: tar.len() as u64,
        gz,
    })
}

/// RFC 3339 in UTC for seconds since the epoch.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The OCI platform of a Debian architecture.
pub fn oci_platform(debian_arch: &str) -> Result<(&'static str, Option<&'static str>), String> {
    Ok(match debian_arch {
        "amd64" => ("amd64", None),
        "arm64" => ("arm64", Some("v8")),
        "armhf" => ("arm", Some("v7")),
        "i386" => ("386", None),
        "ppc64el" => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        other => {
            return Err(format!(
                "no OCI platform known for the Debian architecture {other}"
            ));
        }
    })
}

/// The labels (config) and annotations (manifest): the same `org.opencontainers.image.*` keys.
pub fn labels(meta: &Meta) -> BTreeMap<String, String> {
    [
        ("title", meta.title.clone()),
        ("description", meta.description.clone()),
        ("version", meta.version.clone()),
        ("revision", meta.revision.clone()),
        ("source", meta.source.clone()),
        ("licenses", meta.licenses.clone()),
        ("created", rfc3339(meta.created)),
    ]
    .into_iter()
    .map(|(k, v)| (format!("org.opencontainers.image.{k}"), v))
    .collect()
}

/// The image configuration: what the Dockerfile's final stage gives (its own `USER`, `ENV`,
/// `EXPOSE`, `ENTRYPOINT`, `CMD` and `LABEL`s, and distroless' `PATH`, `SSL_CERT_FILE` and
/// working directory).
pub fn config(meta: &Meta, base: &Base, layers: &[&Layer]) -> Result<Value, String> {
    let (arch, variant) = oci_platform(base.debian_arch()?)?;
    let created = rfc3339(meta.created);
    let packages: Vec<String> = base
        .packages
        .iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect();
    let mut config = json!({
        "created": created,
        "architecture": arch,
        "os": "linux",
        "config": {
            "User": format!("{NONROOT}:{NONROOT}"),
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                format!("SSL_CERT_FILE=/{CA_BUNDLE_PATH}"),
                "MALLOC_ARENA_MAX=2",
            ],
            "Entrypoint": [format!("/{BINARY_PATH}")],
            "Cmd": ["run"],
            "WorkingDir": "/home/nonroot",
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": labels(meta),
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        },
        "history": [
            {
                "created": created,
                "created_by": format!("cargo xtask image: base from Debian {} packages {}",
                    base.release.get("VERSION_CODENAME").map_or("", String::as_str), packages.join(" ")),
            },
            {
                "created": created,
                "created_by": format!("cargo xtask image: COPY ecr-operator /{BINARY_PATH} (cargo build --release --locked, {})", meta.revision),
            },
        ],
    });
    if let Some(v) = variant {
        config["variant"] = json!(v);
    }
    Ok(config)
}

/// The built image.
#[derive(Debug)]
pub struct Image {
    /// The OCI archive: a tar of an OCI image layout.
    pub archive: Vec<u8>,
    /// The manifest's digest, the image's identity.
    pub digest: String,
    pub platform: String,
    /// Sum of the layers' gzipped sizes (what a registry stores and a node pulls).
    pub compressed: u64,
    /// Sum of the layers' tar sizes (what a node unpacks).
    pub uncompressed: u64,
    pub config: Value,
}

fn descriptor(media: &str, data: &[u8]) -> Value {
    json!({"mediaType": media, "digest": sha256(data), "size": data.len()})
}

/// Builds the image: base tree, binary, labels, into an OCI archive.
pub fn build(meta: &Meta, base: &Base, binary: Vec<u8>) -> Result<Image, String> {
    let base_layer = layer(&base_tree(base)?, meta.created)?;
    let app_layer = layer(&app_tree(binary), meta.created)?;
    let layers = [&base_layer, &app_layer];
    let config = config(meta, base, &layers)?;
    let config_json = serde_json::to_vec(&config).map_err(|e| e.to_string())?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": descriptor(MEDIA_CONFIG, &config_json),
        "layers": layers.iter().map(|l| json!({"mediaType": MEDIA_LAYER, "digest": l.digest, "size": l.gz.len()})).collect::<Vec<_>>(),
        "annotations": labels(meta),
    });
    let manifest_json = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    let (arch, variant) = oci_platform(base.debian_arch()?)?;
    let mut platform = json!({"architecture": arch, "os": "linux"});
    if let Some(v) = variant {
        platform["variant"] = json!(v);
    }
    let mut entry = descriptor(MEDIA_MANIFEST, &manifest_json);
    entry["platform"] = platform;
    entry["annotations"] = json!({"org.opencontainers.image.ref.name": meta.version});
    let index = json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [entry]});
    let index_json = serde_json::to_vec(&index).map_err(|e| e.to_string())?;

    let mut layout = Tree::new();
    let blob = |data: &[u8]| format!("blobs/{}", sha256(data).replacen(':', "/", 1));
    put(
        &mut layout,
        "oci-layout",
        Node::file(0o644, br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
    )?;
    put(&mut layout, "index.json", Node::file(0o644, index_json))?;
    put(
        &mut layout,
        &blob(&manifest_json),
        Node::file(0o644, manifest_json.clone()),
    )?;
    put(&mut layout, &blob(&config_json), Node::file(0o644, config_json))?;
    for l in layers {
        put(&mut layout, &blob(&l.gz), Node::file(0o644, l.gz.clone()))?;
    }
    Ok(Image {
        archive: tar_of(&layout, meta.created)?,
        digest: sha256(&manifest_json),
        platform: match variant {
            Some(v) => format!("linux/{arch}/{v}"),
            None => format!("linux/{arch}"),
        },
        compressed: layers.iter().map(|l| l.gz.len() as u64).sum(),
        uncompressed: layers.iter().map(|l| l.tar_size).sum(),
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, &[u8], u64)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data, mtime) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(*mtime);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// A small base shaped like the real one, its package trees made at `mtime`.
    fn base(mtime: u64) -> Base {
        let pkg = |name: &str, arch: &str, tree: Vec<u8>| Package {
            name: name.into(),
            version: "1.0-1".into(),
            arch: arch.into(),
            tree,
            control: format!("Package: {name}\nVersion: 1.0-1\n"),
        };
        Base {
            packages: vec![
                pkg(
                    "libc6",
                    "amd64",
                    tar_with(&[("./lib/x86_64-linux-gnu/libc.so.6", b"\x7fELF libc", mtime)]),
                ),
                pkg(
                    "ca-certificates",
                    "all",
                    tar_with(&[
                        (
                            "./usr/share/ca-certificates/mozilla/B.crt",
                            b"-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----",
                            mtime,
                        ),
                        (
                            "./usr/share/ca-certificates/mozilla/A.crt",
                            b"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n",
                            mtime,
                        ),
                        ("./usr/share/doc/ca-certificates/copyright", b"MPL", mtime),
                        ("./usr/sbin/update-ca-certificates", b"#!/bin/sh", mtime),
                    ]),
                ),
            ],
            release: BTreeMap::from([
                ("ID".into(), "debian".into()),
                ("VERSION_ID".into(), "12".into()),
                ("VERSION_CODENAME".into(), "bookworm".into()),
            ]),
        }
    }

    fn meta() -> Meta {
        Meta {
            title: "ecr-operator".into(),
            description: "d".into(),
            version: "0.1.0".into(),
            revision: "0123456789abcdef0123456789abcdef01234567".into(),
            source: "https://example.com/ecr-operator".into(),
            licenses: "Apache-2.0".into(),
            created: 1_700_000_000,
        }
    }

    /// Files of a layer (gzipped tar) as path → (mode, uid, gid, mtime, data).
    fn unpack(gz: &[u8]) -> BTreeMap<String, (u32, u64, u64, u64, Vec<u8>)> {
        let mut out = BTreeMap::new();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(gz));
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            out.insert(
                path,
                (
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                    data,
                ),
            );
        }
        out
    }

    #[test]
    fn same_inputs_give_the_same_digest_whatever_the_input_mtimes() {
        let a = build(&meta(), &base(1), b"binary".to_vec()).unwrap();
        let b = build(&meta(), &base(2_000_000_000), b"binary".to_vec()).unwrap();
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.archive, b.archive);
        // And any input change shows.
        let c = build(&meta(), &base(1), b"binary2".to_vec()).unwrap();
        assert_ne!(a.digest, c.digest);
        let mut later = meta();
        later.revision = "1123456789abcdef0123456789abcdef01234567".into();
        assert_ne!(
            a.digest,
            build(&later, &base(1), b"binary".to_vec()).unwrap().digest
        );
    }

    #[test]
    fn every_entry_is_sorted_and_stamped_with_the_commit_time() {
        let tree = base_tree(&base(5)).unwrap();
        let l = layer(&tree, 1_700_000_000).unwrap();
        let files = unpack(&l.gz);
        assert!(files.values().all(|(_, _, _, mtime, _)| *mtime == 1_700_000_000));
        let names: Vec<&String> = files.keys().collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        // The gzip header carries no time and no host: bytes 4..8 are the mtime, 9 the OS.
        assert_eq!(&l.gz[4..8], &[0, 0, 0, 0]);
        assert_eq!(l.gz[9], 255);
    }

    #[test]
    fn the_base_has_the_distroless_layout() {
        let files = unpack(&layer(&base_tree(&base(5)).unwrap(), 0).unwrap().gz);
        let text = |p: &str| String::from_utf8(files[p].4.clone()).unwrap();
        assert!(text("etc/passwd").contains("nonroot:x:65532:65532:nonroot:/home/nonroot:"));
        assert!(text("etc/group").contains("nonroot:x:65532:"));
        assert_eq!(files["home/nonroot/"].0 & 0o7777, 0o700);
        assert_eq!(
            (files["home/nonroot/"].1, files["home/nonroot/"].2),
            (65532, 65532)
        );
        assert_eq!(files["tmp/"].0 & 0o7777, 0o1777);
        // The bundle: every certificate in name order, each ending with a newline.
        assert_eq!(
            text(CA_BUNDLE_PATH),
            "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n"
        );
        assert!(files.contains_key("usr/share/doc/ca-certificates/copyright"));
        assert!(!files.contains_key("usr/sbin/update-ca-certificates"));
        assert!(!files.keys().any(|p| p.ends_with(".crt") && p != CA_BUNDLE_PATH));
        assert!(files.contains_key("lib/x86_64-linux-gnu/libc.so.6"));
        assert_eq!(
            text("var/lib/dpkg/status.d/libc6"),
            "Package: libc6\nVersion: 1.0-1\n"
        );
        assert!(text("etc/os-release").contains("VERSION_CODENAME=bookworm"));
        assert!(files.keys().all(|p| !p.starts_with('/') && !p.starts_with("./")));
    }

    #[test]
    fn config_and_labels() {
        let img = build(&meta(), &base(1), b"binary".to_vec()).unwrap();
        let c = &img.config;
        assert_eq!(c["architecture"], "amd64");
        assert_eq!(c["created"], "2023-11-14T22:13:20Z");
        assert_eq!(c["config"]["User"], "65532:65532");
        assert_eq!(c["config"]["Entrypoint"], json!(["/ecr-operator"]));
        assert_eq!(
            c["config"]["Labels"]["org.opencontainers.image.revision"],
            meta().revision
        );
        assert_eq!(
            c["config"]["Labels"]["org.opencontainers.image.created"],
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        assert_eq!(img.platform, "linux/amd64");
    }

    #[test]
    fn a_conflicting_file_is_refused() {
        let mut tree = Tree::new();
        put(&mut tree, "etc/x", Node::file(0o644, "a")).unwrap();
        put(&mut tree, "etc/x", Node::file(0o644, "a")).unwrap();
        assert!(put(&mut tree, "etc/x", Node::file(0o644, "b")).is_err());
        assert_eq!(tree["etc"], Node::dir(0o755));
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_764_460_800 + 3_661), "2025-11-30T01:01:01Z");
    }
}
