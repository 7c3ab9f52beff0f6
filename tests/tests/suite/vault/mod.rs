//! Vault, met as a real server: OpenBao (`vmapi_tests::vault`). The platform's layout, the
//! failures an operator can cause (sealed, revoked token, deleted mount), the shipped
//! per-function policies, the AWS IAM login and the Lambda extension's proxy.

mod aws_login;
mod extension;
mod failures;
mod layout;
mod policies;

use vmapi_models::CredentialScope;
use vmapi_tests::vault::OpenBao;
use vmapi_tests::{Options, TestApp};

/// A test app keeping VM logins in `vault`'s mount, with the root token.
pub(crate) async fn app(vault: &OpenBao, scope: CredentialScope) -> TestApp {
    TestApp::spawn_opts(Options {
        scope,
        logins: vault.logins(),
        ..Options::default()
    })
    .await
}
