//! The AWS IAM login (`VAULT_AUTH=aws`): a signed `sts:GetCallerIdentity` goes to Vault's `aws`
//! login, the token it returns is used until 80 % of its lease, and a refused (revoked) token
//! leads to one new login. The tokens are OpenBao's own; the login endpoint is
//! `vmapi_tests::vault::aws_login` (OpenBao ships without the `aws` method).

use std::time::Duration;

use vmapi_core::SecretStore;
use vmapi_models::SecretPath;
use vmapi_secrets::{VaultAuth, VaultConfig, VaultStore};
use vmapi_tests::vault::aws_login::AwsLoginProxy;
use vmapi_tests::vault::OpenBao;

async fn iam_store(proxy: &AwsLoginProxy, vault: &OpenBao) -> VaultStore {
    VaultStore::new(
        VaultConfig {
            address: proxy.address.clone(),
            mount: vault.mount.clone(),
            namespace: None,
            auth: VaultAuth::AwsIam {
                role: Some("vm-api".into()),
                mount: "aws".into(),
                server_id: Some("vault.example.com".into()),
                sts_region: "us-east-1".into(),
            },
        },
        Some(vmapi_aws::sdk_config().await),
        vmapi_models::DeploymentId::local(),
    )
}

#[tokio::test]
async fn the_login_is_a_signed_sts_request_and_a_revoked_token_logs_in_again() {
    // It revokes tokens: on an OpenBao of its own.
    let vault = OpenBao::own().await;
    let proxy = AwsLoginProxy::start(&vault, "1h").await;
    let store = iam_store(&proxy, &vault).await;
    let path = SecretPath::from_text("team/user/root");
    assert!(store.read(&path).await.unwrap().is_none());
    let logins = proxy.logins();
    assert_eq!(logins.len(), 1);
    let login = &logins[0];
    assert_eq!(login["method"], "POST");
    assert_eq!(login["url"], "https://sts.amazonaws.com/");
    assert_eq!(login["body"], "Action=GetCallerIdentity&Version=2011-06-15");
    assert_eq!(login["role"], "vm-api");
    assert_eq!(
        login["headers"]["x-vault-aws-iam-server-id"][0],
        "vault.example.com"
    );
    let auth = login["headers"]["authorization"][0].as_str().unwrap();
    assert!(auth.contains("/us-east-1/sts/aws4_request"), "{auth}");
    assert!(
        auth.contains("SignedHeaders=") && auth.contains("x-vault-aws-iam-server-id"),
        "{auth}"
    );
    // The request as signed is one STS (moto's) answers with the caller's identity.
    let caller = login["caller_arn"].as_str().unwrap();
    assert!(caller.starts_with("arn:aws:"), "{caller}");

    // The session is reused; a revoked token (403 from OpenBao) leads to one new login and a
    // retried call.
    store.read(&path).await.unwrap();
    assert_eq!(proxy.logins().len(), 1);
    proxy.revoke_issued_tokens(&vault).await;
    assert!(store.read(&path).await.unwrap().is_none());
    assert_eq!(proxy.logins().len(), 2);
}

#[tokio::test]
async fn the_token_is_renewed_at_80_percent_of_its_lease() {
    let vault = OpenBao::shared().await;
    let proxy = AwsLoginProxy::start(&vault, "6s").await;
    let store = iam_store(&proxy, &vault).await;
    let path = SecretPath::from_text("team/user/root");
    store.read(&path).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    store.read(&path).await.unwrap();
    assert_eq!(
        proxy.logins().len(),
        1,
        "a third of the lease: the same token"
    );
    // Past 4.8 s (80 % of 6 s), before OpenBao expires the token at 6 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    store.read(&path).await.unwrap();
    assert_eq!(proxy.logins().len(), 2, "a new login before the lease ends");
}
