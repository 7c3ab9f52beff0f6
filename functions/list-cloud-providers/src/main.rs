//! Lambda function `list-cloud-providers`: `GET /api/cloud-providers`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::ListCloudProviders.index() }>().await
}
