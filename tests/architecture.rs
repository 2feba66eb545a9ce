//! The module boundaries the design relies on, checked on the source text.
//!
//! `src/decide/` holds the controllers' pure decisions: from what was read to what to do and what
//! the status says. It must stay free of I/O, so that every decision is a table test that runs in
//! microseconds and a controller's `sync` is visibly dereference → decide → act. This test fails
//! when a file there reaches for the Kubernetes client, the ECR backend, the controllers, the
//! runtime or the clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// What a pure module must not name, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    (
        "crate::controllers",
        "the controllers call decisions, not the other way round",
    ),
    ("kube::Client", "a Kubernetes client is I/O"),
    ("Api<", "a Kubernetes API handle is I/O"),
    ("Api::", "a Kubernetes API handle is I/O"),
    ("RegistryBackend", "the ECR backend is I/O"),
    ("crate::cache", "the caches wrap the ECR backend"),
    ("aws_sdk", "the SDK is the backend's alone"),
    ("async fn", "a decision does not wait"),
    (".await", "a decision does not wait"),
    ("tokio::", "a decision does not need the runtime"),
    ("SystemTime::now", "the clock is an input (`now`), not read"),
    ("Timestamp::now", "the clock is an input (`now`), not read"),
    ("std::fs", "no file system"),
    ("std::net", "no network"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn decisions_do_no_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/decide");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() >= 10, "expected the decide modules, found {files:?}");
    let mut violations = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue; // docs may name what the module does not use
            }
            for (pattern, why) in FORBIDDEN {
                if code.contains(pattern) {
                    violations.push(format!(
                        "{}:{}: `{pattern}` ({why})",
                        file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "src/decide/ must stay pure:\n{}",
        violations.join("\n")
    );
}

/// The same check catches what it is for: a line that would make a decision do I/O.
#[test]
fn the_check_sees_io() {
    let io = "    let repos = Api::<Repository>::all(client).list(&lp).await?;";
    let hits: Vec<_> = FORBIDDEN
        .iter()
        .filter(|(p, _)| io.contains(p))
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(hits, vec!["Api::", ".await"]);
}
