//! Log set-up: JSON in Lambda when `AWS_LAMBDA_LOG_FORMAT=JSON`, readable text locally (stderr).

/// Lambda: honours `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`.
pub fn init_lambda() {
    lambda_http::tracing::init_default_subscriber();
}

/// Local runs: human-readable lines on stderr (colours only on a terminal), `RUST_LOG` filter
/// (default `info`; vaultrs's own error lines are off, since they carry only "An error occurred
/// with the request" and the service logs the same failure with its cause).
pub fn init_local() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,aws_config=warn,aws_smithy_runtime=warn,vaultrs=off",
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
