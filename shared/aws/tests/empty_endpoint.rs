//! `sdk_config()` with `AWS_ENDPOINT_URL_DYNAMODB` set but empty (as the template declares it for
//! `sam local`) behaves as if it were unset. One test (its own process), since it changes the
//! environment.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};

/// Notes the URI of a request and stops it before it is sent.
#[derive(Clone, Debug, Default)]
struct Uri(Arc<Mutex<Option<String>>>);

impl Intercept for Uri {
    fn name(&self) -> &'static str {
        "Uri"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        *self.0.lock().unwrap() = Some(context.request().uri().to_string());
        Err("stopped before sending".into())
    }
}

async fn dynamodb_target() -> Option<String> {
    let sdk = vmapi_aws::sdk_config().await;
    let uri = Uri::default();
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .interceptor(uri.clone())
        .build();
    let _ = aws_sdk_dynamodb::Client::from_conf(conf)
        .list_tables()
        .send()
        .await;
    let seen = uri.0.lock().unwrap().clone();
    seen
}

#[tokio::test]
async fn an_empty_endpoint_variable_is_unset() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "local");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "local");
    std::env::set_var("AWS_REGION", "eu-west-1");
    std::env::remove_var("AWS_ENDPOINT_URL");
    std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", "");
    assert_eq!(
        dynamodb_target().await.as_deref(),
        Some("https://dynamodb.eu-west-1.amazonaws.com/")
    );
    std::env::remove_var("AWS_ENDPOINT_URL_DYNAMODB");
    assert_eq!(
        dynamodb_target().await.as_deref(),
        Some("https://dynamodb.eu-west-1.amazonaws.com/")
    );
    std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000");
    assert_eq!(
        dynamodb_target().await.as_deref(),
        Some("http://127.0.0.1:8000/")
    );
}
