//! The command line (clap types only, plus the small `crd` command).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Manage Amazon ECR with Kubernetes resources.
#[derive(Debug, Parser)]
#[command(name = "ecr-operator", version, about, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controllers against the cluster of the current kubeconfig or in-cluster config.
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions as YAML, or write one file per CRD with --out-dir.
    Crd(CrdArgs),
    /// Print the version.
    Version,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A controller that `--controllers` can enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum ControllerName {
    /// `Registry`: identity, account check, registry-wide scanning and policy.
    Registry,
    /// `Repository`: create, adopt, correct drift, delete.
    Repository,
    /// `LifecyclePolicy`: put lifecycle policies on selected Repositories.
    LifecyclePolicy,
    /// `ReplicationRule`: merge the rules into each registry's replication configuration.
    Replication,
    /// `PullSecret`: one dockerconfigjson Secret in the PullSecret's namespace.
    PullSecret,
    /// `ClusterPullSecret`: a dockerconfigjson Secret in every selected namespace.
    ClusterPullSecret,
    /// `PullThroughCacheRule`: ECR pull-through cache rules and their upstream credentials.
    PullThroughCache,
    /// `RepositoryCreationTemplate`: ECR repository creation templates.
    CreationTemplate,
    /// `PublicRepository`: ECR Public repositories and their gallery catalog data.
    PublicRepository,
    /// `ImagePolicy`: the facts, ValidatingAdmissionPolicy and binding of each policy.
    ImagePolicy,
}

/// `--ecr-background-share`: a number from 0 to 0.9 (background must leave users a part).
fn background_share(text: &str) -> Result<f64, String> {
    let share: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=0.9).contains(&share) {
        Ok(share)
    } else {
        Err(format!("{share} is not between 0 and 0.9"))
    }
}

impl ControllerName {
    /// Every controller, in start order.
    pub const ALL: [Self; 10] = [
        Self::Registry,
        Self::Repository,
        Self::LifecyclePolicy,
        Self::Replication,
        Self::PullSecret,
        Self::ClusterPullSecret,
        Self::PullThroughCache,
        Self::CreationTemplate,
        Self::PublicRepository,
        Self::ImagePolicy,
    ];
}

/// Arguments of `ecr-operator run`. Every flag can also be set by its environment variable.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Log filter in EnvFilter syntax, e.g. `info,ecr_operator=debug` (`RUST_LOG` wins when set).
    #[arg(long, env = "ECR_OPERATOR_LOG", default_value = "info")]
    pub log_filter: String,

    /// Log format.
    #[arg(long, env = "ECR_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Controllers to run (comma-separated); all when empty. Split them across deployments, for
    /// example the pull-secret controllers in one and the ECR-writing ones in another.
    #[arg(long, env = "ECR_OPERATOR_CONTROLLERS", value_enum, value_delimiter = ',')]
    pub controllers: Vec<ControllerName>,

    /// Namespaces whose Repositories, LifecyclePolicies and PullSecrets this instance reconciles,
    /// and into which ClusterPullSecrets write (comma-separated); all when empty. Objects in other
    /// namespaces are left alone. Cluster-scoped kinds are always reconciled.
    #[arg(long, env = "ECR_OPERATOR_WATCH_NAMESPACES", value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,

    /// Serve only the Registries, Repositories, LifecyclePolicies, ReplicationRules, PullSecrets
    /// and ClusterPullSecrets whose labels match this selector (Kubernetes label-selector syntax,
    /// e.g. `sharding.ecr-operator.dev/key=a` or `!sharding.ecr-operator.dev/key`); all when
    /// unset. Every watch, cache and list of those kinds carries it, so several instances can
    /// split one cluster's objects between them (docs/sharding.md). Secrets, Namespaces and
    /// ServiceAccounts are not filtered.
    #[arg(long, env = "ECR_OPERATOR_WATCH_LABEL_SELECTOR")]
    pub watch_label_selector: Option<crate::shard::WatchSelector>,

    /// Identifies this cluster in the ECR owner tag `<cluster-id>/<namespace>/<name>`, so two
    /// clusters never take over each other's repositories. Defaults to the UID of the
    /// kube-system namespace (stable for the life of the cluster).
    #[arg(long, env = "ECR_OPERATOR_CLUSTER_ID")]
    pub cluster_id: Option<String>,

    /// Drift re-check interval for objects without `spec.interval`: whole hours, minutes and
    /// seconds between 10s and 24h, the same grammar as `spec.interval` (e.g. `10m`, `1h30m`).
    #[arg(long, env = "ECR_OPERATOR_DEFAULT_INTERVAL", default_value = "10m")]
    pub default_interval: crate::api::interval::Interval,

    /// Maximum concurrent reconciles per controller.
    #[arg(long, env = "ECR_OPERATOR_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// Sustained ECR API calls per second per registry identity (token bucket).
    #[arg(long, env = "ECR_OPERATOR_ECR_RATE_LIMIT", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub ecr_rate_limit: u32,

    /// ECR API calls allowed in a burst above the rate limit.
    #[arg(long, env = "ECR_OPERATOR_ECR_BURST", default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..))]
    pub ecr_burst: u32,

    /// The part of the ECR rate limit (0 to 0.9) kept for background drift checks while
    /// user-driven calls (new objects, spec changes, deletions, requested reconciles) wait;
    /// when none waits, background checks use the whole limit. It also sets how often objects
    /// can be re-checked: when the share cannot check each object once per interval, the
    /// effective interval stretches (shown in the Registry's `status.driftCheckInterval`).
    #[arg(long, env = "ECR_OPERATOR_ECR_BACKGROUND_SHARE", default_value_t = 0.5, value_parser = background_share)]
    pub ecr_background_share: f64,

    /// The ECR Public API endpoint (PublicRepository, public.ecr.aws pull credentials). Unset: the
    /// AWS SDK's for us-east-1, or `AWS_ENDPOINT_URL_ECR_PUBLIC`. A Registry's `spec.endpoint`
    /// names a private ECR endpoint and is never used for ECR Public.
    #[arg(long, env = "ECR_OPERATOR_ECR_PUBLIC_ENDPOINT")]
    pub ecr_public_endpoint: Option<String>,
    /// DescribeImages pages one Repository's drift check reads for `status.insight` (image count,
    /// size, cost, newest image's findings); a longer listing resumes at the next check. 0 turns
    /// the reading off.
    #[arg(long, env = "ECR_OPERATOR_INSIGHT_PAGES_PER_PASS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub insight_pages_per_pass: u32,

    /// Images per DescribeImages page read for `status.insight` (1 to 1000, ECR's maximum).
    #[arg(long, env = "ECR_OPERATOR_INSIGHT_PAGE_SIZE", default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub insight_page_size: i32,

    /// How long one listing of a registry's repositories serves reconciles (Go duration syntax).
    #[arg(long, env = "ECR_OPERATOR_REPOSITORY_CACHE_TTL", default_value = "60s")]
    pub repository_cache_ttl: kube::core::Duration,

    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "ECR_OPERATOR_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: std::net::SocketAddr,

    /// For tests only: treat every ECR token as living this long (e.g. `2m`) so refreshes can be
    /// observed without waiting hours. Never set it in production.
    #[arg(long, env = "ECR_OPERATOR_ASSUME_TOKEN_LIFETIME")]
    pub assume_token_lifetime: Option<kube::core::Duration>,

    /// Run only while holding the leader Lease (for more than one replica, and for rollouts).
    #[arg(long, env = "ECR_OPERATOR_LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,

    /// Name of the leader Lease.
    #[arg(long, env = "ECR_OPERATOR_LEASE_NAME", default_value = "ecr-operator-leader")]
    pub lease_name: String,

    /// Namespace of the leader Lease (the chart sets the release namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,

    /// Seconds the Lease is valid without renewal: a standby takes over at most this long after
    /// the leader dies.
    #[arg(long, env = "ECR_OPERATOR_LEASE_DURATION", default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..))]
    pub lease_duration: u64,

    /// Seconds before expiry at which the leader renews (less than --lease-duration).
    #[arg(long, env = "ECR_OPERATOR_LEASE_GRACE", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_grace: u64,

    /// Seconds a shutdown (SIGTERM or SIGINT) may take: reconciles under way finish and the
    /// Lease is released within it, then the process exits regardless. Keep it below the Pod's
    /// `terminationGracePeriodSeconds` (the chart: 30).
    #[arg(long, env = "ECR_OPERATOR_SHUTDOWN_TIMEOUT", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub shutdown_timeout: u64,

    /// Name of this Pod (set from the downward API); used as the events' reporting instance.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
}

/// Arguments of `ecr-operator crd`.
#[derive(Debug, clap::Args)]
pub struct CrdArgs {
    /// Write `<plural>.<group>.yaml` files into this directory instead of printing to stdout.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// Errors of `ecr-operator crd`.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("failed to render CRD YAML")]
    Render(#[from] serde_saphyr::ser::Error),
    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs `ecr-operator crd`.
pub fn crd(args: &CrdArgs) -> Result<(), CrdError> {
    let Some(dir) = &args.out_dir else {
        print!("{}", crate::api::render_all()?);
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|source| CrdError::Write {
        path: dir.clone(),
        source,
    })?;
    for crd in crate::api::crds() {
        let path = dir.join(crate::api::crd_file_name(&crd));
        let yaml = crate::api::render_crd(&crd)?;
        std::fs::write(&path, yaml).map_err(|source| CrdError::Write { path, source })?;
    }
    Ok(())
}
