//! Lambda function `cleanup`: finds stale VMs on a schedule and repairs or removes them.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    vmapi_provision::cleanup::run_lambda().await
}
