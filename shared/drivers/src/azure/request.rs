//! One Resource Manager request with the bearer token ([`AzureDriver::call`]) and its response
//! read to the end.

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use vmapi_core::cloud::{CloudTarget, DriverError};

use super::config::COMPUTE_API_VERSION;
use super::driver::AzureDriver;
use super::errors::{arm_error, transport_error};
use super::util::path_of;

/// A response read to the end.
pub(super) struct ArmResponse {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: String,
}

impl ArmResponse {
    pub(super) fn json(&self) -> Result<Value, DriverError> {
        serde_json::from_str(&self.body).map_err(|e| DriverError::Provider {
            code: "InvalidResponse".into(),
            message: format!("unreadable Resource Manager response: {e}"),
        })
    }

    pub(super) fn error(&self) -> DriverError {
        arm_error(self.status, &self.headers, &self.body)
    }
}

impl AzureDriver {
    /// One Resource Manager request with the bearer token; a 401 fetches a new token and
    /// repeats the request once.
    pub(super) async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<ArmResponse, DriverError> {
        let mut refreshed = false;
        loop {
            let token = self.token().await?;
            let mut auth =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    DriverError::Provider {
                        code: "InvalidTokenResponse".into(),
                        message: "Entra ID returned an access token that is not a header value"
                            .into(),
                    }
                })?;
            auth.set_sensitive(true);
            let mut request = self
                .http
                .request(method.clone(), url)
                .header(AUTHORIZATION, auth)
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.to_string());
            } else if method == Method::POST || method == Method::PUT {
                // Resource Manager wants a length on bodiless POSTs (411 otherwise); the
                // HTTP client sends none for an empty body by itself.
                request = request.header(CONTENT_LENGTH, "0");
            }
            tracing::debug!(%method, path = %path_of(url), "Resource Manager request");
            let resp = request
                .send()
                .await
                .map_err(|e| transport_error("Resource Manager", &e))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body_text = resp
                .text()
                .await
                .map_err(|e| transport_error("Resource Manager", &e))?;
            tracing::debug!(%method, path = %path_of(url), status = status.as_u16(), "Resource Manager response");
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                self.invalidate(&token).await;
                refreshed = true;
                continue;
            }
            return Ok(ArmResponse {
                status,
                headers,
                body: body_text,
            });
        }
    }

    /// The VM's resource with its instance view (power state), or `None` when it is gone.
    pub(super) async fn vm_with_view(
        &self,
        target: &CloudTarget,
    ) -> Result<Option<Value>, DriverError> {
        let path = self.vm_path(target);
        let url = format!(
            "{}&$expand=instanceView",
            self.url(&path, COMPUTE_API_VERSION)
        );
        let resp = self.call(Method::GET, &url, None).await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status.is_success() {
            return Err(resp.error());
        }
        resp.json().map(Some)
    }
}
