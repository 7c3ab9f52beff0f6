//! Lambda function `list-images`: `GET /api/providers/{id}/locations/{location}/images`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::ListImages.index() }>().await
}
