//! The access token: a client-credentials grant from Microsoft Entra ID, cached until shortly
//! before it expires and forgotten when Resource Manager refuses it.

use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use vmapi_core::cloud::DriverError;
use vmapi_models::Sensitive;

use super::config::MANAGEMENT_SCOPE;
use super::driver::{AzureDriver, CachedToken};
use super::errors::{transport_error, DEFAULT_THROTTLE_WAIT};
use super::util::{form_encode, retry_after, truncate};

/// A token is replaced this long before it expires.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(300);

impl AzureDriver {
    /// The cached token, fetched anew when absent or within the refresh margin of expiry.
    pub(super) async fn token(&self) -> Result<Sensitive, DriverError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            if Instant::now() < token.refresh_at {
                return Ok(token.value.clone());
            }
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forgets `used` after Resource Manager refused it (unless another call replaced it).
    pub(super) async fn invalidate(&self, used: &Sensitive) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| &t.value == used) {
            *cached = None;
        }
    }

    pub(super) async fn fetch_token(&self) -> Result<CachedToken, DriverError> {
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.login_base, self.config.tenant_id
        );
        let form = form_encode(&[
            ("grant_type", "client_credentials"),
            ("client_id", &self.config.client_id),
            ("client_secret", self.config.client_secret.expose()),
            ("scope", MANAGEMENT_SCOPE),
        ]);
        tracing::debug!(tenant = %self.config.tenant_id, "requesting an Azure access token");
        let asked = Instant::now();
        let resp = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| transport_error("Entra ID", &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .text()
            .await
            .map_err(|e| transport_error("Entra ID", &e))?;
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            let code = parsed["error"].as_str().unwrap_or("token_error");
            // Entra ID descriptions carry trace and correlation ids on later lines.
            let description = parsed["error_description"]
                .as_str()
                .and_then(|d| d.lines().next())
                .unwrap_or("");
            let text = truncate(&format!("{code}: {description}"));
            return Err(match status.as_u16() {
                429 => DriverError::Throttled {
                    retry_after: retry_after(&headers).unwrap_or(DEFAULT_THROTTLE_WAIT),
                },
                400 | 401 | 403 => {
                    DriverError::Unauthorized(format!("Entra ID refused the token request: {text}"))
                }
                s if s >= 500 => {
                    DriverError::Unreachable(format!("Entra ID answered HTTP {s}: {text}"))
                }
                s => DriverError::Provider {
                    code: code.to_string(),
                    message: format!("Entra ID answered HTTP {s}: {text}"),
                },
            });
        }
        let Some(access_token) = parsed["access_token"].as_str().filter(|t| !t.is_empty()) else {
            return Err(DriverError::Provider {
                code: "InvalidTokenResponse".into(),
                message: "Entra ID returned no access_token".into(),
            });
        };
        let expires_in = match &parsed["expires_in"] {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(0);
        let lifetime = Duration::from_secs(expires_in);
        Ok(CachedToken {
            value: Sensitive::new(access_token.to_string()),
            refresh_at: asked + lifetime.saturating_sub(TOKEN_REFRESH_MARGIN),
        })
    }
}
