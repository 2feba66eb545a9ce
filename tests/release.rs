//! The release workflows (`.github/workflows/`), checked here although they only run on the
//! forge: actionlint passes on them, every action is pinned by a full commit SHA, each job asks
//! for the permissions it needs and no more, the version step takes the tag's version and stops a
//! release the repository is not at, and what the release publishes is what the chart installs
//! and what Cargo.toml, Chart.yaml and the Dockerfile name. The release itself (buildx, cosign,
//! helm push, the GitHub Release) cannot run here; docs/dev/releasing.md says what was checked
//! and what was not.

// Test code: helpers may unwrap (the standard forbids unwrap outside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const RELEASE: &str = ".github/workflows/release.yml";
const CI: &str = ".github/workflows/ci.yml";
const WORKFLOWS: [&str; 2] = [RELEASE, CI];

/// The step of `job` whose `id` (or, failing that, `name`) is `key`.
fn step(workflow: &Value, job: &str, key: &str) -> Value {
    workflow["jobs"][job]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no job {job}"))
        .iter()
        .find(|s| s["id"] == key || s["name"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("job {job} has no step {key}"))
}

fn run_of(step: &Value) -> String {
    step["run"].as_str().unwrap().to_owned()
}

/// actionlint, from `ECR_OPERATOR_ACTIONLINT` or built (pinned, cached) by
/// tests/actionlint/build.sh; None only when Go, which builds it, is not installed.
fn actionlint() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ECR_OPERATOR_ACTIONLINT") {
        return Some(PathBuf::from(p));
    }
    let go = Command::new("go").arg("version").output();
    if !go.is_ok_and(|o| o.status.success()) {
        return None;
    }
    let out = Command::new("bash")
        .arg(root().join("tests/actionlint/build.sh"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "tests/actionlint/build.sh failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    Some(PathBuf::from(stdout.lines().last().unwrap().trim()))
}

fn lint(actionlint: &Path, dir: &Path, files: &[PathBuf]) -> (bool, String) {
    // The shellcheck tests/actionlint/build.sh unpacks beside actionlint: `run:` scripts are
    // checked on every machine, not only where shellcheck happens to be installed.
    let shellcheck = actionlint.with_file_name("shellcheck");
    assert!(
        shellcheck.is_file(),
        "no shellcheck beside {}",
        actionlint.display()
    );
    let out = Command::new(actionlint)
        .args(["-no-color", "-shellcheck"])
        .arg(&shellcheck)
        .args(files)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn workflows_pass_actionlint() {
    let Some(actionlint) = actionlint() else {
        // Straight to stderr: libtest captures eprintln! of a passing test, and this must show.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED workflows_pass_actionlint: Go is not installed, and it builds actionlint \
             (tests/actionlint/build.sh); install Go 1.26 or set ECR_OPERATOR_ACTIONLINT"
        );
        return;
    };
    let files: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut names: Vec<String> = files
        .iter()
        .map(|p| format!(".github/workflows/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    names.sort();
    let mut known = WORKFLOWS.map(String::from).to_vec();
    known.sort();
    assert_eq!(names, known, "the workflows this test knows");
    let (ok, text) = lint(&actionlint, &root(), &files);
    assert!(ok, "actionlint:\n{text}");

    // The same actionlint on a broken copy fails: it really reads the files it is given (an
    // undefined step output, a job that needs a job that does not exist).
    let dir = std::env::temp_dir().join(format!("ecr-operator-actionlint-{}", std::process::id()));
    std::fs::create_dir_all(dir.join(".github/workflows")).unwrap();
    let broken = read(RELEASE)
        .replace("steps.build.outputs.digest", "steps.built.outputs.digest")
        .replace("needs: [check, image, chart]", "needs: [check, image, charts]");
    let broken_path = dir.join(".github/workflows/release.yml");
    std::fs::write(&broken_path, broken).unwrap();
    let (ok, text) = lint(&actionlint, &dir, &[broken_path]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!ok, "actionlint passed a broken workflow:\n{text}");
    assert!(text.contains("built") && text.contains("charts"), "{text}");
}

/// `owner/repo@<40 hex digits> # vX.Y.Z` for every `uses:` of every workflow (a tag or branch can
/// be moved; a commit cannot), and the same action always at the same commit.
#[test]
fn every_action_is_pinned_by_a_full_commit_sha() {
    let mut pins: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut count = 0;
    for file in WORKFLOWS {
        for line in read(file).lines() {
            let Some(rest) = line.trim().trim_start_matches("- ").strip_prefix("uses: ") else {
                continue;
            };
            count += 1;
            let (reference, comment) = rest
                .split_once(" # ")
                .unwrap_or_else(|| panic!("{file}: {line}: no `# vX.Y.Z` comment"));
            let (action, sha) = reference.split_once('@').unwrap();
            assert!(
                sha.len() == 40
                    && sha
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{file}: {action} is not pinned by a full commit SHA: {sha}"
            );
            assert!(
                comment.starts_with('v') && comment[1..].split('.').all(|n| n.parse::<u32>().is_ok()),
                "{file}: {action}: the comment should be the release's version: {comment}"
            );
            let pin = (sha.to_owned(), comment.to_owned());
            let previous = pins.entry(action.to_owned()).or_insert_with(|| pin.clone());
            assert_eq!(*previous, pin, "{action} pinned twice differently");
        }
    }
    assert!(
        count >= 10,
        "only {count} uses: lines found; is the parsing right?"
    );
}

/// The scopes each job asks for: nothing at the top, `contents: read` unless the job writes.
fn permissions(workflow: &Value, job: &str) -> BTreeMap<String, String> {
    serde_json::from_value(workflow["jobs"][job]["permissions"].clone())
        .unwrap_or_else(|e| panic!("job {job}: permissions: {e}"))
}

#[test]
fn permissions_are_least_privilege_per_job() {
    let p = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let read_only = p(&[("contents", "read")]);
    for (file, jobs) in [
        (
            RELEASE,
            vec![
                ("check", read_only.clone()),
                // Pushes to ghcr.io and signs with the workflow's OIDC token.
                (
                    "image",
                    p(&[("contents", "read"), ("packages", "write"), ("id-token", "write")]),
                ),
                (
                    "chart",
                    p(&[("contents", "read"), ("packages", "write"), ("id-token", "write")]),
                ),
                // Creates the GitHub Release; pushes nothing.
                ("release", p(&[("contents", "write")])),
            ],
        ),
        (CI, vec![("fast", read_only.clone()), ("full", read_only.clone())]),
    ] {
        let workflow = yaml(file);
        assert_eq!(
            workflow["permissions"],
            serde_json::json!({}),
            "{file}: no permission at the workflow level"
        );
        let names: Vec<&str> = workflow["jobs"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected: Vec<&str> = jobs.iter().map(|(j, _)| *j).collect();
        expected.sort();
        assert_eq!(names, expected, "{file}: the jobs this test knows");
        for (job, scopes) in jobs {
            assert_eq!(permissions(&workflow, job), scopes, "{file}: job {job}");
        }
        // No job checks out with a token left in .git/config.
        for (job, spec) in workflow["jobs"].as_object().unwrap() {
            for s in spec["steps"].as_array().unwrap() {
                if s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("actions/checkout@"))
                {
                    assert_eq!(s["with"]["persist-credentials"], false, "{file}: {job}");
                }
            }
        }
    }
    // Nothing is triggered by pull_request_target (which runs with the base's secrets).
    assert!(!read(CI).contains("pull_request_target") && !read(RELEASE).contains("pull_request_target"));
}

/// Runs a workflow step's script as GitHub does (`bash --noprofile --norc -eo pipefail`), with
/// `cargo` replaced by a stub that records its arguments and exits with `cargo_exit`. Returns
/// (success, what the stub was called with, $GITHUB_OUTPUT).
fn run_step(script: &str, env: &[(&str, &str)], cargo_exit: i32) -> (bool, String, String) {
    let dir = std::env::temp_dir().join(format!("ecr-operator-step-{}-{cargo_exit}", std::process::id()));
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let stub = dir.join("bin/cargo");
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\necho \"$@\" >> \"{}\"\nexit {cargo_exit}\n",
            dir.join("calls").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let output = dir.join("output");
    std::fs::write(&output, "").unwrap();
    let path = format!("{}:{}", dir.join("bin").display(), std::env::var("PATH").unwrap());
    let status = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .env("PATH", path)
        .env("GITHUB_OUTPUT", &output)
        .envs(env.iter().copied())
        .current_dir(root())
        .status()
        .unwrap();
    let calls = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
    let out = std::fs::read_to_string(&output).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (status.success(), calls, out)
}

/// The version step of the release: tag vX.Y.Z gives X.Y.Z, which `cargo xtask release check`
/// must accept (that command's own tests are in xtask/src/release.rs) before the version is
/// handed to the other jobs. And that X.Y.Z is what the chart and Cargo.toml say.
#[test]
fn the_release_version_is_the_tags_and_the_repositorys() {
    let workflow = yaml(RELEASE);
    assert_eq!(workflow["on"]["push"]["tags"], serde_json::json!(["v*.*.*"]));
    let script = run_of(&step(&workflow, "check", "version"));
    let version = env!("CARGO_PKG_VERSION");
    let tag = format!("v{version}");

    let (ok, calls, out) = run_step(&script, &[("GITHUB_REF_NAME", &tag)], 0);
    assert!(ok);
    assert_eq!(calls.trim(), format!("xtask release check {version}"));
    assert_eq!(out.trim(), format!("version={version}"));

    // The check refuses: the step fails and hands no version on.
    let (ok, calls, out) = run_step(&script, &[("GITHUB_REF_NAME", "v9.9.9")], 1);
    assert!(!ok);
    assert_eq!(calls.trim(), "xtask release check 9.9.9");
    assert_eq!(out, "");

    // What the version is checked against: the chart's version and appVersion (the image tag the
    // chart defaults to) and the Dockerfile's ARG VERSION are the crate's.
    let chart = yaml("charts/ecr-operator/Chart.yaml");
    assert_eq!(chart["version"], version);
    assert_eq!(chart["appVersion"], version);
    assert!(
        read("Dockerfile")
            .lines()
            .any(|l| l == format!("ARG VERSION={version}"))
    );

    // Every job after check takes the version from it, and the image is tagged with it.
    for job in ["image", "chart", "release"] {
        assert_eq!(
            workflow["jobs"][job]["env"]["VERSION"], "${{ needs.check.outputs.version }}",
            "job {job}"
        );
        let needs = workflow["jobs"][job]["needs"].clone();
        let needs: Vec<String> = serde_json::from_value(needs.clone())
            .or_else(|_| serde_json::from_value::<String>(needs).map(|n| vec![n]))
            .unwrap();
        assert!(needs.contains(&"check".to_owned()), "job {job} needs check");
    }
    assert_eq!(
        workflow["jobs"]["check"]["outputs"]["version"],
        "${{ steps.version.outputs.version }}"
    );
}

/// What the release publishes is what the chart installs by default, in the namespace of the
/// repository the sources name (GHCR takes pushes with the workflow's token only there).
#[test]
fn the_release_publishes_what_the_chart_installs() {
    let workflow = yaml(RELEASE);
    let values = yaml("charts/ecr-operator/values.yaml");
    let image = workflow["env"]["IMAGE"].as_str().unwrap();
    assert_eq!(
        values["image"]["repository"], image,
        "values.yaml image.repository"
    );
    assert_eq!(
        values["image"]["tag"], "",
        "the tag defaults to appVersion, the released version"
    );

    let repo = env!("CARGO_PKG_REPOSITORY");
    let owner_and_name = repo.strip_prefix("https://github.com/").unwrap();
    assert_eq!(image, format!("ghcr.io/{owner_and_name}"));
    let owner = owner_and_name.split('/').next().unwrap();
    let charts = workflow["env"]["CHART_REPOSITORY"].as_str().unwrap();
    assert_eq!(charts, format!("oci://ghcr.io/{owner}/charts"));

    let build = step(&workflow, "image", "build");
    assert_eq!(build["with"]["tags"], "${{ env.IMAGE }}:${{ env.VERSION }}");
    assert_eq!(build["with"]["platforms"], "linux/amd64,linux/arm64");
    assert_eq!(build["with"]["file"], "Dockerfile");
    assert_eq!(build["with"]["push"], true);
    assert_eq!(build["with"]["sbom"], true, "an SBOM per platform in the index");
    // What is signed is the digest that was pushed.
    let sign = step(&workflow, "image", "Sign the image (keyless) and check its SBOMs");
    assert_eq!(sign["env"]["DIGEST"], "${{ steps.build.outputs.digest }}");
    assert!(run_of(&sign).contains("cosign sign --yes \"$IMAGE@$DIGEST\""));
    assert_eq!(
        workflow["jobs"]["image"]["outputs"]["digest"],
        "${{ steps.build.outputs.digest }}"
    );
    let args = build["with"]["build-args"].as_str().unwrap();
    for arg in [
        "VERSION=${{ env.VERSION }}",
        "REVISION=${{ github.sha }}",
        "CREATED=${{ steps.meta.outputs.created }}",
    ] {
        assert!(args.lines().any(|l| l.trim() == arg), "build-args lack {arg}");
        let name = arg.split('=').next().unwrap();
        assert!(
            read("Dockerfile").contains(&format!("\nARG {name}=")),
            "the Dockerfile has no ARG {name}"
        );
    }

    // The chart job packages the chart and pushes the archive helm names after Chart.yaml.
    let chart_job = workflow["jobs"]["chart"]["steps"].to_string();
    assert!(chart_job.contains("package charts/ecr-operator --destination dist"));
    assert!(chart_job.contains("archive=\\\"dist/ecr-operator-$VERSION.tgz\\\""));
    assert!(chart_job.contains("push \\\"$archive\\\" \\\"$CHART_REPOSITORY\\\""));
    assert_eq!(yaml("charts/ecr-operator/Chart.yaml")["name"], "ecr-operator");

    // The GitHub Release: the CHANGELOG section as notes, the CRDs and the IAM policy attached.
    let assets = run_of(&step(&workflow, "release", "Release notes and assets"));
    assert!(assets.contains("cargo xtask release notes \"$VERSION\" > dist/notes.md"));
    assert!(assets.contains("--bin ecr-operator -- crd > dist/crds.yaml"));
    assert!(assets.contains("cp docs/iam-policy.json dist/iam-policy.json"));
    assert!(root().join("docs/iam-policy.json").is_file());
    let create = run_of(&step(&workflow, "release", "Create the GitHub Release"));
    assert!(create.contains("dist/crds.yaml dist/iam-policy.json"));
    assert!(create.contains("--notes-file dist/body.md"));

    // The toolchain the workflows test with is Cargo.toml's rust-version.
    for file in WORKFLOWS {
        assert_eq!(
            yaml(file)["env"]["RUST_TOOLCHAIN"],
            env!("CARGO_PKG_RUST_VERSION"),
            "{file}"
        );
    }
}

/// One repository URL: Cargo.toml's `repository` (which `cargo xtask image` writes into the
/// image's `org.opencontainers.image.source`), the chart's `sources` and the Dockerfile's label.
#[test]
fn the_source_repository_is_named_the_same_everywhere() {
    let repo = env!("CARGO_PKG_REPOSITORY");
    assert!(repo.starts_with("https://github.com/"), "{repo}");
    let chart = yaml("charts/ecr-operator/Chart.yaml");
    assert_eq!(chart["sources"], serde_json::json!([repo]), "Chart.yaml sources");
    let dockerfile = read("Dockerfile");
    let label = format!("org.opencontainers.image.source=\"{repo}\"");
    assert!(dockerfile.contains(&label), "the Dockerfile lacks {label}");
    assert_eq!(dockerfile.matches("org.opencontainers.image.source=").count(), 1);
    // cargo xtask image takes the label from Cargo.toml's repository field.
    assert!(read("xtask/src/main.rs").contains("source: field(\"repository\")?"));
}
