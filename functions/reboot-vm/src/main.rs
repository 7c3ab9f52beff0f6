//! Lambda function `reboot-vm`: `PUT /api/virtual-machines/{id}/reboot`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::RebootVm.index() }>().await
}
