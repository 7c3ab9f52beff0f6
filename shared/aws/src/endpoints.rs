//! Service settings from the environment where a blank value counts as unset.
//!
//! The template declares `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SECRETS_MANAGER` and
//! `AWS_ENDPOINT_URL_EC2` with empty values, so that `sam local` can override them (SAM CLI
//! overrides only variables the template declares). The SDK takes a set variable as it is: an
//! empty endpoint URL would break every call of that service. Read through [`BlankIsUnset`], a
//! blank service-specific value is as if the variable were not set at all.

use aws_config::SdkConfig;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

/// The loaded configuration with its service settings read through [`BlankIsUnset`].
pub fn blank_is_unset(sdk: SdkConfig) -> SdkConfig {
    let read = BlankIsUnset {
        loaded: sdk.clone(),
        global: |name| std::env::var(name).ok(),
    };
    sdk.into_builder().service_config(read).build()
}

/// Reads a service setting (e.g. `AWS_ENDPOINT_URL_DYNAMODB`) as the loaded configuration does;
/// a blank value counts as unset, so the global variable (`AWS_ENDPOINT_URL`), when set and not
/// blank, applies as it would without the service's variable.
#[derive(Debug)]
pub struct BlankIsUnset {
    /// The configuration as the SDK loaded it (its service settings are read first).
    loaded: SdkConfig,
    /// The process environment (a stand-in in tests).
    global: fn(&str) -> Option<String>,
}

impl LoadServiceConfig for BlankIsUnset {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let value = self.loaded.service_config()?.load_config(key.clone());
        match value {
            Some(v) if !v.trim().is_empty() => Some(v),
            // Blank: the service's variable (which wins over the global one) is as if unset.
            Some(_) => (self.global)(key.env()).filter(|g| !g.trim().is_empty()),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
    use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};

    use super::*;

    /// The environment as the SDK would read it: the service's variable, then the global one.
    #[derive(Debug)]
    struct Vars {
        service: Option<&'static str>,
        global: Option<&'static str>,
    }

    impl LoadServiceConfig for Vars {
        fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
            assert_eq!(key.env(), "AWS_ENDPOINT_URL");
            self.service.or(self.global).map(str::to_string)
        }
    }

    /// Notes the URI of the first request and stops it before it is sent.
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

    fn loaded(vars: Vars) -> SdkConfig {
        SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::for_tests(),
            ))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .service_config(vars)
            .build()
    }

    /// Where a DynamoDB call made with `sdk` goes, or why it could not be made.
    async fn target(sdk: &SdkConfig) -> Result<String, String> {
        let uri = Uri::default();
        let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(uri.clone())
            .build();
        let err = aws_sdk_dynamodb::Client::from_conf(conf)
            .list_tables()
            .send()
            .await
            .expect_err("the interceptor stops every request");
        let seen = uri.0.lock().unwrap().clone();
        seen.ok_or_else(|| format!("{:?}", err))
    }

    fn wrapped(vars: Vars, global: fn(&str) -> Option<String>) -> SdkConfig {
        let sdk = loaded(vars);
        let read = BlankIsUnset {
            loaded: sdk.clone(),
            global,
        };
        sdk.into_builder().service_config(read).build()
    }

    #[tokio::test]
    async fn an_empty_endpoint_variable_acts_as_unset() {
        let none = |_: &str| None;
        // Without the wrapper an empty AWS_ENDPOINT_URL_DYNAMODB breaks every call (the SDK
        // panics on the empty URL in debug builds; the panic is printed, then caught here).
        let empty = Vars {
            service: Some(""),
            global: None,
        };
        let without = tokio::spawn(async move { target(&loaded(empty)).await }).await;
        assert!(
            !matches!(without, Ok(Ok(_))),
            "an empty endpoint URL was usable as it is: {without:?}"
        );
        // Read through it, the call goes to the region's public endpoint, as when unset.
        for service in [Some(""), Some("  "), None] {
            let vars = Vars {
                service,
                global: None,
            };
            assert_eq!(
                target(&wrapped(vars, none)).await.unwrap(),
                "https://dynamodb.eu-west-1.amazonaws.com/",
                "{service:?}"
            );
        }
        // A set value is used as it is.
        let local = Vars {
            service: Some("http://127.0.0.1:8000"),
            global: Some("http://127.0.0.1:9999"),
        };
        assert_eq!(
            target(&wrapped(local, none)).await.unwrap(),
            "http://127.0.0.1:8000/"
        );
        // A blank service variable lets the global one apply, as when it is unset.
        let global = |name: &str| (name == "AWS_ENDPOINT_URL").then(|| "http://127.0.0.2:1".into());
        let blank = Vars {
            service: Some(""),
            global: Some("http://127.0.0.2:1"),
        };
        assert_eq!(
            target(&wrapped(blank, global)).await.unwrap(),
            "http://127.0.0.2:1/"
        );
    }
}
