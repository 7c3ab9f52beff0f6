//! Lambda function `provisioner`: carries out pending cloud operations from the table's stream.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    vmapi_provision::lambda::run().await
}
