use super::*;

fn rule(interval: Option<&str>) -> ReplicationRule {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "ReplicationRule",
        "metadata": {"name": "r"},
        "spec": {"registryRef": {"name": "default"}, "interval": interval,
            "destinations": [{"region": "eu-west-1", "registryId": "123456789012"}]},
    }))
    .unwrap()
}

#[test]
fn a_rules_interval_shortens_the_documents_recheck_never_lengthens_it() {
    let ten_minutes = Duration::from_secs(600);
    let rules = [rule(Some("1h")), rule(None), rule(Some("2m")), rule(Some("30m"))];
    let shortest = shortest_interval(&rules);
    assert_eq!(shortest.as_ref().map(Interval::as_str), Some("2m"));
    assert_eq!(
        recheck_every(ten_minutes, shortest.as_ref()),
        Duration::from_secs(120)
    );
    let long = shortest_interval(&[rule(Some("1h"))]);
    assert_eq!(recheck_every(ten_minutes, long.as_ref()), ten_minutes);
    assert_eq!(recheck_every(ten_minutes, None), ten_minutes);
    assert_eq!(shortest_interval(&[rule(None)]), None);
}
