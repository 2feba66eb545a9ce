//! Running a controller through the driver: bounded concurrency (`--concurrency`), the driver's
//! reconcile and error policy, graceful shutdown, and every result logged.

use std::sync::Arc;

use futures::StreamExt;
use kube::Resource;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::context::{Context, object_key};
use super::driver::{Reconciler, reconcile};
use crate::backend::RegistryBackend;
use crate::error::{Error, ErrorClass, error_chain};

/// Runs the controller `R` over `controller` (its watches already set up) until `shutdown`:
/// bounded concurrency (`--concurrency`), the driver's reconcile and error policy, and every
/// result logged.
pub async fn run<R: Reconciler, B: RegistryBackend>(
    controller: Controller<R::Kind>,
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let concurrency = ctx.tunables.concurrency;
    // kube holds the first reconcile until the store has listed, so the first reconcile sees
    // every object: the drift budget learns each Registry's whole count then, and even the
    // first resumed slots after a restart use the interval the count stretches to.
    let store = controller.store();
    let primed = std::sync::Once::new();
    let reconcile = move |obj, ctx: Arc<Context<B>>| {
        primed.call_once(|| {
            for obj in store.state() {
                if let Some(drift) = R::drift(&obj) {
                    ctx.drift_expect(
                        drift.interval.as_ref(),
                        &drift.registry,
                        &object_key(obj.as_ref()),
                        drift.calls,
                    );
                }
            }
        });
        reconcile::<R, B>(obj, ctx)
    };
    controller
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy::<R, B>, ctx)
        .for_each(|r| report(R::CONTROLLER, r))
        .await;
}

/// How a failed reconcile is retried: transient errors back off per object, waiting retries
/// soon, stalled re-checks slowly (a spec change triggers at once anyway).
pub fn error_policy<R: Reconciler, B: RegistryBackend>(
    obj: Arc<R::Kind>,
    err: &Error,
    ctx: Arc<Context<B>>,
) -> Action {
    match err.class() {
        ErrorClass::Transient => Action::requeue(ctx.backoff.next_delay(&object_key(obj.as_ref()))),
        ErrorClass::Waiting => Action::requeue(ctx.tunables.waiting_requeue),
        ErrorClass::Stalled => Action::requeue(ctx.tunables.stalled_recheck),
    }
}

/// Logs what a controller stream yields; nothing is dropped silently.
pub async fn report<K: Resource>(
    controller: &'static str,
    result: std::result::Result<
        (ObjectRef<K>, Action),
        kube::runtime::controller::Error<Error, watcher::Error>,
    >,
) {
    use kube::runtime::controller::Error as C;
    match result {
        Ok((obj, _)) => tracing::debug!(controller, object = %obj, "reconciled"),
        Err(C::ReconcilerFailed(err, obj)) => {
            let chain = error_chain(&err);
            match err.class() {
                ErrorClass::Stalled => {
                    tracing::warn!(controller, object = %obj, reason = err.reason(), error = %chain, "reconcile stalled")
                }
                _ => {
                    tracing::info!(controller, object = %obj, reason = err.reason(), error = %chain, "reconcile failed, will retry")
                }
            }
        }
        // A trigger for an object deleted meanwhile (a mapper read the store just before the
        // deletion reached it): nothing to do, and nothing wrong.
        Err(C::ObjectNotFound(obj)) => {
            tracing::debug!(controller, object = %obj, "object gone before its reconcile")
        }
        Err(e) => tracing::warn!(controller, error = %error_chain(&e), "controller error"),
    }
}
