//! Lambda function `get-activity`: `GET /api/virtual-machines/{id}/activity`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::GetActivity.index() }>().await
}
