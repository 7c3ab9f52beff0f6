//! Lambda function `get-team-costs`: `GET /api/teams/{team}/costs`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    vmapi_http::lambda::run::<{ vmapi_http::Endpoint::GetTeamCosts.index() }>().await
}
