//! The Helm chart, without a cluster: its CRDs are the generated ones, its version follows the
//! crate, and rendering it (`helm template`) gives a Deployment that meets the restricted Pod
//! Security Standard and RBAC without cluster-wide `get` on Secrets (the output is parsed back into
//! k8s-openapi types, our strict-schema check). The install itself is tested against the real
//! control plane in `tests/e2e/chart.rs`.

// Test code: helpers may unwrap (the standard forbids unwrap outside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use ecr_operator::api;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("charts/ecr-operator")
}

#[test]
fn chart_crds_are_byte_identical_to_the_generated_ones() {
    let dir = chart().join("files/crds");
    let mut expected = BTreeSet::new();
    for crd in api::crds() {
        let name = api::crd_file_name(&crd);
        let copy = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        assert!(
            copy == api::render_crd(&crd).unwrap(),
            "charts/ecr-operator/files/crds/{name} differs from the Rust types; run UPDATE_CRDS=1 cargo test --test crds"
        );
        expected.insert(name);
    }
    let found: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(found, expected, "orphan files in charts/ecr-operator/files/crds");
}

/// One version (`cargo xtask version X.Y.Z` sets them all): the chart's `version` and
/// `appVersion` and the Dockerfile's `ARG VERSION` (the image's version label) are the crate's.
#[test]
fn chart_version_app_version_and_dockerfile_follow_the_crate() {
    let text = std::fs::read_to_string(chart().join("Chart.yaml")).unwrap();
    let chart: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(chart["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    let dockerfile =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let args: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ARG VERSION="))
        .collect();
    assert_eq!(args, [env!("CARGO_PKG_VERSION")], "the Dockerfile's ARG VERSION");
}

/// `helm package`, as the release workflow runs it: the archive is named after the chart and the
/// crate's version, and holds Chart.yaml at that version, the values and their schema, the
/// templates and every generated CRD (byte-identical), and nothing from outside the chart.
#[test]
fn helm_package_builds_the_release_archive() {
    let helm = ecr_operator_testenv::helm_bin().unwrap();
    let dir = std::env::temp_dir().join(format!("ecr-operator-helm-package-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(helm)
        .arg("package")
        .arg(chart())
        .arg("--destination")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm package: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = env!("CARGO_PKG_VERSION");
    let archive = dir.join(format!("ecr-operator-{version}.tgz"));
    let listed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, [format!("ecr-operator-{version}.tgz")]);

    // Read it back with tar (the files under ecr-operator/).
    let extract = dir.join("x");
    std::fs::create_dir_all(&extract).unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&extract)
        .status()
        .unwrap();
    assert!(status.success());
    let packaged = extract.join("ecr-operator");
    let packaged_chart: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(packaged.join("Chart.yaml")).unwrap()).unwrap();
    assert_eq!(packaged_chart["name"], "ecr-operator");
    assert_eq!(packaged_chart["version"], version);
    assert_eq!(packaged_chart["appVersion"], version);
    for file in [
        "values.yaml",
        "values.schema.json",
        "templates/crds.yaml",
        "templates/deployment.yaml",
    ] {
        assert_eq!(
            std::fs::read(packaged.join(file)).unwrap(),
            std::fs::read(chart().join(file)).unwrap(),
            "{file} in the archive"
        );
    }
    let mut crds = BTreeSet::new();
    for crd in api::crds() {
        let name = api::crd_file_name(&crd);
        let copy = std::fs::read_to_string(packaged.join("files/crds").join(&name)).unwrap_or_default();
        assert!(
            copy == api::render_crd(&crd).unwrap(),
            "files/crds/{name} in the archive"
        );
        crds.insert(name);
    }
    assert_eq!(crds.len(), api::crds().len());
    let mut top: Vec<String> = std::fs::read_dir(&packaged)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        top,
        [
            "Chart.yaml",
            "files",
            "templates",
            "values.schema.json",
            "values.yaml"
        ],
        "the archive holds the chart and nothing else"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `helm template` with `--set` values, as parsed documents. Helm comes from `ECR_OPERATOR_HELM`
/// (set by `cargo xtask test`) or is installed by `tests/testcluster/helm.sh`.
fn template(values: &[&str]) -> Vec<Value> {
    let rendered = try_template(values).unwrap_or_else(|e| panic!("helm template: {e}"));
    ecr_operator_testenv::yaml_documents(&rendered).unwrap()
}

/// `helm template` with `--set` values: the output, or Helm's error (e.g. the values schema's).
fn try_template(values: &[&str]) -> Result<String, String> {
    let helm = ecr_operator_testenv::helm_bin().unwrap();
    let mut cmd = Command::new(helm);
    cmd.args(["template", "ecr-operator"])
        .arg(chart())
        .args(["--namespace", "ecr-system"]);
    for v in values {
        cmd.args(["--set", v]);
    }
    let out = cmd.output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The operator container of the rendered Deployment.
fn operator_container(docs: &[Value]) -> Container {
    let deployment: Deployment = serde_json::from_value(of_kind(docs, "Deployment")[0].clone()).unwrap();
    let mut containers = deployment.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(containers.len(), 1);
    containers.remove(0)
}

/// `resources.<which>` of a container as `name=quantity` pairs.
fn resources(c: &Container, which: &str) -> BTreeSet<String> {
    let r = c.resources.clone().unwrap_or_default();
    let map = if which == "requests" { r.requests } else { r.limits };
    map.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}={}", v.0))
        .collect()
}

fn of_kind(docs: &[Value], kind: &str) -> Vec<Value> {
    docs.iter().filter(|d| d["kind"] == kind).cloned().collect()
}

#[test]
fn rendered_deployment_meets_the_restricted_pod_security_standard() {
    let docs = template(&[]);
    let deployments = of_kind(&docs, "Deployment");
    assert_eq!(deployments.len(), 1);
    let deployment: Deployment = serde_json::from_value(deployments[0].clone()).unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let psc = pod.security_context.unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    assert!(pod.host_network.is_none() && pod.host_pid.is_none() && pod.host_ipc.is_none());
    assert!(
        pod.volumes
            .unwrap_or_default()
            .iter()
            .all(|v| v.host_path.is_none())
    );
    assert_eq!(pod.containers.len(), 1);
    for c in pod.containers.iter().chain(pod.init_containers.iter().flatten()) {
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
        assert_ne!(sc.privileged, Some(true), "{}", c.name);
        assert_ne!(sc.run_as_user, Some(0), "{}", c.name);
        let caps = sc.capabilities.unwrap();
        assert_eq!(caps.drop, Some(vec!["ALL".to_owned()]), "{}", c.name);
        assert!(caps.add.unwrap_or_default().is_empty(), "{}", c.name);
        assert!(
            c.ports.iter().flatten().all(|p| p.host_port.is_none()),
            "{}",
            c.name
        );
        // Probes on the operator's own endpoints, and the downward API for leader election.
        let probe_path =
            |p: Option<k8s_openapi::api::core::v1::Probe>| p.unwrap().http_get.unwrap().path.unwrap();
        assert_eq!(probe_path(c.liveness_probe.clone()), "/healthz");
        assert_eq!(probe_path(c.readiness_probe.clone()), "/readyz");
        let env: BTreeSet<String> = c.env.iter().flatten().map(|e| e.name.clone()).collect();
        for name in [
            "POD_NAME",
            "POD_NAMESPACE",
            "ECR_OPERATOR_LEADER_ELECT",
            "ECR_OPERATOR_LOG_FORMAT",
            "MALLOC_ARENA_MAX",
        ] {
            assert!(env.contains(name), "{name} missing from {env:?}");
        }
    }
}

#[test]
fn rendered_crds_equal_the_generated_ones_and_are_kept_on_uninstall() {
    let docs = template(&[]);
    let rendered = of_kind(&docs, "CustomResourceDefinition");
    assert_eq!(rendered.len(), api::crds().len());
    for doc in rendered {
        let crd: CustomResourceDefinition = serde_json::from_value(doc).unwrap();
        let generated = api::crds()
            .into_iter()
            .find(|c| c.metadata.name == crd.metadata.name)
            .unwrap();
        assert_eq!(crd.spec, generated.spec, "{:?}", crd.metadata.name);
        let keep = crd.metadata.annotations.unwrap_or_default();
        assert_eq!(
            keep.get("helm.sh/resource-policy").map(String::as_str),
            Some("keep")
        );
    }
    let docs = template(&["crds.install=false"]);
    assert!(of_kind(&docs, "CustomResourceDefinition").is_empty());
}

#[test]
fn rendered_rbac_is_least_privilege() {
    let docs = template(&[]);
    let role: ClusterRole = serde_json::from_value(of_kind(&docs, "ClusterRole")[0].clone()).unwrap();
    let rules = role.rules.unwrap();
    let verbs_on = |group: &str, resource: &str| -> BTreeSet<String> {
        rules
            .iter()
            .filter(|r| r.api_groups.iter().flatten().any(|g| g == group))
            .filter(|r| r.resources.iter().flatten().any(|x| x == resource))
            .flat_map(|r| r.verbs.clone())
            .collect()
    };
    for rule in &rules {
        assert!(!rule.verbs.iter().any(|v| v == "*"), "wildcard verb in {rule:?}");
        assert!(
            !rule.resources.iter().flatten().any(|v| v == "*"),
            "wildcard resource in {rule:?}"
        );
    }
    // No cluster-wide get or update on Secrets; no create/delete of the users' own objects.
    let secrets = verbs_on("", "secrets");
    assert!(
        !secrets.contains("get") && !secrets.contains("update"),
        "{secrets:?}"
    );
    assert_eq!(
        verbs_on("ecr-operator.dev", "repositories"),
        ["get", "list", "patch", "watch"].map(String::from).into()
    );
    // The image inventory (on by default): list and watch only, and gone when turned off.
    for (group, resource) in [
        ("", "pods"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
    ] {
        assert_eq!(
            verbs_on(group, resource),
            ["list", "watch"].map(String::from).into(),
            "{resource}"
        );
    }
    let off = template(&["rbac.imageInventory=false"]);
    let off: ClusterRole = serde_json::from_value(of_kind(&off, "ClusterRole")[0].clone()).unwrap();
    assert!(
        !off.rules
            .unwrap()
            .iter()
            .any(|r| r.resources.iter().flatten().any(|x| x == "pods")),
        "rbac.imageInventory=false grants nothing on Pods"
    );
    // Tenant identities are opt-in: by default the operator cannot mint any ServiceAccount's
    // token; when enabled, only `create` on the token subresource, narrowed by name when asked.
    assert!(verbs_on("", "serviceaccounts/token").is_empty());
    let on = template(&["rbac.tenantIdentities=true"]);
    let on: ClusterRole = serde_json::from_value(of_kind(&on, "ClusterRole")[0].clone()).unwrap();
    let token_verbs: BTreeSet<String> = on
        .rules
        .unwrap()
        .into_iter()
        .filter(|r| r.resources.iter().flatten().any(|x| x == "serviceaccounts/token"))
        .flat_map(|r| r.verbs)
        .collect();
    assert_eq!(token_verbs, ["create"].map(String::from).into());
    let narrowed = template(&[
        "rbac.tenantIdentities=true",
        "rbac.tenantServiceAccountNames={ecr-puller}",
    ]);
    let narrowed: ClusterRole = serde_json::from_value(of_kind(&narrowed, "ClusterRole")[0].clone()).unwrap();
    let token_rule = narrowed
        .rules
        .unwrap()
        .into_iter()
        .find(|r| r.resources.iter().flatten().any(|x| x == "serviceaccounts/token"))
        .unwrap();
    assert_eq!(token_rule.resource_names, Some(vec!["ecr-puller".to_owned()]));
    // A Registry's web identity needs it without the pull-secret controllers too.
    let no_pull = template(&["rbac.pullSecrets=false", "rbac.tenantIdentities=true"]);
    let no_pull: ClusterRole = serde_json::from_value(of_kind(&no_pull, "ClusterRole")[0].clone()).unwrap();
    assert!(
        no_pull.rules.unwrap().iter().any(|r| r
            .resources
            .iter()
            .flatten()
            .any(|x| x == "serviceaccounts/token"))
    );
    let off = template(&["rbac.tenantIdentities=false"]);
    let off: ClusterRole = serde_json::from_value(of_kind(&off, "ClusterRole")[0].clone()).unwrap();
    assert!(
        !off.rules.unwrap().iter().any(|r| r
            .resources
            .iter()
            .flatten()
            .any(|x| x == "serviceaccounts/token"))
    );
    // Leases only in the release namespace, through a Role.
    assert!(verbs_on("coordination.k8s.io", "leases").is_empty());
    let roles: Vec<Role> = of_kind(&docs, "Role")
        .into_iter()
        .map(|r| serde_json::from_value(r).unwrap())
        .collect();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].metadata.namespace.as_deref(), Some("ecr-system"));

    // Without the pull-secret controllers, no Secret access beyond the credential namespaces.
    let docs = template(&[
        "rbac.pullSecrets=false",
        "rbac.credentialSecretNamespaces={aws-keys}",
    ]);
    let role: ClusterRole = serde_json::from_value(of_kind(&docs, "ClusterRole")[0].clone()).unwrap();
    assert!(
        !role
            .rules
            .unwrap()
            .iter()
            .any(|r| r.resources.iter().flatten().any(|x| x == "secrets"))
    );
    let namespaces: BTreeSet<String> = of_kind(&docs, "Role")
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(namespaces, ["aws-keys", "ecr-system"].map(String::from).into());
    let deployment = &of_kind(&docs, "Deployment")[0];
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let controllers = env
        .iter()
        .find(|e| e["name"] == "ECR_OPERATOR_CONTROLLERS")
        .unwrap();
    assert_eq!(
        controllers["value"],
        "registry,repository,lifecycle-policy,replication"
    );
}

#[test]
fn pod_disruption_budget_and_service_monitor_only_when_asked() {
    let docs = template(&[]);
    assert!(of_kind(&docs, "PodDisruptionBudget").is_empty());
    assert!(of_kind(&docs, "ServiceMonitor").is_empty());
    assert!(of_kind(&docs, "Registry").is_empty());
    let docs = template(&[
        "replicaCount=2",
        "metrics.serviceMonitor.enabled=true",
        "defaultRegistry.create=true",
    ]);
    assert_eq!(of_kind(&docs, "PodDisruptionBudget").len(), 1);
    assert_eq!(of_kind(&docs, "ServiceMonitor").len(), 1);
    let registry = &of_kind(&docs, "Registry")[0];
    assert_eq!(registry["spec"]["region"], "us-east-1");
}

/// What kube-score calls CRITICAL, settled: requests and limits for memory and ephemeral storage,
/// a CPU request and no CPU limit unless asked for (docs/install.md says why), and an explicit
/// pull policy for an immutable reference (the release tag, or a digest).
#[test]
fn rendered_resources_and_image_reference() {
    let c = operator_container(&template(&[]));
    assert_eq!(
        resources(&c, "requests"),
        ["cpu=50m", "ephemeral-storage=64Mi", "memory=64Mi"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        resources(&c, "limits"),
        ["ephemeral-storage=256Mi", "memory=256Mi"]
            .map(String::from)
            .into(),
        "no CPU limit by default"
    );
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(
        c.image.as_deref(),
        Some(format!("ghcr.io/ecr-operator/ecr-operator:{}", env!("CARGO_PKG_VERSION")).as_str())
    );

    // A CPU limit when the cluster's policy wants one; the other limits stay.
    let c = operator_container(&template(&["resources.limits.cpu=500m"]));
    assert_eq!(
        resources(&c, "limits"),
        ["cpu=500m", "ephemeral-storage=256Mi", "memory=256Mi"]
            .map(String::from)
            .into()
    );

    // A digest replaces the tag; a malformed one is refused by the values schema.
    let digest = format!("sha256:{}", "ab".repeat(32));
    let c = operator_container(&template(&[
        &format!("image.digest={digest}"),
        "image.tag=ignored",
    ]));
    assert_eq!(
        c.image.as_deref(),
        Some(format!("ghcr.io/ecr-operator/ecr-operator@{digest}").as_str())
    );
    let refused = try_template(&["image.digest=latest"]).unwrap_err();
    assert!(refused.contains("digest"), "{refused}");
    let c = operator_container(&template(&["image.pullPolicy=Always"]));
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
}

/// The value of the env variable `name` of a Deployment's operator container, if set.
fn deployment_env(deployment: &Deployment, name: &str) -> Option<String> {
    let spec = deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    spec.containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

/// `sharding.shards` adds one Deployment per shard, each with its own Lease and selector, and the
/// main one gets `!key` only then; no Deployment (nor PodDisruptionBudget, nor NetworkPolicy)
/// selects another's pods. Without shards the install is exactly what it was.
#[test]
fn sharding_adds_one_deployment_per_shard_and_leaves_the_default_unchanged() {
    use ecr_operator::shard::{SHARD_LABEL, WatchSelector};
    let deployments = |docs: &[Value]| -> Vec<Deployment> {
        of_kind(docs, "Deployment")
            .into_iter()
            .map(|d| serde_json::from_value(d).unwrap())
            .collect()
    };
    let base = ["replicaCount=2", "networkPolicy.enabled=true"];
    let plain = template(&base);
    let [main_alone] = deployments(&plain).try_into().unwrap();
    assert_eq!(
        deployment_env(&main_alone, "ECR_OPERATOR_WATCH_LABEL_SELECTOR"),
        None
    );
    // An empty list is the default.
    assert_eq!(
        try_template(&[&base[..], &["sharding.shards=null"]].concat()).unwrap(),
        try_template(&base).unwrap()
    );

    let docs = template(&[&base[..], &["sharding.shards={a,b}"]].concat());
    let all = deployments(&docs);
    let names: Vec<String> = all.iter().map(|d| d.metadata.name.clone().unwrap()).collect();
    assert_eq!(
        names,
        ["ecr-operator", "ecr-operator-shard-a", "ecr-operator-shard-b"]
    );
    let selectors: Vec<String> = all
        .iter()
        .map(|d| deployment_env(d, "ECR_OPERATOR_WATCH_LABEL_SELECTOR").unwrap())
        .collect();
    assert_eq!(
        selectors,
        [
            format!("!{SHARD_LABEL}"),
            format!("{SHARD_LABEL}=a"),
            format!("{SHARD_LABEL}=b")
        ]
    );
    for s in &selectors {
        s.parse::<WatchSelector>().unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    let leases: BTreeSet<String> = all
        .iter()
        .map(|d| deployment_env(d, "ECR_OPERATOR_LEASE_NAME").unwrap())
        .collect();
    assert_eq!(leases.len(), 3, "one Lease each: {leases:?}");
    // The main Deployment is the unsharded one plus its selector: same pod selector (immutable
    // once installed), same everything else.
    let mut main = all[0].clone();
    let env = &mut main
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .env;
    env.as_mut()
        .unwrap()
        .retain(|e| e.name != "ECR_OPERATOR_WATCH_LABEL_SELECTOR");
    assert_eq!(main, main_alone);
    // Each pod selector (Deployment, PodDisruptionBudget, NetworkPolicy) matches the pods of
    // exactly one Deployment.
    let pod_labels: Vec<BTreeMap<String, String>> = all
        .iter()
        .map(|d| {
            let template = &d.spec.as_ref().unwrap().template;
            template.metadata.as_ref().unwrap().labels.clone().unwrap()
        })
        .collect();
    let selects = |match_labels: &Value| -> Vec<usize> {
        let wanted: BTreeMap<String, String> = serde_json::from_value(match_labels.clone()).unwrap();
        (0..pod_labels.len())
            .filter(|&i| wanted.iter().all(|(k, v)| pod_labels[i].get(k) == Some(v)))
            .collect()
    };
    for (i, d) in all.iter().enumerate() {
        let selector = serde_json::to_value(&d.spec.as_ref().unwrap().selector.match_labels).unwrap();
        assert_eq!(selects(&selector), [i], "Deployment {}", names[i]);
    }
    for (kind, path) in [
        ("PodDisruptionBudget", "/spec/selector/matchLabels"),
        ("NetworkPolicy", "/spec/podSelector/matchLabels"),
    ] {
        let objects = of_kind(&docs, kind);
        let covered: Vec<Vec<usize>> = objects
            .iter()
            .map(|o| selects(o.pointer(path).unwrap()))
            .collect();
        assert_eq!(covered, [[0], [1], [2]], "{kind}");
    }
    // Shard names are label values and parts of object names.
    let err = try_template(&["sharding.shards={Team_A}"]).unwrap_err();
    assert!(err.contains("does not match pattern"), "{err}");
}
