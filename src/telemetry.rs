//! Logging: an EnvFilter (`--log-filter`, or `RUST_LOG`) and plain or JSON output.
//!
//! The AWS SDK logs HTTP bodies and deserialized responses at TRACE, and the `Debug` of ECR's
//! `AuthorizationData` prints the token; HTTP/TLS layers dump connection details at TRACE. Those
//! targets are capped at DEBUG whatever the filter says, so no log level can print a token.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Targets that may log secrets (or raw bodies) at TRACE: never more verbose than DEBUG.
pub const CAPPED_TARGETS: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_runtime",
    "aws_sdk_ecr",
    "aws_sdk_sts",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "tower",
    "kube_client",
];

/// The effective filter: the user's directives followed by the caps.
pub fn filter_directives(user: &str) -> String {
    let mut out = user.trim().trim_matches(',').to_owned();
    for target in CAPPED_TARGETS {
        out.push_str(&format!(",{target}=debug"));
    }
    out
}

/// Installs the global subscriber.
pub fn init(filter: &str, format: LogFormat) {
    let user = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| filter.to_owned());
    let filter = EnvFilter::try_new(filter_directives(&user)).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_and_http_targets_are_capped_at_debug() {
        for user in [
            "trace",
            "info",
            "info,ecr_operator=trace",
            "aws_smithy_runtime=trace",
        ] {
            let f = filter_directives(user);
            for target in CAPPED_TARGETS {
                assert!(f.contains(&format!("{target}=debug")), "{user}: {f}");
            }
            assert!(EnvFilter::try_new(&f).is_ok(), "{f}");
        }
    }
}
