//! Lambda function `admin-delete-vm`: `DELETE /admin/api/virtual-machines/{id}`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::AdminDeleteVm.index() }>().await
}
