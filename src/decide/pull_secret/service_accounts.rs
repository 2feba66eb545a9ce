//! Pure: our entry in `ServiceAccount.imagePullSecrets` (the patch that adds or removes only
//! ours), which ServiceAccounts want it, and the report on named ones that do not exist.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::ResourceExt;
use serde_json::json;

use crate::error::Error;

/// Pure: the JSON patch that adds or removes our entry in `imagePullSecrets`, guarded by the
/// resourceVersion (the list is atomic under server-side apply), or `None` when nothing changes.
pub fn service_account_patch(sa: &ServiceAccount, secret: &str, present: bool) -> Option<serde_json::Value> {
    let list = sa.image_pull_secrets.as_deref().unwrap_or_default();
    let index = list.iter().position(|r| r.name == secret);
    let rv = sa.resource_version().unwrap_or_default();
    let guard = json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv});
    match (present, index) {
        (true, None) if sa.image_pull_secrets.is_none() => {
            Some(json!([guard, {"op": "add", "path": "/imagePullSecrets", "value": [{"name": secret}]}]))
        }
        (true, None) => {
            Some(json!([guard, {"op": "add", "path": "/imagePullSecrets/-", "value": {"name": secret}}]))
        }
        (false, Some(i)) => Some(json!([
            guard,
            {"op": "test", "path": format!("/imagePullSecrets/{i}/name"), "value": secret},
            {"op": "remove", "path": format!("/imagePullSecrets/{i}")}
        ])),
        _ => None,
    }
}

/// Pure: the report on ServiceAccounts a PullSecret names that do not exist in its namespace
/// (`None` when there are none).
pub fn not_found(namespace: &str, missing: &[String]) -> Option<Error> {
    let accounts = match missing {
        [] => return None,
        [one] => format!("ServiceAccount {one} does not exist"),
        _ => format!(
            "ServiceAccounts {} do not exist",
            crate::text::listed(missing, 10)
        ),
    };
    Some(Error::ServiceAccountNotFound(format!(
        "{accounts} in namespace {namespace}: the Secret is added to its imagePullSecrets when it is created"
    )))
}

/// Pure: the report on ServiceAccounts a ClusterPullSecret names that do not exist, by namespace
/// (`None` when there are none).
pub fn not_found_in_namespaces(missing: &[(String, Vec<String>)]) -> Option<Error> {
    if missing.is_empty() {
        return None;
    }
    let mut names: Vec<String> = missing.iter().flat_map(|(_, n)| n.iter().cloned()).collect();
    names.sort();
    names.dedup();
    let namespaces: Vec<String> = missing.iter().map(|(ns, _)| ns.clone()).collect();
    let accounts = match names.as_slice() {
        [one] => format!("ServiceAccount {one} does not exist"),
        _ => format!("ServiceAccounts {} do not exist", crate::text::listed(&names, 10)),
    };
    let place = match namespaces.as_slice() {
        [one] => format!("namespace {one}"),
        _ => format!(
            "{} namespaces ({})",
            namespaces.len(),
            crate::text::listed(&namespaces, 10)
        ),
    };
    let when = if names.len() == 1 && namespaces.len() == 1 {
        "its imagePullSecrets when it is created"
    } else {
        "their imagePullSecrets when they are created"
    };
    Some(Error::ServiceAccountNotFound(format!(
        "{accounts} in {place}: the Secret is added to {when}"
    )))
}

/// Pure: whether a ServiceAccount should hold our entry: it is named (or `*` names all) and the
/// entry is wanted at all (`present`). Every other ServiceAccount of the namespace loses it, so
/// a name dropped from `serviceAccounts` does not keep it.
pub fn wants_entry(names: &[String], service_account: &str, present: bool) -> bool {
    present && names.iter().any(|n| n == "*" || n == service_account)
}

/// Pure: the named ServiceAccounts (never `*`) that are not among `existing`.
pub fn missing_names(names: &[String], existing: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| *n != "*" && !existing.contains(n))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(pull: Option<Vec<&str>>) -> ServiceAccount {
        let mut sa: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": "default", "resourceVersion": "7"}})).unwrap();
        sa.image_pull_secrets = pull.map(|l| {
            l.into_iter()
                .map(|n| k8s_openapi::api::core::v1::LocalObjectReference { name: n.into() })
                .collect()
        });
        sa
    }

    #[test]
    fn only_named_service_accounts_keep_the_entry() {
        let names = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let named = names(&["builder"]);
        assert!(wants_entry(&named, "builder", true));
        // Dropped from the list (or never named): the entry goes.
        assert!(!wants_entry(&named, "runner", true));
        assert!(wants_entry(&names(&["*"]), "runner", true));
        // Deleting: from every one.
        assert!(!wants_entry(&names(&["*"]), "runner", false));
        assert!(!wants_entry(&[], "builder", true));
        assert_eq!(
            missing_names(
                &names(&["builder", "*", "ghost"]),
                &names(&["builder", "default"])
            ),
            ["ghost"]
        );
    }

    #[test]
    fn missing_service_accounts_are_named_with_their_namespace() {
        let names = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(not_found("team-a", &[]).is_none());
        let one = not_found("team-a", &names(&["runner"])).unwrap();
        assert_eq!(
            (one.class(), one.reason()),
            (crate::error::ErrorClass::Waiting, "ServiceAccountNotFound")
        );
        assert_eq!(
            one.to_string(),
            "ServiceAccount runner does not exist in namespace team-a: the Secret is added to its imagePullSecrets when it is created"
        );
        let two = not_found("team-a", &names(&["builder", "runner"])).unwrap();
        assert!(
            two.to_string()
                .starts_with("ServiceAccounts builder and runner do not exist in namespace team-a"),
            "{two}"
        );

        assert!(not_found_in_namespaces(&[]).is_none());
        let cluster = not_found_in_namespaces(&[
            ("a".into(), names(&["builder"])),
            ("b".into(), names(&["builder", "runner"])),
        ])
        .unwrap();
        assert_eq!(cluster.reason(), "ServiceAccountNotFound");
        assert_eq!(
            cluster.to_string(),
            "ServiceAccounts builder and runner do not exist in 2 namespaces (a and b): the Secret is added to their imagePullSecrets when they are created"
        );
        let single = not_found_in_namespaces(&[("a".into(), names(&["builder"]))]).unwrap();
        assert!(
            single
                .to_string()
                .starts_with("ServiceAccount builder does not exist in namespace a:"),
            "{single}"
        );
        // Many namespaces: the message stays short.
        let many: Vec<(String, Vec<String>)> = (0..500)
            .map(|i| (format!("ns-{i}"), names(&["default"])))
            .collect();
        let text = not_found_in_namespaces(&many).unwrap().to_string();
        assert!(
            text.contains("500 namespaces (ns-0, ns-1,") && text.contains("and 490 more"),
            "{text}"
        );
        assert!(text.len() < 300, "{text}");
    }

    #[test]
    fn service_account_patches_touch_only_our_entry_and_are_guarded() {
        let add_first = service_account_patch(&sa(None), "ecr", true).unwrap();
        assert_eq!(
            add_first[0],
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": "7"})
        );
        assert_eq!(
            add_first[1],
            json!({"op": "add", "path": "/imagePullSecrets", "value": [{"name": "ecr"}]})
        );
        let append = service_account_patch(&sa(Some(vec!["theirs"])), "ecr", true).unwrap();
        assert_eq!(
            append[1],
            json!({"op": "add", "path": "/imagePullSecrets/-", "value": {"name": "ecr"}})
        );
        assert_eq!(
            service_account_patch(&sa(Some(vec!["theirs", "ecr"])), "ecr", true),
            None,
            "already there"
        );
        let remove = service_account_patch(&sa(Some(vec!["theirs", "ecr", "other"])), "ecr", false).unwrap();
        assert_eq!(
            remove[1],
            json!({"op": "test", "path": "/imagePullSecrets/1/name", "value": "ecr"})
        );
        assert_eq!(remove[2], json!({"op": "remove", "path": "/imagePullSecrets/1"}));
        assert_eq!(
            service_account_patch(&sa(Some(vec!["theirs"])), "ecr", false),
            None,
            "never theirs"
        );
    }
}
