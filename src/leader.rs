//! Leader election on a coordination.k8s.io Lease (kube-lease-manager). The HTTP server runs in
//! every replica; only the leader runs the controllers. Losing the lease stops the process (a
//! non-zero exit, so Kubernetes restarts it as a standby): simpler and safer than stopping
//! controllers mid-flight. On shutdown the lease is released so a standby takes over at once.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How to elect.
#[derive(Clone, Debug)]
pub struct Election {
    pub lease_name: String,
    pub lease_namespace: String,
    pub identity: String,
    /// Seconds a lease is valid without renewal.
    pub duration: u64,
    /// Seconds before expiry at which the holder renews.
    pub grace: u64,
}

/// Leadership, once acquired.
pub struct Leadership {
    receiver: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

/// Waits until this process holds the lease.
pub async fn acquire(client: Client, e: &Election) -> Result<Leadership, LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, &e.lease_name)
        .with_namespace(&e.lease_namespace)
        .with_identity(&e.identity)
        .with_duration(e.duration)
        .with_grace(e.grace)
        .with_field_manager(format!("{}/leader", crate::api::OPERATOR_NAME))
        .build()
        .await?;
    let (mut receiver, task) = manager.watch().await;
    tracing::info!(lease = %e.lease_name, namespace = %e.lease_namespace, identity = %e.identity, "waiting for the leader lease");
    while !*receiver.borrow_and_update() {
        if receiver.changed().await.is_err() {
            break;
        }
    }
    tracing::info!(identity = %e.identity, "acquired the leader lease");
    Ok(Leadership { receiver, task })
}

impl Leadership {
    /// Completes when the lease is lost.
    pub async fn lost(&mut self) {
        loop {
            if !*self.receiver.borrow_and_update() {
                return;
            }
            if self.receiver.changed().await.is_err() {
                return;
            }
        }
    }

    /// Releases the lease (a standby can take over at once) and waits for that, briefly.
    pub async fn release(self) {
        drop(self.receiver);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
    }
}
