//! One version for the whole release, and what the release workflow
//! (`.github/workflows/release.yml`) asks of the repository:
//!
//! - `cargo xtask version X.Y.Z` ([`bump`]): sets the version in `Cargo.toml` (the operator's
//!   package), the chart's `version` and `appVersion`, the Dockerfile's `ARG VERSION`, and turns
//!   CHANGELOG.md's `## [Unreleased]` section into `## [X.Y.Z] - <today>` under a new, empty
//!   `## [Unreleased]` (Keep a Changelog). The caller then lets cargo update Cargo.lock.
//! - `cargo xtask release check X.Y.Z` ([`check`]): every one of those places says X.Y.Z and
//!   CHANGELOG.md has a dated, non-empty section for it. The workflow runs it on the tag's
//!   version before it builds anything.
//! - `cargo xtask release notes X.Y.Z` ([`notes`]): that CHANGELOG section, the GitHub Release's
//!   notes.
//!
//! The files are edited as text, line by line, so that nothing else in them changes.

use std::path::Path;

pub const CARGO_TOML: &str = "Cargo.toml";
pub const CHART_YAML: &str = "charts/ecr-operator/Chart.yaml";
pub const DOCKERFILE: &str = "Dockerfile";
pub const CHANGELOG: &str = "CHANGELOG.md";
const UNRELEASED: &str = "## [Unreleased]";

/// `X.Y.Z` or `X.Y.Z-PRE` (SemVer 2.0.0 without build metadata): numbers without leading zeros,
/// pre-release identifiers of `[0-9A-Za-z-]`.
pub fn valid_version(v: &str) -> bool {
    let (core, pre) = match v.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (v, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let number = |n: &&str| {
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n.len() == 1 || !n.starts_with('0'))
    };
    numbers.len() == 3
        && numbers.iter().all(number)
        && pre.is_none_or(|pre| {
            pre.split('.')
                .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        })
}

fn read(root: &Path, file: &str) -> Result<String, String> {
    std::fs::read_to_string(root.join(file)).map_err(|e| format!("{file}: {e}"))
}

fn write(root: &Path, file: &str, text: &str) -> Result<(), String> {
    std::fs::write(root.join(file), text).map_err(|e| format!("{file}: {e}"))
}

/// Applies `edit` to the first line for which it returns a new line; an error when none does.
fn replace_line(
    text: &str,
    file: &str,
    what: &str,
    mut edit: impl FnMut(usize, &str) -> Option<String>,
) -> Result<String, String> {
    let mut done = false;
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        match (!done).then(|| edit(i, body)).flatten() {
            Some(new) => {
                out.push_str(&new);
                out.push_str(end);
                done = true;
            }
            None => out.push_str(line),
        }
    }
    if done {
        Ok(out)
    } else {
        Err(format!("{file}: no {what} line"))
    }
}

/// The line numbers of the `[package]` table of a Cargo.toml (from its header to the next table).
fn package_table(text: &str) -> std::ops::Range<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.trim() == "[package]");
    match start {
        None => 0..0,
        Some(s) => {
            let end = lines[s + 1..]
                .iter()
                .position(|l| l.trim_start().starts_with('['))
                .map_or(lines.len(), |e| s + 1 + e);
            s..end
        }
    }
}

/// `key = "value"` or `key: value` / `key: "value"`: the value when the line sets `key`.
fn value_of<'a>(line: &'a str, key: &str, sep: char) -> Option<&'a str> {
    let rest = line.strip_prefix(key)?.trim_start().strip_prefix(sep)?;
    let rest = rest.split(" #").next().unwrap_or_default().trim();
    Some(rest.trim_matches('"'))
}

/// The version each place names: (place, version or None when it names none).
pub fn versions(root: &Path) -> Result<Vec<(String, Option<String>)>, String> {
    let cargo = read(root, CARGO_TOML)?;
    let package = package_table(&cargo);
    let cargo_version = cargo
        .lines()
        .enumerate()
        .filter(|(i, _)| package.contains(i))
        .find_map(|(_, l)| value_of(l, "version", '='));
    let chart = read(root, CHART_YAML)?;
    let chart_value = |key: &str| chart.lines().find_map(|l| value_of(l, key, ':'));
    let dockerfile = read(root, DOCKERFILE)?;
    let arg = dockerfile
        .lines()
        .find_map(|l| l.trim().strip_prefix("ARG VERSION="));
    let own = |v: Option<&str>| v.map(str::to_owned);
    Ok(vec![
        (format!("{CARGO_TOML} [package] version"), own(cargo_version)),
        (format!("{CHART_YAML} version"), own(chart_value("version"))),
        (format!("{CHART_YAML} appVersion"), own(chart_value("appVersion"))),
        (format!("{DOCKERFILE} ARG VERSION"), own(arg)),
    ])
}

/// The heading line of `version`'s CHANGELOG section: `## [X.Y.Z]` or `## [X.Y.Z] - ...`.
fn is_heading_of(line: &str, version: &str) -> bool {
    line.strip_prefix("## [")
        .and_then(|rest| rest.strip_prefix(version))
        .is_some_and(|rest| rest == "]" || rest.starts_with("] "))
}

/// The text of the CHANGELOG section `## [version] - ...`, up to the next `## ` heading or the
/// link definitions at the end (`[x]: url`), trimmed; None when there is no such section.
pub fn notes(changelog: &str, version: &str) -> Option<String> {
    let mut lines = changelog.lines();
    lines.by_ref().find(|l| is_heading_of(l, version))?;
    let body: Vec<&str> = lines
        .take_while(|l| !l.starts_with("## ") && !is_link_definition(l))
        .collect();
    Some(body.join("\n").trim().to_owned())
}

fn is_link_definition(line: &str) -> bool {
    line.starts_with('[') && line.contains("]: ")
}

/// The date of a section heading `## [version] - YYYY-MM-DD`, if it has one.
fn section_date<'a>(changelog: &'a str, version: &str) -> Option<&'a str> {
    let line = changelog.lines().find(|l| is_heading_of(l, version))?;
    let date = line.split_once("] - ")?.1.trim();
    let b = date.as_bytes();
    let ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    ok.then_some(date)
}

/// `cargo xtask release check VERSION`: every place names `version`, and CHANGELOG.md has a
/// dated section for it with something in it. All problems are reported at once.
pub fn check(root: &Path, version: &str) -> Result<(), String> {
    if !valid_version(version) {
        return Err(format!(
            "{version:?} is not a version X.Y.Z (or X.Y.Z-PRE); a release tag is vX.Y.Z"
        ));
    }
    let mut problems = Vec::new();
    for (place, found) in versions(root)? {
        match found {
            Some(v) if v == version => {}
            Some(v) => problems.push(format!("{place} is {v}, not {version}")),
            None => problems.push(format!("{place} is not set")),
        }
    }
    let changelog = read(root, CHANGELOG)?;
    match notes(&changelog, version) {
        None => problems.push(format!("{CHANGELOG} has no section ## [{version}]")),
        Some(n) if n.is_empty() => problems.push(format!("{CHANGELOG}: ## [{version}] is empty")),
        Some(_) if section_date(&changelog, version).is_none() => problems.push(format!(
            "{CHANGELOG}: the heading of [{version}] has no date (## [{version}] - YYYY-MM-DD)"
        )),
        Some(_) => {}
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the repository is not at version {version} (cargo xtask version {version} sets it):\n  {}",
            problems.join("\n  ")
        ))
    }
}

/// `cargo xtask version VERSION` without Cargo.lock: edits the four files under `root` (`date`
/// is the CHANGELOG section's, YYYY-MM-DD). Refuses an invalid version, a version that already
/// has a CHANGELOG section, and an empty `## [Unreleased]` (nothing to release).
pub fn bump(root: &Path, version: &str, date: &str) -> Result<(), String> {
    if !valid_version(version) {
        return Err(format!("{version:?} is not a version X.Y.Z (or X.Y.Z-PRE)"));
    }
    // Read and edit everything first, so that an error leaves every file as it was.
    let cargo = read(root, CARGO_TOML)?;
    let package = package_table(&cargo);
    let cargo = replace_line(&cargo, CARGO_TOML, "[package] version", |i, l| {
        (package.contains(&i) && value_of(l, "version", '=').is_some())
            .then(|| format!("version = \"{version}\""))
    })?;
    let chart = read(root, CHART_YAML)?;
    let chart = replace_line(&chart, CHART_YAML, "version", |_, l| {
        value_of(l, "version", ':').map(|_| format!("version: {version}"))
    })?;
    let chart = replace_line(&chart, CHART_YAML, "appVersion", |_, l| {
        value_of(l, "appVersion", ':').map(|_| format!("appVersion: \"{version}\""))
    })?;
    let dockerfile = read(root, DOCKERFILE)?;
    let dockerfile = replace_line(&dockerfile, DOCKERFILE, "ARG VERSION=", |_, l| {
        l.trim()
            .starts_with("ARG VERSION=")
            .then(|| format!("ARG VERSION={version}"))
    })?;
    let changelog = read(root, CHANGELOG)?;
    if notes(&changelog, version).is_some() {
        return Err(format!("{CHANGELOG} already has a section ## [{version}]"));
    }
    match notes(&changelog, "Unreleased") {
        None => return Err(format!("{CHANGELOG} has no {UNRELEASED} section")),
        Some(n) if n.is_empty() => {
            return Err(format!("{CHANGELOG}: {UNRELEASED} is empty: nothing to release"));
        }
        Some(_) => {}
    }
    let changelog = replace_line(&changelog, CHANGELOG, UNRELEASED, |_, l| {
        (l.trim_end() == UNRELEASED).then(|| format!("{UNRELEASED}\n\n## [{version}] - {date}"))
    })?;
    write(root, CARGO_TOML, &cargo)?;
    write(root, CHART_YAML, &chart)?;
    write(root, DOCKERFILE, &dockerfile)?;
    write(root, CHANGELOG, &changelog)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::path::PathBuf;

    fn repo_root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    /// A copy of the four files in a fresh temporary directory.
    fn temp_copy(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-release-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for file in [CARGO_TOML, CHART_YAML, DOCKERFILE, CHANGELOG] {
            let to = dir.join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(repo_root().join(file), to).unwrap();
        }
        dir
    }

    #[test]
    fn versions_are_checked() {
        for ok in ["0.1.0", "1.22.333", "1.0.0-rc.1", "2.0.0-alpha-2"] {
            assert!(valid_version(ok), "{ok}");
        }
        for bad in [
            "",
            "1",
            "1.2",
            "v1.2.3",
            "1.2.3.4",
            "01.2.3",
            "1.2.x",
            "1.2.3-",
            "1.2.3-a..b",
            "1.2.3+b",
        ] {
            assert!(!valid_version(bad), "{bad}");
        }
    }

    /// The repository as it is: every place names the version of the operator's package.
    #[test]
    fn the_repository_names_one_version_everywhere() {
        let found = versions(&repo_root()).unwrap();
        let cargo = found[0].1.clone().unwrap();
        assert!(valid_version(&cargo), "{cargo}");
        for (place, v) in &found {
            assert_eq!(v.as_deref(), Some(cargo.as_str()), "{place}");
        }
    }

    #[test]
    fn release_notes_are_the_versions_changelog_section() {
        let changelog = "# Changelog\n\nIntro.\n\n## [Unreleased]\n\n### Added\n\n- next\n\n\
            ## [1.2.0] - 2026-12-01\n\n### Fixed\n\n- a fix\n  on two lines\n\n\
            ## [1.10.0] - 2027-01-01\n\n- not this\n\n## [1.1.0] - 2026-11-01\n\n- older\n\n\
            [Unreleased]: https://example.com/compare/v1.2.0...HEAD\n[1.2.0]: https://example.com/v1.2.0\n";
        assert_eq!(
            notes(changelog, "1.2.0").as_deref(),
            Some("### Fixed\n\n- a fix\n  on two lines")
        );
        assert_eq!(
            notes(changelog, "1.1.0").as_deref(),
            Some("- older"),
            "stops at link definitions"
        );
        assert_eq!(
            notes(changelog, "Unreleased").as_deref(),
            Some("### Added\n\n- next")
        );
        assert_eq!(
            notes(changelog, "1.2"),
            None,
            "a prefix of a version is not that version"
        );
        assert_eq!(notes(changelog, "1.3.0"), None);
        assert_eq!(section_date(changelog, "1.2.0"), Some("2026-12-01"));
        assert_eq!(section_date(changelog, "Unreleased"), None);

        // The real CHANGELOG: the first version's section, as the workflow would publish it.
        let real = std::fs::read_to_string(repo_root().join(CHANGELOG)).unwrap();
        let first = notes(&real, "0.1.0").unwrap();
        assert!(first.starts_with("First version"), "{first}");
        assert!(first.contains("### Added"));
        assert!(!first.contains("## ["), "one section only");
        assert_eq!(section_date(&real, "0.1.0"), Some("2026-11-22"));
    }

    #[test]
    fn check_reports_every_place_that_names_another_version() {
        let dir = temp_copy("check");
        let current = versions(&dir).unwrap()[0].1.clone().unwrap();
        // A CHANGELOG section for the current version exists in the repository only once it is
        // released; give the copy one so that only the version places are compared.
        let changelog = std::fs::read_to_string(dir.join(CHANGELOG)).unwrap();
        if notes(&changelog, &current).is_none() {
            bump(&dir, &current, "2026-01-01").unwrap();
        }
        check(&dir, &current).unwrap();

        let err = check(&dir, "9.9.9").unwrap_err();
        for place in [
            "Cargo.toml",
            "Chart.yaml version",
            "appVersion",
            "ARG VERSION",
            "no section ## [9.9.9]",
        ] {
            assert!(err.contains(place), "{place} missing from: {err}");
        }
        assert!(check(&dir, "v1.0.0").unwrap_err().contains("not a version"));

        // One place out of step is named, alone.
        let dockerfile = std::fs::read_to_string(dir.join(DOCKERFILE)).unwrap();
        std::fs::write(
            dir.join(DOCKERFILE),
            dockerfile.replace(&format!("ARG VERSION={current}"), "ARG VERSION=0.0.1"),
        )
        .unwrap();
        let err = check(&dir, &current).unwrap_err();
        assert!(err.contains("Dockerfile ARG VERSION is 0.0.1"), "{err}");
        assert!(!err.contains("Chart.yaml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bump_sets_every_place_and_opens_the_changelog_section() {
        let dir = temp_copy("bump");
        let before_changelog = std::fs::read_to_string(dir.join(CHANGELOG)).unwrap();
        let unreleased = notes(&before_changelog, "Unreleased").unwrap();
        let before_cargo = std::fs::read_to_string(dir.join(CARGO_TOML)).unwrap();

        bump(&dir, "7.8.9", "2027-02-03").unwrap();

        for (place, v) in versions(&dir).unwrap() {
            assert_eq!(v.as_deref(), Some("7.8.9"), "{place}");
        }
        check(&dir, "7.8.9").unwrap();
        let changelog = std::fs::read_to_string(dir.join(CHANGELOG)).unwrap();
        assert!(
            changelog.contains("## [Unreleased]\n\n## [7.8.9] - 2027-02-03\n"),
            "{changelog}"
        );
        assert_eq!(
            notes(&changelog, "Unreleased").as_deref(),
            Some(""),
            "Unreleased is empty again"
        );
        assert_eq!(
            notes(&changelog, "7.8.9").unwrap(),
            unreleased,
            "what was unreleased is 7.8.9"
        );
        assert_eq!(
            changelog.replace(
                "## [Unreleased]\n\n## [7.8.9] - 2027-02-03\n",
                "## [Unreleased]\n"
            ),
            before_changelog,
            "nothing else in the CHANGELOG changes"
        );
        // Only the [package] version line of Cargo.toml changed (not xtask's, not a dependency's).
        let cargo = std::fs::read_to_string(dir.join(CARGO_TOML)).unwrap();
        let changed: Vec<(&str, &str)> = before_cargo
            .lines()
            .zip(cargo.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(changed[0].1, "version = \"7.8.9\"");
        let chart = std::fs::read_to_string(dir.join(CHART_YAML)).unwrap();
        assert!(
            chart.contains("\nversion: 7.8.9\n") && chart.contains("\nappVersion: \"7.8.9\"\n"),
            "{chart}"
        );
        let dockerfile = std::fs::read_to_string(dir.join(DOCKERFILE)).unwrap();
        assert_eq!(dockerfile.matches("ARG VERSION=7.8.9\n").count(), 1);

        // Again with the same version: refused, and the files are left as they are.
        let err = bump(&dir, "7.8.9", "2027-02-04").unwrap_err();
        assert!(err.contains("already has a section"), "{err}");
        // The next version: Unreleased is empty, so there is nothing to release.
        let err = bump(&dir, "7.8.10", "2027-02-04").unwrap_err();
        assert!(err.contains("nothing to release"), "{err}");
        for (place, v) in versions(&dir).unwrap() {
            assert_eq!(v.as_deref(), Some("7.8.9"), "{place} untouched by a refused bump");
        }
        assert!(
            bump(&dir, "7.8", "2027-02-04")
                .unwrap_err()
                .contains("not a version")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
