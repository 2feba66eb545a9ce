//! The local ECR endpoint (moto's server) through the real aws-sdk-ecr client.

use base64::Engine;
use ecr_operator_testenv::Moto;

#[tokio::test]
async fn repository_lifecycle_and_authorization_token_through_aws_sdk_ecr() {
    let moto = Moto::start().unwrap();
    let ecr = moto.ecr_client("us-east-1");

    let created = ecr
        .create_repository()
        .repository_name("e2e/app")
        .send()
        .await
        .unwrap();
    let repo = created.repository().unwrap();
    assert_eq!(repo.repository_name(), Some("e2e/app"));
    assert_eq!(repo.registry_id(), Some("123456789012"));
    assert_eq!(
        repo.repository_uri(),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/e2e/app")
    );

    let described = ecr
        .describe_repositories()
        .repository_names("e2e/app")
        .send()
        .await
        .unwrap();
    assert_eq!(described.repositories().len(), 1);
    // Regions are separate backends.
    let other = moto
        .ecr_client("eu-west-1")
        .describe_repositories()
        .send()
        .await
        .unwrap();
    assert!(other.repositories().is_empty());

    ecr.delete_repository()
        .repository_name("e2e/app")
        .send()
        .await
        .unwrap();
    let gone = ecr
        .describe_repositories()
        .repository_names("e2e/app")
        .send()
        .await
        .unwrap_err();
    assert!(gone.into_service_error().is_repository_not_found_exception());

    let token = ecr.get_authorization_token().send().await.unwrap();
    let data = &token.authorization_data()[0];
    assert_eq!(
        data.proxy_endpoint(),
        Some("https://123456789012.dkr.ecr.us-east-1.amazonaws.com")
    );
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.authorization_token().unwrap())
        .unwrap();
    let decoded = String::from_utf8(decoded).unwrap();
    assert!(
        decoded.starts_with("AWS:") && decoded.len() > 4,
        "token is base64(AWS:<password>)"
    );

    // reset() wipes state between tests that share a server.
    ecr.create_repository()
        .repository_name("e2e/left-over")
        .send()
        .await
        .unwrap();
    moto.reset().unwrap();
    assert!(
        ecr.describe_repositories()
            .send()
            .await
            .unwrap()
            .repositories()
            .is_empty()
    );
}

/// The pull-through cache extension of the local endpoint (tests/moto/ecr_pull_through_cache.py)
/// through the real aws-sdk-ecr client: the five operations answer in ECR's shapes, and what ECR
/// refuses is refused with ECR's error code.
#[tokio::test]
async fn pull_through_cache_rules_answer_and_refuse_like_ecr() {
    let moto = Moto::start().unwrap();
    let ecr = moto.ecr_client("us-east-1");
    let secrets = moto.secrets_client("us-east-1");
    let arn = secrets
        .create_secret()
        .name("ecr-pullthroughcache/hub")
        .secret_string(r#"{"username":"u","accessToken":"t"}"#)
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();

    // Accepted: ECR Public without credentials, Docker Hub with a secret under the prefix.
    let public = ecr
        .create_pull_through_cache_rule()
        .ecr_repository_prefix("ecr-public")
        .upstream_registry_url("public.ecr.aws")
        .send()
        .await
        .unwrap();
    assert_eq!(public.upstream_registry().map(|u| u.as_str()), Some("ecr-public"));
    assert_eq!(public.registry_id(), Some("123456789012"));
    assert!(public.created_at().is_some());
    ecr.create_pull_through_cache_rule()
        .ecr_repository_prefix("hub")
        .upstream_registry_url("registry-1.docker.io")
        .upstream_registry(aws_sdk_ecr::types::UpstreamRegistry::DockerHub)
        .credential_arn(&arn)
        .send()
        .await
        .unwrap();

    // Refused, each with ECR's code.
    let refused = async |prefix: &str, url: &str, kind: Option<&str>, credential: Option<&str>| {
        let err = ecr
            .create_pull_through_cache_rule()
            .ecr_repository_prefix(prefix)
            .upstream_registry_url(url)
            .set_upstream_registry(kind.map(aws_sdk_ecr::types::UpstreamRegistry::from))
            .set_credential_arn(credential.map(str::to_owned))
            .send()
            .await
            .unwrap_err();
        aws_sdk_ecr::error::ProvideErrorMetadata::code(&err)
            .unwrap_or_default()
            .to_owned()
    };
    let other_prefix = arn.replace("ecr-pullthroughcache/", "other/");
    let missing = arn.replace("/hub", "/missing");
    let cases = [
        (
            "hub",
            "public.ecr.aws",
            None,
            None,
            "PullThroughCacheRuleAlreadyExistsException",
        ),
        (
            "gh",
            "ghcr.io",
            Some("docker-hub"),
            Some(arn.as_str()),
            "InvalidParameterException",
        ),
        (
            "hub2",
            "registry-1.docker.io",
            None,
            None,
            "InvalidParameterException",
        ),
        (
            "web",
            "example.com",
            None,
            None,
            "UnsupportedUpstreamRegistryException",
        ),
        ("aws", "public.ecr.aws", None, None, "ValidationException"),
        ("bad-", "public.ecr.aws", None, None, "InvalidParameterException"),
        (
            "hub3",
            "registry-1.docker.io",
            None,
            Some(other_prefix.as_str()),
            "InvalidParameterException",
        ),
        (
            "hub4",
            "registry-1.docker.io",
            None,
            Some(missing.as_str()),
            "SecretNotFoundException",
        ),
    ];
    for (prefix, url, kind, credential, code) in cases {
        assert_eq!(
            refused(prefix, url, kind, credential).await,
            code,
            "{prefix} {url}"
        );
    }

    let listed = ecr.describe_pull_through_cache_rules().send().await.unwrap();
    let prefixes: Vec<_> = listed
        .pull_through_cache_rules()
        .iter()
        .filter_map(|r| r.ecr_repository_prefix())
        .collect();
    assert_eq!(prefixes, ["ecr-public", "hub"]);

    // Validation reads the secret: valid, then invalid once it lacks accessToken.
    let valid = ecr
        .validate_pull_through_cache_rule()
        .ecr_repository_prefix("hub")
        .send()
        .await
        .unwrap();
    assert!(valid.is_valid(), "{valid:?}");
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(r#"{"username":"u"}"#)
        .send()
        .await
        .unwrap();
    let invalid = ecr
        .validate_pull_through_cache_rule()
        .ecr_repository_prefix("hub")
        .send()
        .await
        .unwrap();
    assert!(!invalid.is_valid());
    assert!(
        invalid.failure().unwrap_or_default().contains("accessToken"),
        "{invalid:?}"
    );

    let updated = ecr
        .update_pull_through_cache_rule()
        .ecr_repository_prefix("hub")
        .credential_arn(&arn)
        .send()
        .await
        .unwrap();
    assert!(updated.updated_at().is_some());
    ecr.delete_pull_through_cache_rule()
        .ecr_repository_prefix("hub")
        .send()
        .await
        .unwrap();
    let gone = ecr
        .describe_pull_through_cache_rules()
        .ecr_repository_prefixes("hub")
        .send()
        .await
        .unwrap_err();
    assert!(
        gone.into_service_error()
            .is_pull_through_cache_rule_not_found_exception()
    );
    let gone = ecr
        .delete_pull_through_cache_rule()
        .ecr_repository_prefix("hub")
        .send()
        .await
        .unwrap_err();
    assert!(
        gone.into_service_error()
            .is_pull_through_cache_rule_not_found_exception()
    );
}

/// The creation-template and registry-settings extensions of the local endpoint
/// (tests/moto/ecr_creation_templates.py, ecr_registry_settings.py) through aws-sdk-ecr: what ECR
/// refuses is refused with ECR's error code.
#[tokio::test]
async fn creation_templates_and_registry_settings_refuse_like_ecr() {
    use aws_sdk_ecr::error::ProvideErrorMetadata;
    use aws_sdk_ecr::types::RctAppliedFor;
    let moto = Moto::start().unwrap();
    let ecr = moto.ecr_client("us-east-1");
    let code = |e: &dyn ProvideErrorMetadata| e.code().unwrap_or_default().to_owned();

    ecr.create_repository_creation_template()
        .prefix("team-a")
        .applied_for(RctAppliedFor::CreateOnPush)
        .send()
        .await
        .unwrap();
    let cases = [
        (
            "team-a",
            Some(RctAppliedFor::Replication),
            None,
            "TemplateAlreadyExistsException",
        ),
        (
            "Team A",
            Some(RctAppliedFor::Replication),
            None,
            "InvalidParameterException",
        ),
        ("team-b", None, None, "InvalidParameterException"),
        (
            "team-c",
            Some(RctAppliedFor::Replication),
            Some("{\"rules\": []}"),
            "InvalidParameterException",
        ),
    ];
    for (prefix, applied, lifecycle, expected) in cases {
        let err = ecr
            .create_repository_creation_template()
            .prefix(prefix)
            .set_applied_for(applied.map(|a| vec![a]))
            .set_lifecycle_policy(lifecycle.map(str::to_owned))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), expected, "{prefix}");
    }
    let missing = ecr
        .describe_repository_creation_templates()
        .prefixes("nowhere")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&missing), "TemplateNotFoundException");

    let bad_value = ecr
        .put_account_setting()
        .name("BLOB_MOUNTING")
        .value("SOMETIMES")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad_value), "ValidationException");
    let not_a_principal = ecr
        .register_pull_time_update_exclusion()
        .principal_arn("arn:aws:iam::123456789012:group/scanners")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&not_a_principal), "InvalidParameterException");
    let unknown = ecr
        .deregister_pull_time_update_exclusion()
        .principal_arn("arn:aws:iam::123456789012:role/none")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&unknown), "ExclusionNotFoundException");
    let none = ecr.get_signing_configuration().send().await.unwrap_err();
    assert_eq!(code(&none), "SigningConfigurationNotFoundException");
    let defaults = ecr
        .get_account_setting()
        .name("REGISTRY_POLICY_SCOPE")
        .send()
        .await
        .unwrap();
    assert_eq!(defaults.value(), Some("V2"));
}

/// The DescribeImages extension of the local endpoint (tests/moto/ecr_images.py) through
/// aws-sdk-ecr: pages of maxResults with a nextToken, a token it did not issue refused with
/// InvalidParameterException, sizes as the sum of the manifest's layers, and the scan status and
/// finding counts of an image moto has scanned (its canned result: one HIGH finding); an image
/// never scanned has neither.
#[tokio::test]
async fn describe_images_pages_sizes_and_summarises_scans_like_ecr() {
    use aws_sdk_ecr::error::ProvideErrorMetadata;
    let moto = Moto::start().unwrap();
    let ecr = moto.ecr_client("us-east-1");
    ecr.create_repository()
        .repository_name("pages")
        .send()
        .await
        .unwrap();
    for (i, size) in [100u64, 200, 300].into_iter().enumerate() {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7,
                       "digest": format!("sha256:{:0>64}", i + 100)},
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": size, "digest": format!("sha256:{:0>64}", i)},
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": format!("sha256:{:0>64}", i + 10)}
            ]
        });
        ecr.put_image()
            .repository_name("pages")
            .image_manifest(manifest.to_string())
            .image_tag(format!("v{i}"))
            .send()
            .await
            .unwrap();
    }
    let first = ecr
        .describe_images()
        .repository_name("pages")
        .max_results(2)
        .send()
        .await
        .unwrap();
    let sizes = |out: &aws_sdk_ecr::operation::describe_images::DescribeImagesOutput| -> Vec<i64> {
        out.image_details()
            .iter()
            .filter_map(|d| d.image_size_in_bytes())
            .collect()
    };
    assert_eq!(sizes(&first), [101, 201]);
    let token = first.next_token().unwrap().to_owned();
    let second = ecr
        .describe_images()
        .repository_name("pages")
        .max_results(2)
        .next_token(token)
        .send()
        .await
        .unwrap();
    assert_eq!(sizes(&second), [301]);
    assert!(second.next_token().is_none());
    let bad = ecr
        .describe_images()
        .repository_name("pages")
        .next_token("not-a-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        bad.into_service_error().code().unwrap_or_default(),
        "InvalidParameterException"
    );

    ecr.start_image_scan()
        .repository_name("pages")
        .image_id(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v0")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let all = ecr
        .describe_images()
        .repository_name("pages")
        .send()
        .await
        .unwrap();
    let by_tag = |tag: &str| {
        all.image_details()
            .iter()
            .find(|d| d.image_tags().iter().any(|t| t == tag))
            .unwrap()
            .clone()
    };
    let scanned = by_tag("v0");
    assert_eq!(
        scanned
            .image_scan_status()
            .and_then(|s| s.status())
            .map(|s| s.as_str()),
        Some("COMPLETE")
    );
    let counts = scanned
        .image_scan_findings_summary()
        .and_then(|s| s.finding_severity_counts())
        .cloned()
        .unwrap_or_default();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts.get(&aws_sdk_ecr::types::FindingSeverity::High), Some(&1));
    let never = by_tag("v1");
    assert!(never.image_scan_status().is_none() && never.image_scan_findings_summary().is_none());
}
