//! The real components ecr-operator's tests and sandbox run against:
//!
//! - [`ControlPlane`]: kube-apiserver + etcd + kube-controller-manager (garbage-collector,
//!   namespace, serviceaccount, serviceaccount-token and clusterrole-aggregation controllers),
//!   built from the Kubernetes Go modules by `tests/testcluster/build.sh`, RBAC on, on free
//!   127.0.0.1 ports with generated PKI and an admin kubeconfig. [`ControlPlane::start_with_node`]
//!   adds one Node (kube-scheduler, containerd and the kubelet) on which Pods really run.
//! - [`Moto`]: moto's server (the local ECR endpoint), pinned in `tests/moto/requirements.txt`
//!   and installed into a cached virtualenv by `tests/moto/install.sh`.
//! - [`Operator`]: the operator binary as a process; [`FaultProxy`]: a counting, fault-injecting
//!   proxy between it and moto.
//!
//! Every child process's standard input is a pipe held by this process: when the test process
//! ends, however it ends (panic, abort, SIGKILL), the pipe closes and the children shut
//! themselves down, so no stray server outlives a test run.

pub mod chart;
mod control_plane;
mod error;
mod etcd;
pub mod gitops;
mod http;
mod moto;
mod operator;
mod pod_identity;
mod proxy;
mod tether;
mod tools;
mod yaml;

pub use control_plane::{ControlPlane, NodeInfo, install_crds, shared_control_plane};
pub use error::{Error, Result, error_chain};
pub use moto::Moto;
pub use operator::{AwsIdentity, Operator};
pub use pod_identity::{PodIdentityAgent, TokenCheck, token_fingerprint};
pub use proxy::{Call, Fault, FaultPlan, FaultProxy, WebIdentity, is_write};
pub use tools::{
    free_port, helm_bin, kstatus_bin, moto_python, node_tools, repo_root, testcluster_bin_dir,
    testcluster_node_bin_dir,
};
pub use yaml::{apply_document, yaml_documents, yaml_files};

pub(crate) use error::{io, kube_err};

/// Field manager for everything the test harness writes, so it never takes ownership of fields
/// the operator's own managers hold.
pub const TEST_FIELD_MANAGER: &str = "ecr-operator-test";
