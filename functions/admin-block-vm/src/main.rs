//! Lambda function `admin-block-vm`: `PUT /admin/api/virtual-machines/{id}/block`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::AdminBlockVm.index() }>().await
}
