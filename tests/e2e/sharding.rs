//! Sharding (`--watch-label-selector`, docs/sharding.md): two operator processes on two shards of
//! one cluster. Each reconciles only the objects labelled for its shard; an object whose Registry
//! is in the other shard waits with `DependencyNotReady` and is never touched by the operator
//! that serves that Registry; an object labelled for neither is touched by neither; relabelling
//! moves an object to the other shard's operator.

use std::path::Path;
use std::time::Duration;

use ecr_operator::api::v1alpha1::Repository;
use ecr_operator::shard::SHARD_LABEL;
use ecr_operator_testenv::Operator;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

use crate::harness::env::{CLUSTER_ID, OperatorEnv, tail};
use crate::harness::wait::{condition, wait_condition};
use crate::support::{apply, cluster, eventually, temp_namespace};

const A: &str = "e2e-shard-a";
const B: &str = "e2e-shard-b";

/// `doc` labelled for `shard` (`None`: for no shard).
fn in_shard(shard: Option<&str>, mut doc: Value) -> Value {
    if let Some(shard) = shard {
        doc["metadata"]["labels"][SHARD_LABEL] = json!(shard);
    }
    doc
}

fn repository(name: &str, ns: &str, registry: &str) -> Value {
    json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository", "metadata": {"name": name},
        "spec": {"registryRef": {"name": registry}, "name": format!("{ns}/{name}")}})
}

/// The reporting instances (the operators' `--pod-name`) of the events about `name` in `ns`.
async fn reporters(client: &kube::Client, ns: &str, name: &str) -> Vec<String> {
    let mut who: Vec<String> = Api::<Event>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reporting_instance)
        .collect();
    who.sort();
    who.dedup();
    who
}

async fn ecr_has(env: &OperatorEnv, region: &str, name: &str) -> bool {
    env.moto
        .ecr_client(region)
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn two_shards_each_reconcile_only_their_own_objects() {
    // Shard A: the env's operator and Registry (us-east-1).
    let env = OperatorEnv::start_with(A, &["--pod-name", A]).await;
    assert_eq!(env.shard(), A);
    // Shard B: a second operator on the same cluster and the same local ECR endpoint, its
    // Registry in another region (moto keeps regions apart, as two registries).
    let bin = Path::new(env!("CARGO_BIN_EXE_ecr-operator"));
    let selector_b = format!("{SHARD_LABEL}={B}");
    let args = [
        "--cluster-id",
        CLUSTER_ID,
        "--repository-cache-ttl",
        "2s",
        "--log-filter",
        "info,ecr_operator=debug",
        "--watch-label-selector",
        &selector_b,
        "--pod-name",
        B,
    ];
    let mut b = Operator::start(bin, cluster(), &env.moto.endpoint, &args).unwrap();
    let registry_b = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry", "metadata": {"name": B},
        "spec": {"region": "us-west-2", "endpoint": env.proxy.endpoint}});
    apply(&env.client, "", &in_shard(Some(B), registry_b))
        .await
        .unwrap();
    let logs = || {
        format!(
            "--- {A}:\n{}\n--- {B}:\n{}",
            tail(&env.logs(), 30),
            tail(&b.logs(), 30)
        )
    };
    env.wait_registry_ready().await;
    let registries: Api<ecr_operator::api::v1alpha1::Registry> = Api::all(env.client.clone());
    wait_condition(
        &registries,
        B,
        "Ready",
        "True",
        None,
        Duration::from_secs(90),
        logs,
    )
    .await;
    // Each operator says at start which objects it serves.
    for (log, shard) in [(env.logs(), A), (b.logs(), B)] {
        let expected = format!("watch_label_selector={SHARD_LABEL}={shard}");
        assert!(
            log.contains(&expected),
            "{shard}: no {expected:?} in\n{}",
            tail(&log, 20)
        );
    }

    let ns = temp_namespace(&env.client, "sharding").await;
    let api: Api<Repository> = Api::namespaced(env.client.clone(), &ns);
    let limit = Duration::from_secs(90);
    // One Repository per shard, each on its shard's Registry.
    for (name, shard, registry) in [("in-a", A, A), ("in-b", B, B)] {
        apply(
            &env.client,
            &ns,
            &in_shard(Some(shard), repository(name, &ns, registry)),
        )
        .await
        .unwrap();
    }
    // In shard B, naming shard A's Registry: B serves it and cannot see its Registry.
    apply(&env.client, &ns, &in_shard(Some(B), repository("stray", &ns, A)))
        .await
        .unwrap();
    // In no shard at all: both operators have selectors, neither serves it.
    apply(&env.client, &ns, &in_shard(None, repository("nobody", &ns, A)))
        .await
        .unwrap();

    wait_condition(&api, "in-a", "Ready", "True", None, limit, logs).await;
    wait_condition(&api, "in-b", "Ready", "True", None, limit, logs).await;
    assert!(ecr_has(&env, "us-east-1", &format!("{ns}/in-a")).await);
    assert!(ecr_has(&env, "us-west-2", &format!("{ns}/in-b")).await);
    let stray = wait_condition(
        &api,
        "stray",
        "Reconciling",
        "True",
        Some("DependencyNotReady"),
        limit,
        logs,
    )
    .await;
    let waiting = condition(&stray, "Reconciling").unwrap().message.clone();
    assert!(
        waiting.contains(&format!("Registry \"{A}\" not found")),
        "{waiting}"
    );
    assert!(condition(&stray, "Ready").is_none_or(|c| c.status != "True"));

    // Who did what, from the events' reporting instance: each Repository's events come from
    // its own shard's operator only (the Created events of in-a and in-b, the waiting one of
    // stray).
    let by = |name: &'static str, shard: &'static str| {
        let (client, ns) = (env.client.clone(), ns.clone());
        let what = format!("an event about {name} from {shard}");
        async move {
            eventually(Duration::from_secs(30), &what, || async {
                let who = reporters(&client, &ns, name).await;
                (!who.is_empty()).then_some(who)
            })
            .await
        }
    };
    assert_eq!(by("in-a", A).await, [A]);
    assert_eq!(by("in-b", B).await, [B]);
    assert_eq!(by("stray", B).await, [B]);

    // Shard A's operator serves shard A's Registry, yet never touches stray. A reconcile-now
    // request on stray is answered (B reconciled it again, after the request), and still: it
    // waits, there is no repository for it in either registry, and A never logged it.
    let poke = json!({"apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Repository", "metadata": {"name": "stray",
        "annotations": {"ecr-operator.dev/reconcile-requested-at": "poke"}}, "spec": repository("stray", &ns, A)["spec"]});
    apply(&env.client, &ns, &in_shard(Some(B), poke)).await.unwrap();
    eventually(
        Duration::from_secs(60),
        "B to answer the reconcile-now request",
        || async {
            let r = api.get("stray").await.ok()?;
            (r.status?.last_handled_reconcile_at.as_deref() == Some("poke")).then_some(())
        },
    )
    .await;
    let stray = api.get("stray").await.unwrap();
    assert_eq!(
        condition(&stray, "Reconciling").map(|c| c.reason.as_str()),
        Some("DependencyNotReady"),
        "{}",
        logs()
    );
    assert!(
        !ecr_has(&env, "us-east-1", &format!("{ns}/stray")).await,
        "A created it"
    );
    assert!(
        !ecr_has(&env, "us-west-2", &format!("{ns}/stray")).await,
        "B created it"
    );
    assert_eq!(reporters(&env.client, &ns, "stray").await, [B]);
    assert!(!env.logs().contains("stray"), "A looked at stray:\n{}", logs());
    // Nobody's: no status, no finalizer, no events, no repository, in either log.
    let nobody = api.get("nobody").await.unwrap();
    assert!(nobody.status.is_none(), "{:?}", nobody.status);
    assert!(nobody.finalizers().is_empty(), "{:?}", nobody.finalizers());
    assert!(reporters(&env.client, &ns, "nobody").await.is_empty());
    assert!(!ecr_has(&env, "us-east-1", &format!("{ns}/nobody")).await);
    assert!(
        !env.logs().contains("nobody") && !b.logs().contains("nobody"),
        "{}",
        logs()
    );

    // Relabelled into shard A, stray moves to A's operator, which creates it in A's registry.
    apply(&env.client, &ns, &in_shard(Some(A), repository("stray", &ns, A)))
        .await
        .unwrap();
    wait_condition(&api, "stray", "Ready", "True", None, limit, logs).await;
    assert!(ecr_has(&env, "us-east-1", &format!("{ns}/stray")).await);
    eventually(Duration::from_secs(30), "A's event about stray", || async {
        (reporters(&env.client, &ns, "stray").await == [A, B]).then_some(())
    })
    .await;

    // Clean up while both operators run (their finalizers).
    for name in ["in-a", "in-b", "stray", "nobody"] {
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
    let _ = registries.delete(B, &DeleteParams::default()).await;
    env.delete_registry().await;
    eventually(Duration::from_secs(60), "shard B's Registry to go", || async {
        registries.get_opt(B).await.ok()?.is_none().then_some(())
    })
    .await;
    b.stop();
}
