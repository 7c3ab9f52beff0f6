//! Lambda function `list-locations`: `GET /api/providers/{id}/locations`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::ListLocations.index() }>().await
}
