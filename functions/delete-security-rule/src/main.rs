//! Lambda function `delete-security-rule`: `DELETE /api/security-rules/{id}`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::DeleteSecurityRule.index() }>().await
}
