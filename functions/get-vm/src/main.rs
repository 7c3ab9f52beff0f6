//! Lambda function `get-vm`: `GET /api/virtual-machines/{id}`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::GetVm.index() }>().await
}
