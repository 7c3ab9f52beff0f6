//! What the AWS adapters share: one SDK configuration (with timeouts short enough to answer
//! 503 rather than hang) and one mapping of SDK errors to the core error.

pub mod emf;
pub mod settings;

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use vmapi_config::Env;
use vmapi_core::{Error, ErrorChain};

pub mod endpoints;
pub mod runtime;

/// The SDK configuration from the environment (`AWS_ENDPOINT_URL_<SERVICE>` points a service
/// at DynamoDB Local or moto; an empty one counts as unset, [`endpoints`]). Loads nothing over
/// the network: clients connect on first use.
///
/// TLS trusts only the Amazon Trust Services roots that AWS endpoints chain to (Amazon Root CA
/// 1–4 and Starfield Services Root CA G2, `shared/aws/certs/`): parsing five certificates instead
/// of the system's whole trust store makes the cold start measurably shorter
/// (docs/performance.md). `AWS_TRUST_STORE=native` trusts the system's roots instead (an HTTPS
/// endpoint with another CA behind `AWS_ENDPOINT_URL_*`).
///
/// Where the environment already holds the credentials and the region (as in Lambda, which sets
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` and `AWS_REGION`), they are
/// taken from it directly. The SDK's default chains would pick the same values first, but
/// building them also builds an STS client, an IMDS client and their endpoint resolvers at every
/// cold start (docs/performance.md). Without them, the default chains apply.
pub async fn sdk_config() -> SdkConfig {
    use settings::*;
    let env = Env::process();
    let native = env
        .get(&AWS_TRUST_STORE)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("native"));
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if env.get(&AWS_ACCESS_KEY_ID).is_some() && env.get(&AWS_SECRET_ACCESS_KEY).is_some() {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    if let Some(region) = env.get(&AWS_REGION) {
        loader = loader.region(aws_config::Region::new(region));
    }
    let secs = |var| Duration::from_secs(env.lenient(var, |s: &u64| *s > 0));
    let sdk = loader
        .http_client(https_client(native))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(secs(&SDK_ATTEMPT_TIMEOUT_SECONDS))
                .operation_timeout(secs(&SDK_OPERATION_TIMEOUT_SECONDS))
                .build(),
        )
        .load()
        .await;
    // The template declares the endpoint variables empty (for `sam local`): blank is unset.
    endpoints::blank_is_unset(sdk)
}

/// The Amazon Trust Services root certificates (PEM).
pub const AMAZON_ROOTS: &str = include_str!("../certs/amazon-trust-services.pem");

/// The SDK's HTTPS client (rustls with aws-lc) trusting the Amazon roots, or the system's.
fn https_client(native_roots: bool) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    let trust = if native_roots {
        tls::TrustStore::default()
    } else {
        tls::TrustStore::empty().with_pem_certificate(AMAZON_ROOTS.as_bytes())
    };
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("the bundled Amazon root certificates are valid PEM");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

/// Which dependency failed, for the client-facing message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dependency {
    /// DynamoDB.
    Database,
    /// Secrets Manager.
    SecretStore,
}

impl Dependency {
    fn service(self) -> &'static str {
        match self {
            Dependency::Database => "DynamoDB",
            Dependency::SecretStore => "Secrets Manager",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Dependency::Database => "database",
            Dependency::SecretStore => "secret store",
        }
    }
}

const THROTTLING: [&str; 5] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "InternalServiceError",
];

/// Maps an SDK error of operation `op`: unreachable, timed out or throttled is 503 with
/// `Retry-After`; anything else is internal. The cause goes to the logs only, with its whole
/// `source()` chain (logged through [`ErrorChain`]): for a service error the code and the
/// message (an unmodelled error's own text names only the code; its source, the error metadata,
/// carries the message and the request id), for a dispatch, timeout or response error the
/// underlying I/O, TLS or parse error. The chain, not `DisplayErrorContext`: that one appends the
/// error's `Debug` view, which holds the raw HTTP response, whose body can be a secret value
/// (a `GetSecretValue` answer that failed to parse).
pub fn map_sdk<E, R>(dep: Dependency, op: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            unavailable(dep, op, err)
        }
        SdkError::ServiceError(se) if se.err().code().is_some_and(|c| THROTTLING.contains(&c)) => {
            unavailable(dep, op, err)
        }
        _ => Error::internal(format!("{} {op}", dep.service()), err),
    }
}

/// A 503 naming the dependency, with the cause for the logs.
pub fn unavailable(
    dep: Dependency,
    op: &str,
    err: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Error {
    Error::Unavailable {
        message: format!("the {} is unavailable or busy; retry shortly", dep.noun()),
        retry_after_secs: 2,
        source: Some(format!("{} {op}: {}", dep.service(), ErrorChain(&*err.into())).into()),
    }
}

#[cfg(test)]
mod trust_tests {
    use super::*;

    #[test]
    fn the_bundled_amazon_roots_are_the_five_aws_documents() {
        assert_eq!(
            AMAZON_ROOTS.matches("-----BEGIN CERTIFICATE-----").count(),
            5
        );
        for name in [
            "Amazon_Root_CA_1",
            "Amazon_Root_CA_2",
            "Amazon_Root_CA_3",
            "Amazon_Root_CA_4",
            "Starfield_Services_Root_Certificate_Authority_-_G2",
        ] {
            assert!(AMAZON_ROOTS.contains(name), "{name}");
        }
        // Both trust stores make a client.
        let _ = https_client(false);
        let _ = https_client(true);
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn raw(status: u16) -> HttpResponse {
        HttpResponse::new(status.try_into().unwrap(), SdkBody::from("{}"))
    }

    /// What the logs get: the error with its whole chain, as the HTTP layer and the provisioner
    /// log it.
    fn logged(e: &Error) -> String {
        ErrorChain(e).to_string()
    }

    fn refused() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "tcp connect error: Connection refused (os error 111)",
        )
    }

    #[test]
    fn a_service_error_logs_its_code_and_message() {
        let meta = ErrorMetadata::builder()
            .code("ValidationException")
            .message("One or more parameter values were invalid: Missing the key pk")
            .build();
        let err = SdkError::service_error(PutItemError::generic(meta), raw(400));
        // The SDK error's own text says only "service error".
        assert_eq!(err.to_string(), "service error");
        let e = map_sdk(Dependency::Database, "PutItem", err);
        assert!(matches!(e, Error::Internal { .. }), "{e:?}");
        let text = logged(&e);
        assert!(text.contains("DynamoDB PutItem"), "{text}");
        assert!(text.contains("ValidationException"), "{text}");
        assert!(
            text.contains("One or more parameter values were invalid: Missing the key pk"),
            "{text}"
        );
    }

    #[test]
    fn a_throttled_service_error_is_unavailable_and_logs_code_and_message() {
        let meta = ErrorMetadata::builder()
            .code("ThrottlingException")
            .message("Rate of requests exceeds the allowed throughput")
            .build();
        let err = SdkError::service_error(PutItemError::generic(meta), raw(400));
        let e = map_sdk(Dependency::Database, "PutItem", err);
        // Clients see only the generic message.
        assert_eq!(
            e.to_string(),
            "the database is unavailable or busy; retry shortly"
        );
        let text = logged(&e);
        assert!(text.contains("ThrottlingException"), "{text}");
        assert!(
            text.contains("Rate of requests exceeds the allowed throughput"),
            "{text}"
        );
    }

    #[test]
    fn a_dispatch_failure_logs_the_connection_error() {
        let err: SdkError<PutItemError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(refused().into()));
        assert_eq!(err.to_string(), "dispatch failure");
        let e = map_sdk(Dependency::SecretStore, "GetSecretValue", err);
        assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "the secret store is unavailable or busy; retry shortly"
        );
        let text = logged(&e);
        assert!(text.contains("Secrets Manager GetSecretValue"), "{text}");
        assert!(text.contains("io error"), "{text}");
        assert!(text.contains("Connection refused (os error 111)"), "{text}");
    }

    #[test]
    fn a_response_error_logs_why_the_answer_was_unreadable() {
        let err: SdkError<PutItemError, HttpResponse> = SdkError::response_error(
            "failed to parse the response: expected object, found end of input",
            raw(200),
        );
        assert_eq!(err.to_string(), "response error");
        let e = map_sdk(Dependency::Database, "GetItem", err);
        assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
        let text = logged(&e);
        assert!(
            text.contains("failed to parse the response: expected object, found end of input"),
            "{text}"
        );
    }

    #[test]
    fn a_timeout_and_a_construction_failure_log_their_cause() {
        let err: SdkError<PutItemError, HttpResponse> =
            SdkError::timeout_error("operation attempt timeout occurred after 4s");
        let text = logged(&map_sdk(Dependency::Database, "Query", err));
        assert!(
            text.contains("operation attempt timeout occurred after 4s"),
            "{text}"
        );

        let err: SdkError<PutItemError, HttpResponse> =
            SdkError::construction_failure("missing field `table_name`");
        let e = map_sdk(Dependency::Database, "PutItem", err);
        assert!(matches!(e, Error::Internal { .. }), "{e:?}");
        let text = logged(&e);
        assert!(text.contains("missing field `table_name`"), "{text}");
    }

    #[test]
    fn unavailable_keeps_the_chain_of_any_error() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("sending the request failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let text = logged(&unavailable(
            Dependency::Database,
            "TransactWriteItems",
            Outer(refused()),
        ));
        assert!(
            text.contains(
                "DynamoDB TransactWriteItems: sending the request failed: tcp connect error: Connection refused"
            ),
            "{text}"
        );
    }
}
