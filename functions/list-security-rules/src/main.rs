//! Lambda function `list-security-rules`: `GET /api/virtual-machines/{id}/security-rules`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::ListSecurityRules.index() }>().await
}
