//! Pure: a pull secret's tenant identity (`spec.identity`): which IAM role it assumes, as which
//! session, and whether its Registries accept it. The I/O (the ServiceAccount, its token, STS) is
//! in `controllers::pull_secret::identity`.

use std::collections::BTreeMap;

use crate::api::v1alpha1::{Registry, TenantIdentity};
use crate::error::{Error, Result};

/// The annotation IRSA reads a ServiceAccount's role from.
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// The audience of the ServiceAccount token STS accepts.
pub const TOKEN_AUDIENCE: &str = "sts.amazonaws.com";

/// The ServiceAccount token's lifetime: the shortest the API server issues. It is used once, at
/// once, for the exchange with STS.
pub const TOKEN_SECONDS: i64 = 600;

/// Pure: whether `arn` is an IAM role ARN (`arn:<partition>:iam::<12 digits>:role/<path/name>`),
/// the same rule as the CRD's pattern for `roleArn`.
pub fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    let name = resource.strip_prefix("role/").unwrap_or_default();
    scheme == "arn"
        && partition.starts_with("aws")
        && partition.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        && service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && (1..=512).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@/-".contains(c))
}

/// Pure: the role to assume: `roleArn`, else the ServiceAccount's `eks.amazonaws.com/role-arn`
/// annotation (checked: it passed no admission).
pub fn role_arn(
    identity: &TenantIdentity,
    namespace: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<String> {
    if let Some(arn) = &identity.role_arn {
        return Ok(arn.clone());
    }
    let sa = &identity.service_account_name;
    match annotations.get(ROLE_ARN_ANNOTATION) {
        None => Err(Error::InvalidIdentity(format!(
            "ServiceAccount {sa} in namespace {namespace} has no {ROLE_ARN_ANNOTATION} annotation and spec.identity sets no roleArn: annotate it with the IAM role to assume, or set roleArn"
        ))),
        Some(arn) if !is_role_arn(arn) => Err(Error::InvalidIdentity(format!(
            "the {ROLE_ARN_ANNOTATION} annotation of ServiceAccount {sa} in namespace {namespace} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>): {}",
            crate::text::truncate(arn.clone(), 120)
        ))),
        Some(arn) => Ok(arn.clone()),
    }
}

/// Pure: the STS session name, `ecr-operator@<namespace>.<serviceaccount>` (64 characters at
/// most, as STS allows), so CloudTrail names the tenant.
pub fn session_name(namespace: &str, service_account: &str) -> String {
    let mut name = format!("ecr-operator@{namespace}.{service_account}");
    name.truncate(64);
    name
}

/// Pure: the report on a ServiceAccount that `field` (`spec.identity`, or a Registry's
/// `spec.auth.webIdentity`) names but that does not exist in `namespace`.
pub fn identity_not_found(field: &str, namespace: &str, service_account: &str) -> Error {
    let own = if field == "spec.identity" {
        " (only a ServiceAccount of the object's own namespace can be named)"
    } else {
        ""
    };
    Error::IdentityNotFound(format!(
        "ServiceAccount {service_account} named by {field} does not exist in namespace {namespace}{own}"
    ))
}

/// Pure: a Registry with `requireTenantIdentity` refuses a pull secret without an identity.
pub fn check_required(registry: &Registry, has_identity: bool) -> Result<()> {
    if registry.spec.require_tenant_identity && !has_identity {
        return Err(Error::TenantIdentityRequired(format!(
            "Registry {} requires tenant identity (requireTenantIdentity): set spec.identity to a ServiceAccount of this namespace whose IAM role may pull",
            kube::ResourceExt::name_any(registry)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_are_checked_like_the_crd_pattern() {
        for (arn, ok) in [
            ("arn:aws:iam::111122223333:role/team-a", true),
            ("arn:aws-us-gov:iam::111122223333:role/path/to/team-a", true),
            ("arn:aws-cn:iam::111122223333:role/a+b=c,d.e@f_g-h", true),
            ("arn:aws:iam::111122223333:user/team-a", false),
            ("arn:aws:iam::11112222333:role/team-a", false),
            ("arn:aws:iam:us-east-1:111122223333:role/team-a", false),
            ("arn:aws:sts::111122223333:role/team-a", false),
            ("arn:aws:iam::111122223333:role/", false),
            ("team-a", false),
            ("", false),
        ] {
            assert_eq!(is_role_arn(arn), ok, "{arn}");
        }
    }

    /// The role comes from the spec first, else the annotation; neither, or an annotation that
    /// is not an ARN, is `InvalidIdentity` with a message naming the ServiceAccount.
    #[test]
    fn the_role_comes_from_the_spec_else_the_annotation() {
        let identity = |role: Option<&str>| TenantIdentity {
            service_account_name: "puller".into(),
            role_arn: role.map(str::to_owned),
        };
        let annotated = |v: &str| BTreeMap::from([(ROLE_ARN_ANNOTATION.to_owned(), v.to_owned())]);
        let spec_role = "arn:aws:iam::111122223333:role/from-spec";
        let sa_role = "arn:aws:iam::111122223333:role/from-sa";
        type Case<'a> = (
            Option<&'a str>,
            BTreeMap<String, String>,
            std::result::Result<&'a str, &'a str>,
        );
        let cases: Vec<Case> = vec![
            (Some(spec_role), annotated(sa_role), Ok(spec_role)),
            (None, annotated(sa_role), Ok(sa_role)),
            (Some(spec_role), BTreeMap::new(), Ok(spec_role)),
            (
                None,
                BTreeMap::new(),
                Err("has no eks.amazonaws.com/role-arn annotation"),
            ),
            (None, annotated("team-a-role"), Err("is not an IAM role ARN")),
        ];
        for (role, annotations, expected) in cases {
            let got = role_arn(&identity(role), "team-a", &annotations);
            match expected {
                Ok(arn) => assert_eq!(got.unwrap(), arn),
                Err(part) => {
                    let e = got.unwrap_err();
                    assert_eq!(e.reason(), "InvalidIdentity");
                    assert!(e.to_string().contains(part), "{e}");
                    assert!(
                        e.to_string()
                            .contains("ServiceAccount puller in namespace team-a")
                            || e.to_string()
                                .contains("of ServiceAccount puller in namespace team-a"),
                        "{e}"
                    );
                }
            }
        }
    }

    #[test]
    fn session_names_fit_sts_and_name_the_tenant() {
        assert_eq!(session_name("team-a", "puller"), "ecr-operator@team-a.puller");
        let long = session_name(&"n".repeat(63), &"s".repeat(63));
        assert_eq!(long.len(), 64);
        assert!(
            long.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        );
    }

    #[test]
    fn a_registry_that_requires_tenant_identity_refuses_none() {
        let registry = |require: bool| -> Registry {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "ecr-operator.dev/v1alpha1", "kind": "Registry",
                "metadata": {"name": "shared"},
                "spec": {"region": "us-east-1", "requireTenantIdentity": require}}))
            .unwrap()
        };
        assert!(check_required(&registry(false), false).is_ok());
        assert!(check_required(&registry(true), true).is_ok());
        let e = check_required(&registry(true), false).unwrap_err();
        assert_eq!(e.reason(), "TenantIdentityRequired");
        assert!(
            e.to_string()
                .starts_with("Registry shared requires tenant identity"),
            "{e}"
        );
        let e = identity_not_found("spec.identity", "a", "b");
        assert_eq!(e.reason(), "IdentityNotFound");
        assert!(
            e.to_string()
                .ends_with("(only a ServiceAccount of the object's own namespace can be named)")
        );
        let e = identity_not_found("spec.auth.webIdentity", "a", "b");
        assert_eq!(
            e.to_string(),
            "ServiceAccount b named by spec.auth.webIdentity does not exist in namespace a"
        );
    }
}
