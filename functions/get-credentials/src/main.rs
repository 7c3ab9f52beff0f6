//! Lambda function `get-credentials`: `GET /api/virtual-machines/{id}/credentials`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run_with_logins::<{ vmapi_http::Endpoint::GetCredentials.index() }>().await
}
