//! Lambda function `list-vms`: `GET /api/teams/{team}/projects/{project}/virtual-machines`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::ListVms.index() }>().await
}
