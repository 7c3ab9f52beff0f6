//! The [`KraudDriver`] itself: construction (HTTP client), namespaces by VM, and requests to
//! the Kraud API with their errors mapped.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Client, Method, RequestBuilder, Response, Url};
use serde::Deserialize;
use vmapi_core::cloud::{Capabilities, DriverError};
use vmapi_core::ErrorChain;
use vmapi_models::{ConfidentialTech, DeploymentId, VmId};

use super::config::{KraudConfig, LAUNCH_POLL, LAUNCH_WAIT, REQUEST_TIMEOUT};
use super::errors::{error_from_response, transport_error};

/// The Kraud.Cloud driver: one HTTP client for all calls. `Debug` shows the base URL only.
pub struct KraudDriver {
    pub(super) client: Client,
    pub(super) base: Url,
    pub(super) deployment: DeploymentId,
    pub(super) launch_wait: Duration,
    pub(super) launch_poll: Duration,
}

impl std::fmt::Debug for KraudDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KraudDriver")
            .field("base_url", &self.base.as_str())
            .field("launch_wait", &self.launch_wait)
            .finish_non_exhaustive()
    }
}

impl KraudDriver {
    /// What this driver can do, known before it is built (credentials are read lazily).
    pub fn static_capabilities() -> Capabilities {
        Capabilities {
            confidential: vec![ConfidentialTech::SevSnp],
            native_idempotency: false,
            password_login: false,
            resize: vmapi_models::CloudKind::Kraud.can_resize(),
        }
    }

    /// Builds the driver: checks the base URL and the token, and makes the HTTP client
    /// (rustls, 10 s connect and request timeouts, the token as a sensitive default header).
    pub fn new(config: KraudConfig) -> Result<Self, DriverError> {
        let base = Url::parse(config.base_url.trim())
            .map_err(|e| DriverError::InvalidSpec(format!("Kraud base URL: {e}")))?;
        if !matches!(base.scheme(), "https" | "http") || base.cannot_be_a_base() {
            return Err(DriverError::InvalidSpec(
                "Kraud base URL must be an http(s) URL".into(),
            ));
        }
        let token = config.token.expose().trim();
        if token.is_empty() {
            return Err(DriverError::Unauthorized(
                "the Kraud API token is empty".into(),
            ));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            DriverError::Unauthorized("the Kraud API token is not a valid header value".into())
        })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let client = Client::builder()
            .default_headers(headers)
            .connect_timeout(REQUEST_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("vmapi-drivers/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DriverError::Unreachable(format!("HTTP client: {}", ErrorChain(&e))))?;
        Ok(KraudDriver {
            client,
            base,
            deployment: config.deployment,
            launch_wait: LAUNCH_WAIT,
            launch_poll: LAUNCH_POLL,
        })
    }

    /// Changes how long `create` waits for a launched pod to appear (default 8 s) and how
    /// often it looks (default 1 s).
    pub fn with_launch_wait(mut self, wait: Duration, poll: Duration) -> Self {
        self.launch_wait = wait;
        self.launch_poll = poll.max(Duration::from_millis(1));
        self
    }

    /// The namespace of a VM: `vm-{vmId}` (27 characters, a valid DNS label).
    pub fn namespace_of(vm: VmId) -> String {
        format!("vm-{vm}")
    }

    // ----- HTTP plumbing -------------------------------------------------------------------

    pub(super) fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    pub(super) fn request(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> RequestBuilder {
        self.client.request(method, self.url(segments, query))
    }

    /// Sends a request; transport failures become [`DriverError::Unreachable`].
    pub(super) async fn send(
        &self,
        req: RequestBuilder,
        what: &str,
    ) -> Result<Response, DriverError> {
        tracing::debug!(call = what, "kraud request");
        req.send().await.map_err(|e| transport_error(what, e))
    }

    /// Sends a request and maps any status above 299 to a [`DriverError`].
    pub(super) async fn call(
        &self,
        req: RequestBuilder,
        what: &str,
    ) -> Result<Response, DriverError> {
        let resp = self.send(req, what).await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(error_from_response(what, resp).await)
        }
    }

    pub(super) async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        req: RequestBuilder,
        what: &str,
    ) -> Result<T, DriverError> {
        let resp = self.call(req, what).await?;
        let bytes = resp.bytes().await.map_err(|e| transport_error(what, e))?;
        serde_json::from_slice(&bytes).map_err(|e| DriverError::Provider {
            code: "invalid_response".into(),
            message: format!("{what}: unexpected answer: {e}"),
        })
    }
}
