//! Lambda function `admin-unblock-vm`: `PUT /admin/api/virtual-machines/{id}/unblock`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::AdminUnblockVm.index() }>().await
}
