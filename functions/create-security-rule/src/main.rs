//! Lambda function `create-security-rule`: `POST /api/security-rules`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::CreateSecurityRule.index() }>().await
}
