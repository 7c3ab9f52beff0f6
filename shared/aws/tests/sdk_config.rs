//! `sdk_config()` takes Lambda's credentials and region from the environment without building
//! the SDK's default chains, and falls back to them otherwise. One test (its own process), since
//! it changes the environment.

use aws_credential_types::provider::ProvideCredentials;

#[tokio::test]
async fn credentials_and_region_come_straight_from_the_environment_when_set() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDLAMBDAENV");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "lambda-secret");
    std::env::set_var("AWS_SESSION_TOKEN", "lambda-session");
    std::env::set_var("AWS_REGION", "eu-central-1");
    let config = vmapi_aws::sdk_config().await;
    assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-central-1"));
    let provider = config
        .credentials_provider()
        .expect("a credentials provider");
    assert!(
        format!("{provider:?}").contains("EnvironmentVariableCredentialsProvider"),
        "the environment provider, not the default chain: {provider:?}"
    );
    let creds = provider.provide_credentials().await.expect("credentials");
    assert_eq!(creds.access_key_id(), "AKIDLAMBDAENV");
    assert_eq!(creds.session_token(), Some("lambda-session"));

    // Without them (a developer's profile, ECS, EC2): the SDK's default chain.
    std::env::remove_var("AWS_SECRET_ACCESS_KEY");
    let config = vmapi_aws::sdk_config().await;
    let provider = config
        .credentials_provider()
        .expect("a credentials provider");
    assert!(
        format!("{provider:?}").contains("DefaultCredentialsChain"),
        "the default chain: {provider:?}"
    );
    assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-central-1"));
}
