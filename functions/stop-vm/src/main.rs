//! Lambda function `stop-vm`: `PUT /api/virtual-machines/{id}/stop`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::StopVm.index() }>().await
}
