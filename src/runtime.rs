//! `ecr-operator run`: what the process does between start and exit, including leader gating:
//! a standby serves `/metrics` and waits for the Lease; the leader runs the controllers; losing
//! the Lease ends the process with an error (Kubernetes restarts it as a standby); SIGTERM
//! releases the Lease so a standby takes over at once.

use std::num::NonZeroU32;
use std::sync::Arc;

use crate::cli::RunArgs;
use crate::controllers::{self, context::Tunables};
use crate::error::Error;

/// `ecr-operator run`: the HTTP server, the CRD wait, the backend, then the controllers (behind
/// the leader Lease with `--leader-elect`) until SIGTERM or SIGINT. Whatever it is doing, the
/// process ends at most `--shutdown-timeout` after the signal.
pub async fn run(args: RunArgs) -> Result<(), Error> {
    crate::telemetry::init(&args.log_filter, args.log_format);
    let timeout = std::time::Duration::from_secs(args.shutdown_timeout);
    tokio::select! {
        result = serve(args) => result,
        () = async { shutdown_signal().await; tokio::time::sleep(timeout).await } => {
            tracing::warn!(?timeout, "shutdown did not finish within --shutdown-timeout: exiting now");
            Ok(())
        }
    }
}

async fn serve(args: RunArgs) -> Result<(), Error> {
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let readiness = crate::server::Readiness::default();
    crate::server::serve(args.http_addr, metrics.clone(), readiness.clone())
        .await
        .map_err(|e| Error::Startup(format!("cannot listen on {}: {e}", args.http_addr)))?;
    let client = kube::Client::try_default()
        .await
        .map_err(|e| Error::Startup(format!("no Kubernetes configuration found: {e}")))?;
    tokio::select! {
        crds = controllers::wait_for_crds(&client, std::time::Duration::from_secs(120)) => crds?,
        () = shutdown_signal() => return Ok(()),
    }
    let cluster_id = match args.cluster_id {
        Some(id) => id,
        None => controllers::default_cluster_id(&client).await?,
    };
    let watch_selector = args.watch_label_selector.clone().unwrap_or_default();
    tracing::info!(
        cluster_id,
        version = env!("CARGO_PKG_VERSION"),
        watch_label_selector = %watch_selector,
        "starting ecr-operator"
    );
    if watch_selector.selects_all() {
        tracing::info!("serving every object of the operator's kinds (no --watch-label-selector)");
    } else {
        tracing::info!(selector = %watch_selector, "serving only the objects whose labels match --watch-label-selector");
    }
    let limits = crate::backend::ecr::EcrLimits {
        requests_per_second: NonZeroU32::new(args.ecr_rate_limit)
            .ok_or_else(|| Error::Startup("--ecr-rate-limit must be positive".into()))?,
        burst: NonZeroU32::new(args.ecr_burst)
            .ok_or_else(|| Error::Startup("--ecr-burst must be positive".into()))?,
        background_share: args.ecr_background_share,
    };
    let backend = Arc::new(
        crate::backend::ecr::EcrBackend::new(limits, metrics.clone())
            .with_public_endpoint(args.ecr_public_endpoint.clone()),
    );
    let tunables = Tunables {
        cluster_id,
        default_interval: args.default_interval.duration(),
        concurrency: args.concurrency,
        repository_cache_ttl: args.repository_cache_ttl.into(),
        ecr_rate_limit: args.ecr_rate_limit,
        background_share: args.ecr_background_share,
        insight_pages_per_pass: args.insight_pages_per_pass,
        insight_page_size: args.insight_page_size,
        operator_namespace: args.lease_namespace.clone(),
        watch_namespaces: (!args.watch_namespaces.is_empty())
            .then(|| args.watch_namespaces.iter().cloned().collect()),
        watch_selector,
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
    if args.lease_grace >= args.lease_duration {
        return Err(Error::Startup(
            "--lease-grace must be less than --lease-duration".into(),
        ));
    }
    let election = crate::leader::Election {
        lease_name: args.lease_name,
        lease_namespace: args.lease_namespace,
        identity,
        duration: args.lease_duration,
        grace: args.lease_grace,
    };
    // A standby is ready (it serves /metrics and waits); it just does not reconcile.
    readiness.set(true);
    let mut leadership = tokio::select! {
        l = crate::leader::acquire(client.clone(), &election) => l.map_err(|e| Error::Startup(format!("leader election failed: {e}")))?,
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
        return Err(Error::Startup("lost the leader lease".into()));
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
