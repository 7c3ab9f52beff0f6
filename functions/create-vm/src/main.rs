//! Lambda function `create-vm`: `POST /api/virtual-machines`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run_with_logins::<{ vmapi_http::Endpoint::CreateVm.index() }>().await
}
