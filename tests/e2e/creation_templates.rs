//! RepositoryCreationTemplate against the real control plane and moto with the creation-template
//! extension (tests/moto/ecr_creation_templates.py): the example becomes Ready, ECR holds its
//! settings, a policy ECR holds in another form but with the same meaning is not rewritten (not
//! even after a restart), drift made behind the operator's back is reverted, and deletion removes
//! the template the operator created.

use std::time::Duration;

use ecr_operator::api::v1alpha1::RepositoryCreationTemplate;
use ecr_operator_testenv::repo_root;
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

use crate::harness::env::{OperatorEnv, tail};
use crate::harness::wait::wait_condition;
use crate::support::{eventually, quiet, yaml_documents};

const PREFIX: &str = "e2e-rct";

async fn ecr_template(env: &OperatorEnv) -> Option<aws_sdk_ecr::types::RepositoryCreationTemplate> {
    let out = env
        .ecr
        .describe_repository_creation_templates()
        .prefixes(PREFIX)
        .send()
        .await
        .ok()?;
    out.repository_creation_templates().first().cloned()
}

fn json_of(text: Option<&str>) -> Value {
    serde_json::from_str(text.unwrap_or("null")).unwrap()
}

#[tokio::test]
async fn a_creation_template_holds_its_settings_compares_policies_by_meaning_and_cleans_up() {
    let mut env = OperatorEnv::start("e2e-rct").await;
    env.wait_registry_ready().await;
    let text = std::fs::read_to_string(
        repo_root().join("examples/repositorycreationtemplate-pull-through-cache.yaml"),
    )
    .unwrap();
    let mut doc = yaml_documents(&text).pop().unwrap();
    doc["metadata"]["name"] = json!("e2e-rct");
    doc["spec"]["registryRef"] = json!({"name": env.registry});
    doc["spec"]["prefix"] = json!(PREFIX);
    doc["spec"]["interval"] = json!("10s");
    env.apply("", &doc).await.unwrap();
    let api: Api<RepositoryCreationTemplate> = Api::all(env.client.clone());
    let ready = wait_condition(
        &api,
        "e2e-rct",
        "Ready",
        "True",
        Some("Succeeded"),
        Duration::from_secs(90),
        || env.logs(),
    )
    .await;
    let status = ready.status.unwrap();
    assert_eq!(status.created, Some(true));
    assert!(status.created_at.is_some());

    // ECR holds the example's settings, the policies as JSON.
    let t = ecr_template(&env).await.expect("the template in ECR");
    assert_eq!(
        t.applied_for().iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        ["PULL_THROUGH_CACHE"]
    );
    assert_eq!(
        t.image_tag_mutability().map(|m| m.as_str()),
        Some("IMMUTABLE_WITH_EXCLUSION")
    );
    assert_eq!(t.image_tag_mutability_exclusion_filters()[0].filter(), "latest");
    assert_eq!(t.resource_tags()[0].key(), "team");
    let policy = json_of(t.repository_policy());
    assert_eq!(
        policy["Statement"][0]["Sid"],
        doc["spec"]["repositoryPolicy"]["Statement"][0]["Sid"]
    );
    let lifecycle = json_of(t.lifecycle_policy());
    assert_eq!(lifecycle["rules"][0]["selection"]["countNumber"], 20);

    // The same policies in another form (pretty-printed, keys reordered, a list reordered): the
    // same meaning, so nothing is written, within the interval or after a restart.
    let mut reordered = policy.clone();
    let actions = reordered["Statement"][0]["Action"].as_array_mut().unwrap();
    actions.reverse();
    env.ecr
        .update_repository_creation_template()
        .prefix(PREFIX)
        .repository_policy(serde_json::to_string_pretty(&reordered).unwrap())
        .lifecycle_policy(serde_json::to_string_pretty(&lifecycle).unwrap())
        .send()
        .await
        .unwrap();
    env.proxy.clear();
    quiet(Duration::from_secs(12)).await;
    assert_eq!(
        env.proxy.forwarded("UpdateRepositoryCreationTemplate"),
        0,
        "rewrote a policy of the same meaning"
    );
    assert!(
        env.proxy.forwarded("DescribeRepositoryCreationTemplates") >= 1,
        "the interval's re-check ran"
    );
    env.restart_and_settle("DescribeRepositoryCreationTemplates", 1)
        .await;
    let writes = env.proxy.forwarded_writes();
    assert!(
        writes.is_empty(),
        "a restart wrote {writes:?}\n{}",
        tail(&env.logs(), 30)
    );

    // Drift behind the operator's back (tags, mutability): reverted within the interval.
    env.ecr
        .update_repository_creation_template()
        .prefix(PREFIX)
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Mutable)
        .resource_tags(
            aws_sdk_ecr::types::Tag::builder()
                .key("team")
                .value("someone-else")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "the template's drift reverted",
        || async {
            let t = ecr_template(&env).await?;
            (t.image_tag_mutability().map(|m| m.as_str()) == Some("IMMUTABLE_WITH_EXCLUSION")
                && t.resource_tags().first().map(|t| t.value()) == Some("platform"))
            .then_some(())
        },
    )
    .await;

    // Deleting the object deletes the template it created.
    api.delete("e2e-rct", &DeleteParams::default()).await.unwrap();
    eventually(
        Duration::from_secs(60),
        "the template deleted from ECR",
        || async { ecr_template(&env).await.is_none().then_some(()) },
    )
    .await;
}
