//! Lambda function `list-prices`: `GET /api/providers/{id}/locations/{location}/images/{imageName}/prices`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::ListPrices.index() }>().await
}
