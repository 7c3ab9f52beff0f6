//! What an operator's Vault can do to a request, each on an OpenBao of the test's own: sealed,
//! the token revoked, the mount deleted. Each answers 503 with `Retry-After`, writes no VM
//! record, and logs the cause (docs/credentials.md, "When Vault fails").

use reqwest::Method;
use vmapi_models::CredentialScope;
use vmapi_tests::vault::OpenBao;
use vmapi_tests::*;

use crate::credentials::{create_one, create_unavailable, creds_path};

/// A test app over `logins` without the login cache, so every read meets Vault.
async fn uncached(logins: Logins) -> TestApp {
    TestApp::spawn_opts(Options {
        scope: CredentialScope::Vm,
        logins,
        login_cache: std::time::Duration::ZERO,
        ..Options::default()
    })
    .await
}

/// A create and a credentials read of an existing VM both answer 503 with `retry_after`, and
/// the create leaves the table as it was; the log names `cause`.
async fn refused(app: &TestApp, existing: &str, retry_after: &str, cause: &str) {
    let before = app.dump().await;
    let r = create_unavailable(app).await;
    assert_eq!(r.headers["retry-after"], retry_after);
    assert_eq!(app.dump().await, before, "no VM record without its login");
    let r = app
        .get(&creds_path(existing), OWNER)
        .await
        .expect_error(503, "SERVICE_UNAVAILABLE");
    assert_eq!(r.headers["retry-after"], retry_after);
    let logs = captured_logs();
    assert!(logs.contains(cause), "the log names the cause: {cause}");
}

#[tokio::test]
async fn a_sealed_vault_is_503_until_unsealed() {
    let vault = OpenBao::own().await;
    let app = uncached(vault.logins()).await;
    let vm = create_one(&app, "before-seal", 0).await;
    vault.seal().await;
    refused(&app, &vm, "2", "Vault is sealed").await;
    vault.unseal().await;
    app.get(&creds_path(&vm), OWNER).await.expect(200);
}

#[tokio::test]
async fn a_revoked_token_is_503_not_an_internal_error() {
    let vault = OpenBao::own().await;
    let token = vault
        .token_with_policy(
            "all-of-the-mount",
            r#"path "enclaive-static/*" { capabilities = ["create", "read", "update", "delete", "list"] }"#,
            None,
        )
        .await;
    let app = uncached(Logins::Vault {
        address: vault.address.clone(),
        token: token.clone(),
        mount: vault.mount.clone(),
    })
    .await;
    let vm = create_one(&app, "before-revoke", 1).await;
    vault.revoke(&token).await;
    refused(&app, &vm, "30", "the token is revoked or expired").await;
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some(OWNER),
            Some(&spec_create_request()),
        )
        .await;
    assert!(
        !r.json.to_string().contains(&token),
        "the token never reaches an answer"
    );
}

#[tokio::test]
async fn a_deleted_mount_is_503_never_an_absent_login() {
    let vault = OpenBao::own().await;
    let app = uncached(vault.logins()).await;
    let vm = create_one(&app, "before-unmount", 0).await;
    vault.disable_mount().await;
    // Not "this VM has no credentials" (404): the store itself is misconfigured.
    refused(&app, &vm, "30", "the KV v2 mount is missing").await;
}
