//! ECR Public: the local endpoint's extension (tests/moto/ecr_public.py) through its own Python
//! tests and through the real aws-sdk-ecrpublic client.

use ecr_operator_testenv::{Moto, moto_python, repo_root};

#[test]
fn ecr_public_extension_refuses_what_ecr_public_refuses() {
    let python = moto_python().unwrap();
    let out = std::process::Command::new(python)
        .args(["-m", "unittest", "tests/moto/test_ecr_public.py"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Ran 3 tests"), "{stderr}");
}

#[tokio::test]
async fn ecr_public_answers_through_aws_sdk_ecrpublic() {
    let moto = Moto::start().unwrap();
    let public = moto.ecr_public_client();
    let created = public
        .create_repository()
        .repository_name("e2e/public-app")
        .send()
        .await
        .unwrap();
    let repo = created.repository().unwrap();
    let registries = public.describe_registries().send().await.unwrap();
    let alias = registries.registries()[0].aliases()[0].name();
    assert_eq!(
        repo.repository_uri(),
        Some(format!("public.ecr.aws/{alias}/e2e/public-app").as_str())
    );
    public
        .put_image()
        .repository_name("e2e/public-app")
        .image_manifest("{\"schemaVersion\":2}")
        .send()
        .await
        .unwrap();
    let refused = public
        .delete_repository()
        .repository_name("e2e/public-app")
        .send()
        .await
        .unwrap_err();
    assert!(
        refused
            .as_service_error()
            .is_some_and(|e| e.is_repository_not_empty_exception()),
        "{refused:?}"
    );
    let token = public.get_authorization_token().send().await.unwrap();
    assert!(
        token
            .authorization_data()
            .and_then(|d| d.authorization_token())
            .is_some()
    );
}
