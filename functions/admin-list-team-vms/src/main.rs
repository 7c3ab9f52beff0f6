//! Lambda function `admin-list-team-vms`: `GET /admin/api/teams/{team}/virtual-machines`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::AdminListTeamVms.index() }>().await
}
