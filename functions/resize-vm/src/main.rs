//! Lambda function `resize-vm`: `PUT /api/virtual-machines/{id}/resize`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::ResizeVm.index() }>().await
}
