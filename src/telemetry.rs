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

/// Whether `target` (a module path) belongs to a capped crate.
pub fn is_capped(target: &str) -> bool {
    CAPPED_TARGETS.iter().any(|c| {
        target
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Pure: whether an event passes the cap (TRACE from a capped target never does). The user's
/// filter decides everything else: `info` means info for the SDK too.
pub fn passes_cap(level: &tracing::Level, target: &str) -> bool {
    *level != tracing::Level::TRACE || !is_capped(target)
}

/// Installs the global subscriber: the user's EnvFilter, and the cap on top of it.
pub fn init(filter: &str, format: LogFormat) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let user = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| filter.to_owned());
    let env = EnvFilter::try_new(&user).unwrap_or_else(|_| EnvFilter::new("info"));
    let cap = tracing_subscriber::filter::filter_fn(|meta| passes_cap(meta.level(), meta.target()));
    let registry = tracing_subscriber::registry();
    match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr)
                    .with_filter(env)
                    .with_filter(cap),
            )
            .init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    // Colour only on a terminal: a Pod log or a file gets plain text.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr)
                    .with_filter(env)
                    .with_filter(cap),
            )
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn trace_from_sdk_and_http_targets_never_passes_and_nothing_else_is_raised() {
        for (level, target, passes) in [
            (Level::TRACE, "aws_smithy_runtime", false),
            (Level::TRACE, "aws_smithy_runtime::client::orchestrator", false),
            (
                Level::TRACE,
                "aws_sdk_ecr::operation::get_authorization_token",
                false,
            ),
            (Level::TRACE, "hyper_util::client::legacy::pool", false),
            (Level::DEBUG, "aws_smithy_runtime", true),
            (Level::INFO, "kube_client", true),
            (Level::TRACE, "ecr_operator::controllers", true),
            // A prefix of a capped name is not that crate.
            (Level::TRACE, "hyperion", true),
            (Level::TRACE, "towering::x", true),
        ] {
            assert_eq!(passes_cap(&level, target), passes, "{level} {target}");
        }
    }
}
