//! The container image `cargo xtask image` builds, as a container runtime sees it: read back
//! with umoci (an OCI implementation that is not ours), compared with the Dockerfile, and run
//! with runc the way the chart runs it: as uid 65532, on a read-only root filesystem, with no
//! capabilities and no privilege escalation.
//!
//! `cargo xtask test` and `cargo xtask image --smoke` build the image and pass its path in
//! `ECR_OPERATOR_IMAGE`, and runc and umoci (`tests/image/install.sh tools`) in
//! `ECR_OPERATOR_IMAGE_TOOLS`; without them this test builds and installs both itself. runc
//! needs root here (as CI and these machines run); as another user the test fails saying so.

// Test code: helpers may unwrap (the standard forbids unwrap outside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ecr_operator_testenv::repo_root;
use serde_json::{Value, json};

/// The base the Dockerfile builds on, and what it has that the operator relies on (from the
/// distroless project's definition of its Debian 12 images): the `nonroot` user 65532 with its
/// home as working directory, `PATH`, and the CA bundle named by `SSL_CERT_FILE`. The image
/// built here must have the same.
const DOCKERFILE_BASE: &str = "gcr.io/distroless/cc-debian12:nonroot";
const BASE_WORKDIR: &str = "/home/nonroot";
const BASE_ENV: [&str; 2] = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
];
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The image, unpacked once for all tests of this file.
struct Unpacked {
    dir: PathBuf,
    runc: PathBuf,
    /// The image configuration (the config blob).
    config: Value,
    /// The runtime configuration umoci derived from it.
    runtime: Value,
    rootfs: PathBuf,
}

fn run_checked(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn last_line(out: &Output) -> PathBuf {
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim(),
    )
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `$ECR_OPERATOR_IMAGE`, or a fresh `cargo xtask image`.
fn image_archive() -> PathBuf {
    if let Some(p) = std::env::var_os("ECR_OPERATOR_IMAGE") {
        return PathBuf::from(p);
    }
    eprintln!("ECR_OPERATOR_IMAGE is not set: building the image with `cargo xtask image`");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    last_line(&run_checked(
        Command::new(cargo)
            .args(["xtask", "image"])
            .current_dir(repo_root())
            .stderr(Stdio::inherit()),
    ))
}

/// `$ECR_OPERATOR_IMAGE_TOOLS`, or the output of `tests/image/install.sh tools`.
fn tools_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("ECR_OPERATOR_IMAGE_TOOLS") {
        return PathBuf::from(p);
    }
    last_line(&run_checked(
        Command::new("bash")
            .arg(repo_root().join("tests/image/install.sh"))
            .arg("tools")
            .stderr(Stdio::inherit()),
    ))
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
}

fn unpacked() -> &'static Unpacked {
    static IMAGE: OnceLock<Unpacked> = OnceLock::new();
    IMAGE.get_or_init(|| {
        assert!(
            is_root(),
            "runc runs containers as root on these machines (and in CI): run this test as root"
        );
        let archive = image_archive();
        let tools = tools_dir();
        // One directory per run under the target directory; those of finished runs go.
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        if let Ok(entries) = std::fs::read_dir(tmp) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("image-test-")
                    && !Path::new("/proc").join(pid).exists()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tmp.join(format!("image-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let layout = dir.join("layout");
        std::fs::create_dir_all(&layout).unwrap();
        run_checked(
            Command::new("tar")
                .arg("-xf")
                .arg(&archive)
                .arg("-C")
                .arg(&layout),
        );

        let index: Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let entry = &index["manifests"][0];
        let tag = entry["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap()
            .to_owned();
        let manifest: Value =
            serde_json::from_slice(&blob(&layout, entry["digest"].as_str().unwrap())).unwrap();
        let config: Value =
            serde_json::from_slice(&blob(&layout, manifest["config"]["digest"].as_str().unwrap())).unwrap();

        // umoci checks every digest and size on the way and writes the runtime configuration.
        let bundle = dir.join("bundle");
        run_checked(
            Command::new(tools.join("bin/umoci"))
                .arg("unpack")
                .arg("--image")
                .arg(format!("{}:{tag}", layout.display()))
                .arg(&bundle),
        );
        let runtime: Value =
            serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
        Unpacked {
            rootfs: bundle.join("rootfs"),
            dir,
            runc: tools.join("bin/runc"),
            config,
            runtime,
        }
    })
}

/// A host path mounted into the container.
struct Mount {
    host: PathBuf,
    container: &'static str,
    writable: bool,
}

/// Runs the image's entrypoint with `args` under runc: umoci's runtime configuration (the
/// image's user, environment and working directory) with the chart's restrictions added (a
/// read-only root filesystem, no capabilities, no new privileges), plus `env` and `mounts`.
/// Returns the exit status's success and stdout + stderr.
fn run(name: &str, args: &[&str], env: &[(&str, &str)], mounts: &[Mount]) -> (bool, String) {
    let image = unpacked();
    let mut spec = image.runtime.clone();
    let entrypoint = image.config["config"]["Entrypoint"].as_array().unwrap().clone();
    let mut argv: Vec<Value> = entrypoint;
    argv.extend(args.iter().map(|a| json!(a)));
    spec["process"]["args"] = json!(argv);
    spec["process"]["terminal"] = json!(false);
    spec["process"]["noNewPrivileges"] = json!(true);
    spec["process"]["capabilities"] =
        json!({"bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": []});
    let envs = spec["process"]["env"].as_array_mut().unwrap();
    envs.extend(env.iter().map(|(k, v)| json!(format!("{k}={v}"))));
    spec["root"] = json!({"path": image.rootfs, "readonly": true});
    let extra = mounts.iter().map(|m| {
        json!({
            "destination": m.container,
            "type": "bind",
            "source": m.host,
            "options": ["bind", if m.writable { "rw" } else { "ro" }],
        })
    });
    spec["mounts"].as_array_mut().unwrap().extend(extra);

    let bundle = image.dir.join(format!("run-{name}"));
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();
    let id = format!("ecr-operator-image-test-{}-{name}", std::process::id());
    let state = image.dir.join("runc-state");
    let runc = |args: &[&str]| {
        let mut c = Command::new(&image.runc);
        c.arg("--root").arg(&state).args(args);
        c
    };
    let out_path = bundle.join("output");
    let out_file = std::fs::File::create(&out_path).unwrap();
    let mut child = runc(&["run", "--bundle", bundle.to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .stdout(out_file.try_clone().unwrap())
        .stderr(out_file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = runc(&["kill", &id, "KILL"]).status();
            let _ = child.wait();
            let _ = runc(&["delete", "--force", &id]).status();
            panic!(
                "{name}: still running after 60 s:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read_to_string(&out_path).unwrap();
    assert!(
        !output.contains("runc run failed") && !output.contains("container_linux.go"),
        "{name}: runc could not start the container:\n{output}"
    );
    (status.success(), output)
}

/// The final stage of the Dockerfile: its instructions (continuation lines joined) after the
/// last `FROM`, as (instruction, arguments), and its `FROM` image.
fn dockerfile_final_stage() -> (String, Vec<(String, String)>) {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if let Some(cont) = line.strip_suffix('\\') {
            current.push_str(cont);
            current.push(' ');
        } else {
            current.push_str(line);
            logical.push(std::mem::take(&mut current));
        }
    }
    let mut from = String::new();
    let mut stage = Vec::new();
    for l in logical {
        let (instr, rest) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        let instr = instr.to_ascii_uppercase();
        if instr == "FROM" {
            from = rest.split_whitespace().next().unwrap_or_default().to_owned();
            stage.clear();
        } else {
            stage.push((instr, rest.trim().to_owned()));
        }
    }
    (from, stage)
}

/// `k="v" k2=v2` (LABEL, ENV) as pairs.
fn key_values(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            value = chars.by_ref().take_while(|c| *c != '"').collect();
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        out.push((key.trim().to_owned(), value));
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_image_has_what_the_dockerfile_gives() {
    let image = unpacked();
    let c = &image.config["config"];
    let (from, stage) = dockerfile_final_stage();
    assert_eq!(
        from, DOCKERFILE_BASE,
        "the base facts in this test are those of {DOCKERFILE_BASE}"
    );
    let mut args = BTreeMap::new();
    let mut labels = BTreeMap::new();
    let mut env = Vec::new();
    let mut seen = Vec::new();
    for (instr, rest) in &stage {
        seen.push(instr.as_str());
        match instr.as_str() {
            "ARG" => {
                let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
                args.insert(k.to_owned(), v.to_owned());
            }
            "LABEL" => labels.extend(key_values(rest)),
            "ENV" => env.extend(key_values(rest).into_iter().map(|(k, v)| format!("{k}={v}"))),
            "USER" => assert_eq!(c["User"], json!(rest), "USER"),
            "ENTRYPOINT" => assert_eq!(c["Entrypoint"], serde_json::from_str::<Value>(rest).unwrap()),
            "CMD" => assert_eq!(c["Cmd"], serde_json::from_str::<Value>(rest).unwrap()),
            "EXPOSE" => {
                let ports: Vec<String> = rest.split_whitespace().map(|p| format!("{p}/tcp")).collect();
                let image_ports: Vec<String> =
                    c["ExposedPorts"].as_object().unwrap().keys().cloned().collect();
                assert_eq!(image_ports, ports);
            }
            "COPY" => {
                // COPY [--from=...] <src> <dest>: the binary, where the entrypoint runs it.
                let dest = rest.split_whitespace().last().unwrap();
                assert_eq!(c["Entrypoint"][0], json!(dest));
                let meta = std::fs::metadata(image.rootfs.join(dest.trim_start_matches('/'))).unwrap();
                assert!(meta.is_file());
                assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
                assert_eq!((meta.uid(), meta.gid()), (0, 0), "COPY leaves files to root");
            }
            other => panic!("the Dockerfile's final stage uses {other}: compare it here too"),
        }
    }
    for needed in ["USER", "ENTRYPOINT", "CMD", "COPY", "LABEL", "ENV", "EXPOSE"] {
        assert!(
            seen.contains(&needed),
            "the Dockerfile's final stage has no {needed}"
        );
    }

    // Labels: the same keys; constant values equal; ${ARG} values from what the build knows.
    let image_labels: BTreeMap<String, String> = serde_json::from_value(c["Labels"].clone()).unwrap();
    assert_eq!(
        labels.keys().collect::<Vec<_>>(),
        image_labels.keys().collect::<Vec<_>>(),
        "the Dockerfile and the image have different labels"
    );
    for (k, v) in &labels {
        if !v.contains("${") {
            assert_eq!(&image_labels[k], v, "label {k}");
        }
    }
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        args.get("VERSION").map(String::as_str),
        Some(version),
        "the Dockerfile's ARG VERSION"
    );
    assert_eq!(image_labels["org.opencontainers.image.version"], version);
    assert_eq!(
        image_labels["org.opencontainers.image.licenses"],
        env!("CARGO_PKG_LICENSE")
    );
    assert_eq!(
        image_labels["org.opencontainers.image.source"],
        env!("CARGO_PKG_REPOSITORY")
    );
    assert_eq!(
        image_labels["org.opencontainers.image.created"],
        image.config["created"].as_str().unwrap()
    );
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    let revision = &image_labels["org.opencontainers.image.revision"];
    assert!(
        revision == &head || revision == &format!("{head}-dirty"),
        "revision label {revision}, checkout at {head}: rebuild the image"
    );

    // ENV: the Dockerfile's, and the base's.
    let image_env = strings(&c["Env"]);
    for e in env.iter().map(String::as_str).chain(BASE_ENV) {
        assert!(
            image_env.iter().any(|i| i == e),
            "{e} is not in the image's Env {image_env:?}"
        );
    }
    assert_eq!(c["WorkingDir"], BASE_WORKDIR);

    // What the base gives, in the image's file system.
    let rootfs = &image.rootfs;
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.lines().any(|l| l.starts_with("nonroot:x:65532:65532:")),
        "{passwd}"
    );
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap();
    assert!(group.lines().any(|l| l == "nonroot:x:65532:"), "{group}");
    let home = std::fs::metadata(rootfs.join("home/nonroot")).unwrap();
    assert_eq!((home.uid(), home.gid()), (65532, 65532));
    let tmp = std::fs::metadata(rootfs.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    let bundle = std::fs::read_to_string(rootfs.join(CA_BUNDLE.trim_start_matches('/'))).unwrap();
    assert!(bundle.matches("-----BEGIN CERTIFICATE-----").count() > 100);
    // distroless/cc-debian12: Debian 12 libraries.
    let os_release = std::fs::read_to_string(rootfs.join("etc/os-release")).unwrap();
    let debian = from
        .split("-debian")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .unwrap();
    assert!(
        os_release.contains(&format!("VERSION_ID=\"{debian}\"")),
        "{os_release}"
    );
    assert!(
        rootfs.join("lib/x86_64-linux-gnu/libc.so.6").exists()
            || rootfs.join("lib/aarch64-linux-gnu/libc.so.6").exists()
    );

    // umoci's reading of the image agrees: user, command line, working directory.
    let p = &image.runtime["process"];
    assert_eq!(
        (p["user"]["uid"].as_u64(), p["user"]["gid"].as_u64()),
        (Some(65532), Some(65532))
    );
    let mut argv = strings(&c["Entrypoint"]);
    argv.extend(strings(&c["Cmd"]));
    assert_eq!(strings(&p["args"]), argv);
    assert_eq!(p["cwd"], BASE_WORKDIR);
    eprintln!(
        "umoci: user {}:{}, args {:?}, cwd {}",
        p["user"]["uid"],
        p["user"]["gid"],
        strings(&p["args"]),
        p["cwd"]
    );
}

#[test]
fn prints_its_version_and_the_committed_crds() {
    let (ok, out) = run("version", &["--version"], &[], &[]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), format!("ecr-operator {}", env!("CARGO_PKG_VERSION")));

    let (ok, out) = run("crd", &["crd"], &[], &[]);
    assert!(ok, "{out}");
    let mut expected = String::new();
    for crd in ecr_operator::api::crds() {
        expected.push_str("---\n");
        let path = repo_root()
            .join("crds")
            .join(ecr_operator::api::crd_file_name(&crd));
        expected.push_str(&std::fs::read_to_string(path).unwrap());
    }
    assert_eq!(out, expected);
}

#[test]
fn runs_as_65532_on_a_read_only_root_filesystem() {
    let image = unpacked();
    // The root filesystem: read-only, even where uid 65532 could write (/tmp is 1777).
    for dir in ["/", "/tmp", "/home/nonroot"] {
        let (ok, out) = run(
            &format!("write-{}", dir.replace('/', "")),
            &["crd", "--out-dir", dir],
            &[],
            &[],
        );
        assert!(!ok, "writing into {dir} succeeded:\n{out}");
        assert!(out.contains("Read-only file system"), "writing into {dir}: {out}");
    }
    // The process's uid and gid: it can write only where 65532 may, and what it writes is
    // owned by 65532:65532; root's directory is closed to it (no capability overrides that).
    let own = image.dir.join("owned-by-65532");
    let roots = image.dir.join("owned-by-root");
    for (dir, uid) in [(&own, 65532), (&roots, 0)] {
        std::fs::create_dir_all(dir).unwrap();
        std::os::unix::fs::chown(dir, Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let mounts = [
        Mount {
            host: own.clone(),
            container: "/out-own",
            writable: true,
        },
        Mount {
            host: roots.clone(),
            container: "/out-root",
            writable: true,
        },
    ];
    let (ok, out) = run("write-own", &["crd", "--out-dir", "/out-own"], &[], &mounts);
    assert!(ok, "{out}");
    let written: Vec<_> = std::fs::read_dir(&own)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .collect();
    assert_eq!(written.len(), ecr_operator::api::crds().len());
    assert!(written.iter().all(|m| (m.uid(), m.gid()) == (65532, 65532)));
    let (ok, out) = run("write-root", &["crd", "--out-dir", "/out-root"], &[], &mounts);
    assert!(!ok && out.contains("Permission denied"), "{out}");
}

/// The operator builds its Kubernetes client at start; with a kubeconfig that names no CA, the
/// client trusts the system's roots, which rustls-platform-verifier loads from the image's
/// bundle (and logs how many at debug level). The server does not exist, so the operator then
/// fails to connect and exits; that is all this needs.
#[test]
fn loads_the_ca_certificates_of_the_image() {
    let image = unpacked();
    let certs = std::fs::read_to_string(image.rootfs.join(CA_BUNDLE.trim_start_matches('/')))
        .unwrap()
        .matches("-----BEGIN CERTIFICATE-----")
        .count();
    let kube = image.dir.join("kube");
    std::fs::create_dir_all(&kube).unwrap();
    std::fs::write(
        kube.join("config"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
         contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n\
         users:\n- name: u\n  user: {token: not-a-token}\n",
    )
    .unwrap();
    let empty = image.dir.join("empty.crt");
    std::fs::write(&empty, "").unwrap();
    let env = [
        ("KUBECONFIG", "/kube/config"),
        ("ECR_OPERATOR_LOG", "info,rustls_platform_verifier=debug"),
        ("ECR_OPERATOR_LOG_FORMAT", "json"),
        ("ECR_OPERATOR_HTTP_ADDR", "127.0.0.1:8080"),
    ];
    let kube_mount = || Mount {
        host: kube.clone(),
        container: "/kube",
        writable: false,
    };

    let (ok, out) = run("roots", &["run"], &env, &[kube_mount()]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("Loaded {certs} CA root certificates from the system")),
        "the operator did not load the image's {certs} CA certificates:\n{out}"
    );
    assert!(out.contains("waiting for CRD"), "{out}");

    // Without the bundle (an empty file mounted over it) the same start fails for that reason:
    // the check above depends on the image's bundle.
    let no_bundle = Mount {
        host: empty,
        container: CA_BUNDLE,
        writable: false,
    };
    let (ok, out) = run("no-roots", &["run"], &env, &[kube_mount(), no_bundle]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("No CA certificates were loaded from the system"),
        "{out}"
    );
}

/// Reproducible builds need a binary without paths of the machine that built it.
#[test]
fn holds_no_path_of_the_build_machine() {
    let image = unpacked();
    let binary = std::fs::read(image.rootfs.join("ecr-operator")).unwrap();
    let mut paths = vec![repo_root()];
    for var in ["HOME", "CARGO_HOME", "CARGO_TARGET_DIR"] {
        if let Some(p) = std::env::var_os(var) {
            paths.push(PathBuf::from(p));
        }
    }
    for path in paths {
        let needle = path.to_string_lossy().into_owned();
        if needle.len() < 2 {
            continue;
        }
        let found = binary
            .windows(needle.len())
            .filter(|w| *w == needle.as_bytes())
            .count();
        assert_eq!(found, 0, "the binary contains {needle} {found} times");
    }
    // Dependencies' source paths are remapped to /cargo.
    assert!(binary.windows(21).any(|w| w == b"/cargo/registry/src/i"));
}
