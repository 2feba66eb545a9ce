//! The command line.

// Test code: helpers may unwrap (the standard forbids unwrap outside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::CommandFactory;
use ecr_operator::cli::Cli;

#[test]
fn cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn crd_command_prints_every_committed_crd() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ecr-operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    let mut expected = String::new();
    for crd in ecr_operator::api::crds() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crds")
            .join(ecr_operator::api::crd_file_name(&crd));
        expected.push_str("---\n");
        expected.push_str(&std::fs::read_to_string(path).unwrap());
    }
    assert_eq!(printed, expected);
}

#[test]
fn crd_command_writes_one_file_per_crd() {
    let dir = std::env::temp_dir().join(format!("ecr-operator-crd-{}", std::process::id()));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_ecr-operator"))
        .args(["crd", "--out-dir"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        names,
        [
            "clusterpullsecrets.ecr-operator.dev.yaml",
            "imagepolicies.ecr-operator.dev.yaml",
            "lifecyclepolicies.ecr-operator.dev.yaml",
            "publicrepositories.ecr-operator.dev.yaml",
            "pullsecrets.ecr-operator.dev.yaml",
            "pullthroughcacherules.ecr-operator.dev.yaml",
            "registries.ecr-operator.dev.yaml",
            "replicationrules.ecr-operator.dev.yaml",
            "repositories.ecr-operator.dev.yaml",
            "repositorycreationtemplates.ecr-operator.dev.yaml",
        ]
    );
}

/// `--watch-label-selector` (and its variable) is parsed by clap before anything starts: a
/// malformed selector ends the process at once with usage exit code 2 and says what is wrong;
/// a good one parses into its canonical form.
#[test]
fn a_malformed_watch_label_selector_stops_the_start_with_its_reason() {
    use clap::Parser;
    use ecr_operator::cli::Command;
    for (flag, env, reason) in [
        (
            Some("a in (b"),
            None,
            "expected values separated by commas and a closing ')'",
        ),
        (
            None,
            Some("Bad_Prefix/key=a"),
            "the prefix before '/' must be a DNS subdomain",
        ),
        (Some("team=a b"), None, "expected a comma between requirements"),
    ] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ecr-operator"));
        cmd.arg("run").env_remove("ECR_OPERATOR_WATCH_LABEL_SELECTOR");
        if let Some(flag) = flag {
            cmd.args(["--watch-label-selector", flag]);
        }
        if let Some(env) = env {
            cmd.env("ECR_OPERATOR_WATCH_LABEL_SELECTOR", env);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--watch-label-selector"), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
    }
    let cli = Cli::try_parse_from([
        "ecr-operator",
        "run",
        "--watch-label-selector",
        "!sharding.ecr-operator.dev/key , env in (b,a)",
    ])
    .unwrap();
    let Command::Run(args) = cli.command else {
        panic!("not run")
    };
    assert_eq!(
        args.watch_label_selector.unwrap().to_string(),
        "!sharding.ecr-operator.dev/key,env in (a,b)"
    );
}
