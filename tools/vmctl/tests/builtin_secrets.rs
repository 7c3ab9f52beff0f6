//! `vmctl serve` and `vmctl dev` refuse the built-in token and cursor secrets unless they listen
//! on loopback in front of DynamoDB Local: the real binary, started as an operator would.

use std::process::Command;

/// Runs vmctl with the built-in secrets (neither variable set) and returns (success, stderr).
fn run(args: &[&str], dynamodb: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmctl"));
    cmd.args(args)
        .env_remove("LOCAL_JWT_SECRET")
        .env_remove("CURSOR_SECRET")
        .env_remove("JWKS_URL")
        .env_remove("AWS_LAMBDA_FUNCTION_NAME")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        // Nothing listens here: a refusal must come before any connection.
        .env("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9");
    match dynamodb {
        Some(url) => cmd.env("AWS_ENDPOINT_URL_DYNAMODB", url),
        None => cmd.env_remove("AWS_ENDPOINT_URL_DYNAMODB"),
    };
    let out = cmd.output().expect("vmctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn serve_and_dev_refuse_the_builtin_secrets_off_loopback() {
    for command in ["serve", "dev"] {
        let (ok, err) = run(
            &[command, "--host", "0.0.0.0", "--port", "0"],
            Some("http://127.0.0.1:9"),
        );
        assert!(!ok, "{command} on 0.0.0.0 started");
        assert!(
            err.contains("LOCAL_JWT_SECRET") && err.contains("CURSOR_SECRET"),
            "{command}: {err}"
        );
    }
}

#[test]
fn serve_and_dev_refuse_the_builtin_secrets_in_front_of_a_real_table() {
    for command in ["serve", "dev"] {
        for endpoint in [
            None,
            Some(""),
            Some("https://dynamodb.eu-west-1.amazonaws.com"),
        ] {
            let (ok, err) = run(&[command, "--host", "127.0.0.1", "--port", "0"], endpoint);
            assert!(!ok, "{command} with endpoint {endpoint:?} started");
            assert!(
                err.contains("LOCAL_JWT_SECRET"),
                "{command} {endpoint:?}: {err}"
            );
        }
    }
}
