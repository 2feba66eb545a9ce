//! `crds/` is generated from the Rust types; these tests fail when it is stale or malformed, and
//! when a CEL rule has no invalid fixture that exercises it.

// Test code: helpers may unwrap (the standard forbids unwrap outside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ecr_operator::api::{self, CATEGORY, GROUP};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_crds_match_the_rust_types() {
    let dir = root().join("crds");
    for crd in api::crds() {
        let path = dir.join(api::crd_file_name(&crd));
        let fresh = api::render_crd(&crd).unwrap();
        if std::env::var_os("UPDATE_CRDS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
            // The chart's copy (tests/chart.rs checks it is byte-identical).
            let chart_copy = root()
                .join("charts/ecr-operator/files/crds")
                .join(api::crd_file_name(&crd));
            std::fs::write(chart_copy, &fresh).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{} is stale; run UPDATE_CRDS=1 cargo test --test crds (rewrites crds/ and the chart copy)",
            path.display()
        );
    }
}

#[test]
fn crds_dir_holds_no_orphans() {
    let expected: BTreeSet<String> = api::crds().iter().map(api::crd_file_name).collect();
    let found: BTreeSet<String> = std::fs::read_dir(root().join("crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn every_crd_is_kstatus_shaped() {
    let crds = api::crds();
    assert_eq!(crds.len(), 10, "ten kinds");
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap();
        assert_eq!(crd.spec.group, GROUP, "{name}");
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&[CATEGORY.to_owned()][..]),
            "{name}"
        );
        assert!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| s[0].starts_with("ecr")),
            "{name}"
        );
        assert_eq!(crd.spec.versions.len(), 1, "{name}: one version");
        let v = &crd.spec.versions[0];
        assert!(v.storage && v.served, "{name}");
        assert!(
            v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(),
            "{name}: status subresource"
        );
        let cols: Vec<&str> = v
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        for col in ["Ready", "Status", "Age"] {
            assert!(
                cols.contains(&col),
                "{name}: printer column {col} missing from {cols:?}"
            );
        }
        let schema =
            serde_json::to_value(v.schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()).unwrap();
        let status = &schema["properties"]["status"]["properties"];
        assert_eq!(
            status["observedGeneration"]["type"], "integer",
            "{name}: status.observedGeneration"
        );
        let conditions = &status["conditions"];
        assert_eq!(
            conditions["x-kubernetes-list-type"], "map",
            "{name}: conditions list-map"
        );
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"]),
            "{name}"
        );
        let spec = &schema["properties"]["spec"]["properties"];
        assert_eq!(spec["suspend"]["type"], "boolean", "{name}: spec.suspend");
        assert_eq!(spec["interval"]["type"], "string", "{name}: spec.interval");
        assert_no_undocumented_field(&name, "spec", &schema["properties"]["spec"]);
        assert_no_undocumented_field(&name, "status", &schema["properties"]["status"]);
    }
}

/// Every property has a description (it is what `kubectl explain` prints).
fn assert_no_undocumented_field(crd: &str, path: &str, schema: &Value) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, sub) in props {
            let p = format!("{path}.{key}");
            // k8s-openapi's own types (LabelSelector, Condition, Time) carry upstream docs.
            assert!(sub.get("description").is_some(), "{crd}: {p} has no description");
            assert_no_undocumented_field(crd, &p, sub);
        }
    }
    if let Some(items) = schema.get("items") {
        assert_no_undocumented_field(crd, &format!("{path}[]"), items);
    }
}

/// All `x-kubernetes-validations` messages in a schema.
fn cel_messages(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
                for rule in rules {
                    out.insert(rule["message"].as_str().unwrap_or_default().to_owned());
                }
            }
            map.values().for_each(|v| cel_messages(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| cel_messages(v, out)),
        _ => {}
    }
}

fn fixture_expectations() -> Vec<(PathBuf, String)> {
    let dir = root().join("tests/fixtures/invalid");
    let mut out = Vec::new();
    // controller/ holds the fixtures that pass admission (tests/e2e/corpus.rs).
    for path in yaml_files(&dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .map(str::to_owned);
        out.push((
            path.clone(),
            expect.unwrap_or_else(|| panic!("{} has no '# expect:' line", path.display())),
        ));
    }
    out
}

#[test]
fn every_cel_rule_has_an_invalid_fixture() {
    let mut messages = BTreeSet::new();
    for crd in api::crds() {
        cel_messages(&serde_json::to_value(&crd).unwrap(), &mut messages);
    }
    assert!(
        messages.len() >= 25,
        "expected the CEL rules of all kinds, found {}",
        messages.len()
    );
    assert!(
        messages.iter().all(|m| !m.is_empty()),
        "every CEL rule needs a message"
    );
    let expectations = fixture_expectations();
    assert!(
        expectations.len() >= 40,
        "the corpus has {} fixtures",
        expectations.len()
    );
    let uncovered: Vec<&String> = messages
        .iter()
        .filter(|m| !expectations.iter().any(|(_, e)| m.contains(e.as_str())))
        .collect();
    assert!(
        uncovered.is_empty(),
        "CEL rules without a fixture in tests/fixtures/invalid: {uncovered:#?}"
    );
}

/// Walks a schema: calls `visit(path, schema)` on every subschema.
fn walk(path: &str, schema: &Value, visit: &mut dyn FnMut(&str, &Value)) {
    visit(path, schema);
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (key, sub) in props {
            walk(&format!("{path}.{key}"), sub, visit);
        }
    }
    if let Some(items) = schema.get("items") {
        walk(&format!("{path}[]"), items, visit);
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        walk(&format!("{path}{{}}"), values, visit);
    }
}

fn rules_of(schema: &Value) -> Vec<(String, String)> {
    schema["x-kubernetes-validations"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|r| {
                    (
                        r["rule"].as_str().unwrap().to_owned(),
                        r["message"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every label selector of every kind (any schema with `matchExpressions`) carries the shared
/// selector rules, and every `region` field the shared region rule: a new field cannot be added
/// without them.
#[test]
fn every_label_selector_and_region_field_carries_the_shared_rules() {
    use ecr_operator::api::common::{REGION_MAX_LENGTH, REGION_MESSAGE, region_cel_rule};
    use ecr_operator::api::selector::{MAX_OPERATOR_LENGTH, cel_rules};
    let selector_rules: Vec<(String, String)> =
        cel_rules().into_iter().map(|(r, m)| (r, m.to_owned())).collect();
    let (mut selectors, mut regions) = (Vec::new(), Vec::new());
    for crd in api::crds() {
        let kind = crd.spec.names.kind.clone();
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap()["openAPIV3Schema"].clone();
        walk(&kind, &schema, &mut |path, sub| {
            if let Some(requirement) = sub.pointer("/properties/matchExpressions/items") {
                assert_eq!(rules_of(requirement), selector_rules, "{path}");
                assert_eq!(
                    requirement.pointer("/properties/operator/maxLength"),
                    Some(&Value::from(MAX_OPERATOR_LENGTH)),
                    "{path}"
                );
                selectors.push(path.to_owned());
            }
            if path.ends_with(".region") {
                assert!(
                    rules_of(sub).contains(&(region_cel_rule(), REGION_MESSAGE.to_owned())),
                    "{path}: {sub}"
                );
                assert_eq!(sub["maxLength"], Value::from(REGION_MAX_LENGTH), "{path}");
                assert!(sub.get("pattern").is_none(), "{path}: one rule, with a message");
                regions.push(path.to_owned());
            }
        });
    }
    assert_eq!(
        selectors,
        [
            "Registry.spec.allowedNamespaces",
            "LifecyclePolicy.spec.repositorySelector",
            "ClusterPullSecret.spec.namespaceSelector",
            "ImagePolicy.spec.namespaceSelector"
        ]
    );
    assert_eq!(
        regions,
        [
            "Registry.spec.region",
            "ReplicationRule.spec.destinations[].region"
        ]
    );
}

/// Every example parses into the typed API: catches typos and renamed fields without a cluster.
#[test]
fn every_example_parses_into_the_rust_types() {
    use ecr_operator::api::v1alpha1::*;
    let mut kinds = BTreeSet::new();
    let mut files = yaml_files(&root().join("examples"));
    files.extend(yaml_files(&root().join("examples/quickstart")));
    files.extend(yaml_files(&root().join("examples/argocd")));
    files.extend(yaml_files(&root().join("examples/tenant")));
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for value in ecr_operator_testenv::yaml_documents(&text).unwrap() {
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            let check =
                |r: Result<(), serde_json::Error>| r.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            match kind.as_str() {
                "Registry" => check(serde_json::from_value::<Registry>(value.clone()).map(drop)),
                "Repository" => check(serde_json::from_value::<Repository>(value.clone()).map(drop)),
                "LifecyclePolicy" => {
                    check(serde_json::from_value::<LifecyclePolicy>(value.clone()).map(drop))
                }
                "ReplicationRule" => {
                    check(serde_json::from_value::<ReplicationRule>(value.clone()).map(drop))
                }
                "PullSecret" => check(serde_json::from_value::<PullSecret>(value.clone()).map(drop)),
                "ClusterPullSecret" => {
                    check(serde_json::from_value::<ClusterPullSecret>(value.clone()).map(drop))
                }
                "Namespace" => check(
                    serde_json::from_value::<k8s_openapi::api::core::v1::Namespace>(value.clone()).map(drop),
                ),
                "PullThroughCacheRule" => {
                    check(serde_json::from_value::<PullThroughCacheRule>(value.clone()).map(drop))
                }
                "RepositoryCreationTemplate" => {
                    check(serde_json::from_value::<RepositoryCreationTemplate>(value.clone()).map(drop))
                }
                "PublicRepository" => check(
                    serde_json::from_value::<ecr_operator::api::v1alpha1::PublicRepository>(value.clone())
                        .map(drop),
                ),
                "ImagePolicy" => check(serde_json::from_value::<ImagePolicy>(value.clone()).map(drop)),
                // The Docker Hub example's credentials (not one of the counted kinds).
                "Secret" => {
                    check(
                        serde_json::from_value::<k8s_openapi::api::core::v1::Secret>(value.clone()).map(drop),
                    );
                    continue;
                }
                // The tenant example's ServiceAccount (not one of the counted kinds).
                "ServiceAccount" => {
                    check(
                        serde_json::from_value::<k8s_openapi::api::core::v1::ServiceAccount>(value.clone())
                            .map(drop),
                    );
                    continue;
                }
                other => panic!("{}: unexpected kind {other:?}", path.display()),
            }
            kinds.insert(kind);
        }
    }
    assert_eq!(
        kinds.len(),
        ecr_operator::api::crds().len() + 1,
        "at least one example per kind (and the quick start's Namespace), found {kinds:?}"
    );
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    ecr_operator_testenv::yaml_files(dir).unwrap()
}

/// The spec fields of every kind, as (kind, dotted path, field name), from the CRD schema.
fn spec_fields() -> Vec<(String, String, String)> {
    fn walk(kind: &str, path: &str, schema: &Value, out: &mut Vec<(String, String, String)>) {
        let props = schema
            .get("properties")
            .or_else(|| schema.get("items").and_then(|i| i.get("properties")));
        for (name, sub) in props.and_then(Value::as_object).into_iter().flatten() {
            let here = format!("{path}.{name}");
            out.push((kind.to_owned(), here.clone(), name.clone()));
            walk(kind, &here, sub, out);
        }
        if let Some(items) = schema.get("items")
            && items.get("properties").is_none()
        {
            walk(kind, path, items, out);
        }
        if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            walk(kind, path, values, out);
        }
    }
    let mut out = Vec::new();
    for crd in api::crds() {
        let kind = crd.spec.names.kind.clone();
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        let spec = &schema["openAPIV3Schema"]["properties"]["spec"];
        walk(&kind, "spec", spec, &mut out);
    }
    out
}

/// camelCase to the snake_case of the Rust field.
fn snake(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    match s.as_str() {
        "type" => "type_".to_owned(),
        _ => s,
    }
}

/// No field is accepted and ignored: every spec field of every kind is read by the operator
/// outside the API types (`src/api/v1alpha1/` only declares them), or sits in a subtree sent to
/// ECR whole. The check is by field name: a new field fails here until some code reads it (it
/// caught a rule's `description` and a policy's `Statement`, which are sent whole), but a field
/// whose name another kind also has (`interval`, `suspend`, `registryRef`) passes if either is
/// read, so those are held by their kinds' own tests (for `ReplicationRule.interval`:
/// `replication::tests::a_rules_interval_shortens_the_documents_recheck_never_lengthens_it`).
#[test]
fn every_spec_field_is_read_by_the_operator() {
    let mut code = String::new();
    let mut dirs = vec![root().join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.starts_with(root().join("src/api/v1alpha1"))
                && !path.starts_with(root().join("src/testing"))
            {
                code.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    // Subtrees sent to ECR whole, as the user wrote them: every field inside is read by the
    // serialisation (the parent field itself must still be read).
    const SENT_WHOLE: [(&str, &str); 6] = [
        // lifecycle::render puts each rule into ECR's lifecycle policy document as it is.
        ("LifecyclePolicy", "spec.rules."),
        // The permissions policies are the user's IAM document, compared and put whole.
        ("Registry", "spec.policy."),
        ("Repository", "spec.policy."),
        ("PublicRepository", "spec.policy."),
        // A creation template's policy and lifecycle rules, rendered whole as for the kinds above.
        ("RepositoryCreationTemplate", "spec.repositoryPolicy."),
        ("RepositoryCreationTemplate", "spec.lifecycleRules."),
    ];
    let mut unread = Vec::new();
    for (kind, path, name) in spec_fields() {
        if SENT_WHOLE.iter().any(|(k, p)| *k == kind && path.starts_with(p)) {
            continue;
        }
        let field = snake(&name);
        let read = code.contains(&format!(".{field}"))
            || code.contains(&format!("{field}:"))
            || code.contains(&format!("{field},"))
            || code.contains(&format!("{field} }}"));
        if !read {
            unread.push(format!("{kind} {path}"));
        }
    }
    assert!(
        unread.is_empty(),
        "spec fields no operator code reads (wire them up, or remove them): {unread:?}"
    );
}

/// A RepositoryCreationTemplate's `lifecycleRules` is a LifecyclePolicy's `rules`: the same rule
/// schema (types, per-rule CEL rules) and the same list-level CEL rules and bounds.
#[test]
fn creation_template_lifecycle_rules_are_the_lifecyclepolicy_grammar() {
    let crds = api::crds();
    let spec_of = |kind: &str| {
        let crd = crds.iter().find(|c| c.spec.names.kind == kind).unwrap();
        let v = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        v["openAPIV3Schema"]["properties"]["spec"]["properties"].clone()
    };
    let (policy, template) = (spec_of("LifecyclePolicy"), spec_of("RepositoryCreationTemplate"));
    let (rules, lifecycle_rules) = (&policy["rules"], &template["lifecycleRules"]);
    assert_eq!(rules["items"], lifecycle_rules["items"], "the rule schema");
    for key in ["x-kubernetes-validations", "minItems", "maxItems"] {
        assert!(!rules[key].is_null(), "{key}");
        assert_eq!(rules[key], lifecycle_rules[key], "{key}");
    }
}
