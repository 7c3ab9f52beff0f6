//! Unit tests of the Vault store: the IAM login request, error mapping and logging.

use super::*;
use aws_credential_types::Credentials;

#[test]
fn the_iam_login_request_is_a_signed_get_caller_identity() {
    let creds = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG",
        Some("tok".into()),
        None,
        "test",
    );
    let req = sign_sts_request(
        &Identity::from(creds),
        "eu-west-1",
        Some("vault.example.com"),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )
    .unwrap();
    let url = String::from_utf8(B64.decode(&req.url).unwrap()).unwrap();
    assert_eq!(url, "https://sts.eu-west-1.amazonaws.com/");
    let body = String::from_utf8(B64.decode(&req.body).unwrap()).unwrap();
    assert_eq!(body, "Action=GetCallerIdentity&Version=2011-06-15");
    let headers: BTreeMap<String, Vec<String>> =
        serde_json::from_slice(&B64.decode(&req.headers).unwrap()).unwrap();
    let auth = &headers["authorization"][0];
    assert!(
        auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-1/sts/aws4_request"
        ),
        "{auth}"
    );
    assert!(auth.contains("x-vault-aws-iam-server-id"), "{auth}");
    assert_eq!(headers["x-amz-security-token"], vec!["tok".to_string()]);
    assert_eq!(headers["x-amz-date"], vec!["20231114T221320Z".to_string()]);
    assert!(!req.headers.contains("wJalrXUtnFEMI"));
}

/// What the logs get: the error with its whole chain.
fn logged(e: &Error) -> String {
    vmapi_core::ErrorChain(e).to_string()
}

#[tokio::test]
async fn an_unreachable_vault_is_unavailable_and_logs_the_connection_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let store = VaultStore::new(
        VaultConfig {
            address: format!("http://{closed}"),
            mount: "kv".into(),
            namespace: None,
            auth: VaultAuth::Token(Sensitive::new("vault-token-value".into())),
        },
        None,
        DeploymentId::local(),
    );
    let e = store
        .read(&SecretPath::from_text("t/user/root"))
        .await
        .expect_err("nobody listens");
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "the secret store is unavailable or busy; retry shortly"
    );
    let text = logged(&e);
    assert!(text.contains("Vault read: "), "{text}");
    assert!(text.contains("Error sending HTTP request"), "{text}");
    // The cause under the HTTP client's own words.
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
    assert!(!text.contains("vault-token-value"), "{text}");
}

#[test]
fn vault_answers_log_their_status_and_errors() {
    let e = map_vault(
        "write",
        ClientError::APIError {
            code: 403,
            errors: vec!["1 error occurred:\n\t* permission denied\n\n".into()],
        },
    );
    assert!(
        matches!(
            e,
            Error::Unavailable {
                retry_after_secs: RETRY_CONFIGURATION,
                ..
            }
        ),
        "{e:?}"
    );
    let text = logged(&e);
    assert!(text.contains("Vault write: status 403"), "{text}");
    assert!(text.contains("permission denied"), "{text}");

    let mount_gone = ClientError::APIError {
        code: 404,
        errors: vec!["no handler for route \"kv/data/x\". route entry not found.".into()],
    };
    assert!(!is_absent(&mount_gone));
    let e = map_vault("read", mount_gone);
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    assert!(logged(&e).contains("mount is missing"), "{}", logged(&e));
    assert!(is_absent(&ClientError::APIError {
        code: 404,
        errors: vec![]
    }));

    let e = map_vault(
        "write",
        ClientError::APIError {
            code: 400,
            errors: vec!["bad".into()],
        },
    );
    assert!(matches!(e, Error::Internal { .. }), "{e:?}");
    assert!(logged(&e).contains("Vault write answered 400: bad"));

    let e = map_vault(
        "read",
        ClientError::APIError {
            code: 503,
            errors: vec!["Vault is sealed".into()],
        },
    );
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    let text = logged(&e);
    assert!(text.contains("status 503: Vault is sealed"), "{text}");
}

#[test]
fn a_stored_value_that_does_not_decode_is_logged_without_it() {
    let source = serde_json::from_value::<LoginSecret>(serde_json::json!({
        "username": "root", "authMethod": "s3cr3t-Passw0rd"
    }))
    .unwrap_err();
    // serde_json's own message quotes the value.
    assert!(source.to_string().contains("s3cr3t-Passw0rd"));
    let e = map_vault("read", ClientError::JsonParseError { source });
    let text = logged(&e);
    assert!(
        text.contains("Vault read: the stored value is not the expected shape"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t-Passw0rd"), "{text}");
}
