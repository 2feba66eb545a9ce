//! The one reconcile envelope every controller goes through.
//!
//! A controller is a [`Reconciler`]: its wiring (in its own module), its I/O step
//! ([`Reconciler::sync`]: dereference → decide (pure) → act) and its pure functions
//! ([`Reconciler::next_status`], [`Reconciler::event`]). Everything else happens here, once, in
//! the same order for every kind:
//!
//! 1. the `--watch-namespaces` filter (objects of other namespaces are left alone, no finalizer);
//! 2. the finalizer (kube's helper), when the controller cleans up;
//! 3. `suspend: true`: nothing is called; the status says so at the current generation
//!    (only `Suspended=True`), with a Normal event when the object becomes suspended;
//! 4. `sync`, then `next_status` from its outcome, then one status write, skipped when the owned
//!    status is unchanged (server-side apply under `ecr-operator/<controller>`);
//! 5. one event per transition (a Normal event the controller names, or a Warning when the
//!    error's reason differs from the previous Ready reason, except while a dependency that
//!    exists is not Ready yet, or a Warning the controller names for a success that needs a
//!    human), through the controller's one
//!    [`kube::runtime::events::Recorder`];
//! 6. the root cause drives the error class: a failed status write after a failed sync is
//!    logged, and the sync's error is returned;
//! 7. metrics on drop of a timer (a panic or an early return is still counted), the per-object
//!    backoff reset on success, and the requeue.
//!
//! `sync` runs in the ECR budget's lane the object's state calls for ([`crate::decide::lane`]:
//! background for a re-check of an object in sync, user for everything else), `cleanup` in the
//! user lane. The first reconcile in this process of an object in sync, for a controller whose
//! checks are scheduled ([`Reconciler::drift`]), resumes its schedule: it is re-queued to its
//! slot and makes no call, so a restart or a new leader does not re-read everything at once.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::context::{Context, object_key};
use crate::api::FINALIZER;
use crate::backend::RegistryBackend;
use crate::backend::lanes::{self, Lane};
use crate::decide::lane::lane_of;
use crate::error::{Error, Result, error_chain};
use crate::metrics::Metrics;
use crate::status::{SUSPENDED, Summarized};

/// A Normal event: reason and note.
pub use super::drift::Drift;
pub use super::runner::{error_policy, report, run};
pub use crate::decide::Note;

/// One controller: what the driver needs to know about it.
pub trait Reconciler: Send + Sync + 'static {
    /// The kind this controller is keyed on.
    type Kind: Resource<DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
        + Serialize
        + Send
        + Sync
        + 'static;
    /// The part of the status this controller owns: applied whole, so any field it stops sending
    /// is released. Usually the kind's whole status.
    type Status: Serialize + PartialEq + Send + Sync + Summarized;
    /// What a successful sync found and did.
    type Synced: Send + Sync;

    /// `repository`, `registry`, ...: the field manager, the event reporter, the metrics label.
    const CONTROLLER: &'static str;
    /// The field manager is `ecr-operator/<FIELD_MANAGER>`; it stays what an object's fields
    /// were first written with, since a new manager would leave the old one co-owning them.
    const FIELD_MANAGER: &'static str = Self::CONTROLLER;
    /// Whether deleting an object runs [`Reconciler::cleanup`] first, behind the finalizer.
    const FINALIZER: bool = false;
    /// Whether a failed sync publishes a Warning event on the object (when its reason is new).
    const WARNING_EVENTS: bool = true;
    /// Whether a controller without a finalizer keeps syncing an object that is being deleted
    /// (held by another controller's finalizer): the replication merge must still remove the
    /// entries of rules deleted meanwhile.
    const SYNCS_WHILE_DELETING: bool = false;
    /// Whether this controller writes the kind's conditions, and so reports the objects of its
    /// kind that do not decode (see `quarantine`).
    const OWNS_CONDITIONS: bool = true;

    /// The API of the object's scope (its namespace, or cluster-wide).
    fn api(client: &kube::Client, obj: &Self::Kind) -> Api<Self::Kind>;

    /// `spec.suspend`.
    fn suspended(obj: &Self::Kind) -> bool;

    /// The owned status as stored now; `None` when it was never written.
    fn stored_status(obj: &Self::Kind) -> Option<Self::Status>;

    /// The reason of the stored Ready condition (events fire when it changes).
    fn ready_reason(obj: &Self::Kind) -> Option<String> {
        let status = Self::stored_status(obj)?;
        crate::status::ready_reason(Some(status.conditions()))
    }

    /// I/O: dereference → decide (pure) → act.
    fn sync<B: RegistryBackend>(
        obj: &Self::Kind,
        ctx: &Context<B>,
    ) -> impl Future<Output = Result<Self::Synced>> + Send;

    /// I/O: what deleting the object must undo before its finalizer goes; returns the Normal
    /// event to publish, if any. Only called when [`Reconciler::FINALIZER`] is set.
    fn cleanup<B: RegistryBackend>(
        obj: &Self::Kind,
        ctx: &Context<B>,
    ) -> impl Future<Output = Result<Option<Note>>> + Send {
        let _ = (obj, ctx);
        async { Ok(None) }
    }

    /// Pure: the owned status after this outcome.
    fn next_status(obj: &Self::Kind, outcome: &Result<Self::Synced>, now: &Time) -> Self::Status;

    /// A sync that did part of its work and failed on the rest (one repository of many, one
    /// namespace of many) returns `Ok` with the failure inside, so its progress reaches the
    /// status; this names the failure, which then drives the event, the class and the backoff.
    fn failure(synced: &Self::Synced) -> Option<&Error> {
        let _ = synced;
        None
    }

    /// Turns a partial failure (see [`Reconciler::failure`]) into the reconcile's error.
    fn into_result(synced: Self::Synced) -> Result<Self::Synced> {
        Ok(synced)
    }

    /// Pure: the Normal event a successful sync deserves (something changed), if any.
    fn event(obj: &Self::Kind, synced: &Self::Synced) -> Option<Note>;

    /// Pure: a Warning event a successful sync deserves (the object works but something needs a
    /// human, such as a domain condition that just became true), if any. Only on transitions.
    fn warning(obj: &Self::Kind, synced: &Self::Synced) -> Option<Note> {
        let _ = (obj, synced);
        None
    }

    /// When to look again after a successful sync.
    fn requeue<B: RegistryBackend>(obj: &Self::Kind, synced: &Self::Synced, ctx: &Context<B>) -> Duration;

    /// The object's periodic drift check, when its schedule is budgeted per Registry and resumed
    /// after a restart (see the module documentation); `None` (the default): it is checked
    /// whenever it is due, a restart included.
    fn drift(obj: &Self::Kind) -> Option<Drift> {
        let _ = obj;
        None
    }
}

/// Records one reconcile in the metrics when dropped, whatever path ended it.
struct Timer {
    metrics: Arc<Metrics>,
    controller: &'static str,
    start: Instant,
    error: Option<&'static str>,
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.metrics
            .reconciled(self.controller, self.start.elapsed(), self.error);
    }
}

/// The reconcile function handed to kube's `Controller::run` for the controller `R`.
pub async fn reconcile<R: Reconciler, B: RegistryBackend>(
    obj: Arc<R::Kind>,
    ctx: Arc<Context<B>>,
) -> Result<Action> {
    let mut timer = Timer {
        metrics: ctx.metrics.clone(),
        controller: R::CONTROLLER,
        start: Instant::now(),
        error: None,
    };
    if let Some(ns) = obj.meta().namespace.as_deref()
        && !ctx.tunables.watches(ns)
    {
        // Another instance serves this namespace (--watch-namespaces).
        return Ok(Action::await_change());
    }
    let api = R::api(&ctx.client, obj.as_ref());
    let result = if R::FINALIZER {
        finalizer(&api, FINALIZER, obj.clone(), |event| async {
            match event {
                FinalizerEvent::Apply(obj) => apply::<R, B>(&obj, &api, &ctx).await,
                FinalizerEvent::Cleanup(obj) => cleanup::<R, B>(&obj, &api, &ctx).await,
            }
        })
        .await
        .map_err(Error::from)
    } else if obj.meta().deletion_timestamp.is_some() && !R::SYNCS_WHILE_DELETING {
        Ok(Action::await_change())
    } else {
        apply::<R, B>(&obj, &api, &ctx).await
    };
    timer.error = result.as_ref().err().map(Error::reason);
    if result.is_ok() {
        ctx.backoff.reset(&object_key(obj.as_ref()));
    }
    result
}

/// The Apply path: sync, then always the status, then the events, then the outcome.
async fn apply<R: Reconciler, B: RegistryBackend>(
    obj: &R::Kind,
    api: &Api<R::Kind>,
    ctx: &Context<B>,
) -> Result<Action> {
    if R::suspended(obj) {
        return suspend::<R, B>(obj, api, ctx).await;
    }
    let lane = lane_of(obj.meta(), R::stored_status(obj).as_ref());
    let key = object_key(obj);
    let first = ctx.first_sight(R::CONTROLLER, &key);
    if lane == Lane::Background
        && first
        && let Some(drift) = R::drift(obj)
    {
        // In sync when last checked (by this process or another): wait for its slot.
        let delay = ctx.drift_delay(drift.interval.as_ref(), &drift.registry, &key, drift.calls, false);
        tracing::debug!(controller = R::CONTROLLER, object = %obj.name_any(), ?delay, "resumed the drift-check schedule");
        return Ok(Action::requeue(delay));
    }
    let outcome = lanes::scope(lane, R::sync(obj, ctx)).await;
    let status = R::next_status(obj, &outcome, &now());
    let written = write_status::<R>(api, obj, &status, &ctx.field_manager(R::FIELD_MANAGER)).await;
    let (note, failure) = match &outcome {
        Ok(synced) => (R::event(obj, synced), R::failure(synced)),
        Err(e) => (None, Some(e)),
    };
    publish::<R, B>(ctx, obj, note, failure, "Reconcile").await;
    if let Some((reason, note)) = outcome.as_ref().ok().and_then(|synced| R::warning(obj, synced)) {
        let reference = obj.object_ref(&());
        ctx.events
            .publish(
                R::CONTROLLER,
                &reference,
                EventType::Warning,
                reason,
                note,
                "Reconcile",
            )
            .await;
    }
    let synced = R::into_result(keep_root_cause(outcome, written)?)?;
    Ok(Action::requeue(R::requeue(obj, &synced, ctx)))
}

/// The suspended path: no I/O but the status, which says that this generation was seen and is
/// not applied (so kstatus and Argo CD never wait on it, and nobody mistakes it for in sync).
async fn suspend<R: Reconciler, B: RegistryBackend>(
    obj: &R::Kind,
    api: &Api<R::Kind>,
    ctx: &Context<B>,
) -> Result<Action> {
    let status = crate::status::suspended(R::stored_status(obj), obj.meta().generation, &now());
    write_status::<R>(api, obj, &status, &ctx.field_manager(R::FIELD_MANAGER)).await?;
    let was_suspended = R::stored_status(obj).is_some_and(|s| {
        s.conditions()
            .iter()
            .any(|c| c.type_ == SUSPENDED && c.status == "True")
    });
    if !was_suspended {
        let note = (SUSPENDED, crate::status::SUSPENDED_MESSAGE.to_owned());
        publish::<R, B>(ctx, obj, Some(note), None, "Suspend").await;
    }
    Ok(Action::await_change())
}

/// The Cleanup path: undo, and report a failure in the status (the finalizer stays).
async fn cleanup<R: Reconciler, B: RegistryBackend>(
    obj: &R::Kind,
    api: &Api<R::Kind>,
    ctx: &Context<B>,
) -> Result<Action> {
    match lanes::scope(Lane::User, R::cleanup(obj, ctx)).await {
        Ok(note) => {
            publish::<R, B>(ctx, obj, note, None, "Cleanup").await;
            ctx.backoff.reset(&object_key(obj));
            ctx.forget(R::CONTROLLER, &object_key(obj));
            Ok(Action::await_change())
        }
        Err(e) => {
            let outcome: Result<R::Synced> = Err(e);
            let status = R::next_status(obj, &outcome, &now());
            let written = write_status::<R>(api, obj, &status, &ctx.field_manager(R::FIELD_MANAGER)).await;
            publish::<R, B>(ctx, obj, None, outcome.as_ref().err(), "Cleanup").await;
            keep_root_cause(outcome, written).map(|_| Action::await_change())
        }
    }
}

/// The sync's error wins over a failed status write (the root cause drives the class and the
/// backoff); a write failure alone is the error.
fn keep_root_cause<T>(outcome: Result<T>, written: Result<bool>) -> Result<T> {
    match (outcome, written) {
        (Err(e), Err(w)) => {
            tracing::warn!(error = %error_chain(&w), "status write failed");
            Err(e)
        }
        (Err(e), Ok(_)) => Err(e),
        (Ok(_), Err(w)) => Err(w),
        (Ok(t), Ok(_)) => Ok(t),
    }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Applies the owned status with server-side apply unless it equals what is stored. Returns
/// whether it wrote.
pub async fn write_status<R: Reconciler>(
    api: &Api<R::Kind>,
    obj: &R::Kind,
    status: &R::Status,
    field_manager: &str,
) -> Result<bool> {
    if R::stored_status(obj).as_ref() == Some(status) {
        return Ok(false);
    }
    crate::status::apply_status(api, &obj.name_any(), status, field_manager).await?;
    Ok(true)
}

/// Events on transitions only: the Normal event the controller named, or a Warning when the
/// error's reason differs from the stored Ready reason. Waiting for a dependency that exists but
/// is not Ready yet is no warning: it is what every object does once, when it is applied together
/// with its Registry (the status says it waits).
async fn publish<R: Reconciler, B: RegistryBackend>(
    ctx: &Context<B>,
    obj: &R::Kind,
    note: Option<Note>,
    error: Option<&Error>,
    action: &str,
) {
    let reference = obj.object_ref(&());
    if let Some((reason, note)) = note {
        ctx.events
            .publish(R::CONTROLLER, &reference, EventType::Normal, reason, note, action)
            .await;
    }
    if let Some(e) = error
        && R::WARNING_EVENTS
        && !matches!(e, Error::DependencyNotReady { .. })
        && R::ready_reason(obj).as_deref() != Some(e.reason())
    {
        ctx.events
            .publish(
                R::CONTROLLER,
                &reference,
                EventType::Warning,
                e.reason(),
                error_chain(e),
                action,
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_cause_drives_the_class() {
        let sync_err = || Error::RepositoryNotFound("r".into());
        let write_err = || Error::MissingMetadata("name");
        let r: Result<()> = keep_root_cause(Err(sync_err()), Err(write_err()));
        assert_eq!(r.unwrap_err().reason(), "RepositoryNotFound");
        let r: Result<()> = keep_root_cause(Ok(()), Err(write_err()));
        assert_eq!(r.unwrap_err().reason(), "InvalidSpec");
        let r: Result<u8> = keep_root_cause(Ok(7), Ok(true));
        assert_eq!(r.unwrap(), 7);
    }
}
