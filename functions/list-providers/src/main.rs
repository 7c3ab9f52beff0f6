//! Lambda function `list-providers`: `GET /api/cloud-providers/{id}/providers`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::ListProviders.index() }>().await
}
