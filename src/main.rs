use std::num::NonZeroU32;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use ecr_operator::cli::{Cli, Command, RunArgs};
use ecr_operator::controllers::{self, context::Tunables};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd(args) => ecr_operator::cli::crd(&args)?,
        Command::Version => println!("ecr-operator {}", env!("CARGO_PKG_VERSION")),
        Command::Run(args) => run(*args).await?,
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    ecr_operator::telemetry::init(&args.log_filter, args.log_format);
    let metrics = Arc::new(ecr_operator::metrics::Metrics::default());
    let readiness = ecr_operator::server::Readiness::default();
    ecr_operator::server::serve(args.http_addr, metrics.clone(), readiness.clone())
        .await
        .with_context(|| format!("cannot listen on {}", args.http_addr))?;
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes configuration found")?;
    controllers::wait_for_crds(&client, std::time::Duration::from_secs(120)).await?;
    let cluster_id = match args.cluster_id {
        Some(id) => id,
        None => controllers::default_cluster_id(&client).await?,
    };
    tracing::info!(
        cluster_id,
        version = env!("CARGO_PKG_VERSION"),
        "starting ecr-operator"
    );
    let limits = ecr_operator::backend::ecr::EcrLimits {
        requests_per_second: NonZeroU32::new(args.ecr_rate_limit)
            .context("--ecr-rate-limit must be positive")?,
        burst: NonZeroU32::new(args.ecr_burst).context("--ecr-burst must be positive")?,
    };
    let backend = Arc::new(ecr_operator::backend::ecr::EcrBackend::new(
        limits,
        metrics.clone(),
    ));
    let tunables = Tunables {
        cluster_id,
        default_interval: args.default_interval.duration(),
        concurrency: args.concurrency,
        repository_cache_ttl: args.repository_cache_ttl.into(),
        watch_namespaces: (!args.watch_namespaces.is_empty())
            .then(|| args.watch_namespaces.iter().cloned().collect()),
        ..Tunables::default()
    };
    let token_lifetime = args.assume_token_lifetime.map(std::time::Duration::from);
    if let Some(t) = token_lifetime {
        tracing::warn!(lifetime = ?t, "--assume-token-lifetime is set: a testing aid, not for production");
    }
    let identity = args
        .pod_name
        .clone()
        .unwrap_or_else(|| format!("ecr-operator-{}", std::process::id()));
    let run = controllers::RunOptions {
        tunables,
        instance: args.pod_name,
        token_lifetime,
        readiness: readiness.clone(),
        controllers: args.controllers.iter().copied().collect(),
    };
    if !args.leader_elect {
        controllers::run(client, backend, metrics, run, shutdown_signal()).await?;
        return Ok(());
    }
    anyhow::ensure!(
        args.lease_grace < args.lease_duration,
        "--lease-grace must be less than --lease-duration"
    );
    let election = ecr_operator::leader::Election {
        lease_name: args.lease_name,
        lease_namespace: args.lease_namespace,
        identity,
        duration: args.lease_duration,
        grace: args.lease_grace,
    };
    // A standby is ready (it serves /metrics and waits); it just does not reconcile.
    readiness.set(true);
    let mut leadership = tokio::select! {
        l = ecr_operator::leader::acquire(client.clone(), &election) => l.context("leader election failed")?,
        () = shutdown_signal() => return Ok(()),
    };
    readiness.set(false);
    metrics.set_leader(true);
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<bool>();
    let stop = async move {
        let lost = tokio::select! {
            () = leadership.lost() => true,
            () = shutdown_signal() => false,
        };
        if lost {
            tracing::error!("lost the leader lease: stopping");
        } else {
            leadership.release().await;
        }
        let _ = lost_tx.send(lost);
    };
    controllers::run(client, backend, metrics.clone(), run, stop).await?;
    metrics.set_leader(false);
    if lost_rx.await.unwrap_or(false) {
        anyhow::bail!("lost the leader lease");
    }
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
