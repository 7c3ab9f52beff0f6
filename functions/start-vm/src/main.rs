//! Lambda function `start-vm`: `PUT /api/virtual-machines/{id}/start`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::StartVm.index() }>().await
}
