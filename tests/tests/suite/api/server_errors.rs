//! The database failing: 500 with a request id and no internals, 503 with `Retry-After`.

use vmapi_tests::*;

#[tokio::test]
async fn server_errors_carry_a_request_id_and_hide_internals() {
    // A table that does not exist: every database call fails.
    let repo = std::sync::Arc::new(vmapi_store_dynamodb::DynamoRepository::new(
        local_client().await,
        "no-such-table",
        Default::default(),
    ));
    let (status, headers, body) = direct_get(
        repo,
        "/api/virtual-machines/654a11e60b23ef1b0f36d44e",
        OWNER,
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(body["code"], "INTERNAL_ERROR");
    assert_eq!(body["requestId"], headers["x-request-id"].to_str().unwrap());
    let text = body.to_string();
    assert!(
        !text.contains("ResourceNotFound") && !text.contains("no-such-table"),
        "{text}"
    );
}

#[tokio::test]
async fn unreachable_database_is_a_503_with_retry_after() {
    // A DynamoDB endpoint where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let conf = local_client()
        .await
        .config()
        .to_builder()
        .endpoint_url(endpoint)
        .build();
    let repo = std::sync::Arc::new(vmapi_store_dynamodb::DynamoRepository::new(
        aws_sdk_dynamodb::Client::from_conf(conf),
        "vm-api",
        Default::default(),
    ));
    let (status, headers, body) = direct_get(
        repo,
        &format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"),
        OWNER,
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    assert!(
        body["message"].as_str().unwrap().contains("retry"),
        "{body}"
    );
    assert!(body["requestId"].is_string());
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no internals: {body}"
    );
}
