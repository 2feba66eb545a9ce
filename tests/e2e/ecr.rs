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
