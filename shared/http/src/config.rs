//! Configuration from environment variables, read once per cold start.

use std::time::Duration;

use vmapi_core::QuotaLimits;

/// The default HS256 secret for local runs (documented in the README). Never used in Lambda.
pub const DEFAULT_LOCAL_JWT_SECRET: &str = "vm-api-local-development-secret";
/// The default cursor-signing secret for local runs.
pub const DEFAULT_CURSOR_SECRET: &str = "vm-api-local-cursor-secret";

/// How tokens are verified.
#[derive(Clone, Debug)]
pub enum JwtMode {
    /// Production: keys from a JWKS URL (RS*/ES*/PS*/EdDSA only).
    Jwks {
        /// Where the key set lives.
        url: String,
    },
    /// Local runs: HS256 with a shared secret.
    LocalHs256 {
        /// The secret.
        secret: String,
    },
}

/// Token verification settings.
#[derive(Clone, Debug)]
pub struct JwtConfig {
    /// Key source.
    pub mode: JwtMode,
    /// Required `iss`, if configured.
    pub issuer: Option<String>,
    /// Required `aud`, if configured.
    pub audience: Option<String>,
    /// Clock leeway in seconds (at most 5).
    pub leeway_secs: u64,
}

/// Everything the functions read from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// DynamoDB table.
    pub table_name: String,
    /// Tokens.
    pub jwt: JwtConfig,
    /// Secret that signs list cursors (shared by all functions).
    pub cursor_secret: String,
    /// Catalog cache lifetime per container.
    pub catalog_ttl: Duration,
    /// Default quota limits of a team (its record may set its own).
    pub quotas: QuotaLimits,
}

/// A configuration problem found at start-up.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Reads the environment. In Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) the local defaults
    /// for secrets are refused: a JWKS URL, or an explicit `LOCAL_JWT_SECRET`, is required.
    pub fn from_env() -> Result<Self, ConfigError> {
        let in_lambda = var("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let mode =
            match var("JWKS_URL") {
                Some(url) => JwtMode::Jwks { url },
                None => match var("LOCAL_JWT_SECRET") {
                    Some(secret) => JwtMode::LocalHs256 { secret },
                    None if in_lambda => return Err(ConfigError(
                        "JWKS_URL is not set; in Lambda the default local token secret is refused"
                            .into(),
                    )),
                    None => JwtMode::LocalHs256 {
                        secret: DEFAULT_LOCAL_JWT_SECRET.into(),
                    },
                },
            };
        let cursor_secret = match var("CURSOR_SECRET") {
            Some(s) => s,
            None if in_lambda => {
                return Err(ConfigError("CURSOR_SECRET must be set in Lambda".into()))
            }
            None => DEFAULT_CURSOR_SECRET.into(),
        };
        let leeway_secs = match var("JWT_LEEWAY_SECONDS") {
            Some(v) => v.parse::<u64>().ok().filter(|l| *l <= 5).ok_or_else(|| {
                ConfigError(format!("JWT_LEEWAY_SECONDS must be 0 to 5, got '{v}'"))
            })?,
            None => 5,
        };
        let catalog_ttl = match var("CATALOG_CACHE_SECONDS") {
            Some(v) => Duration::from_secs(v.parse().map_err(|_| {
                ConfigError(format!("CATALOG_CACHE_SECONDS must be a number, got '{v}'"))
            })?),
            None => Duration::from_secs(300),
        };
        let quotas = quota_limits(var)?;
        Ok(Config {
            table_name: var("TABLE_NAME").unwrap_or_else(|| "vm-api".into()),
            jwt: JwtConfig {
                mode,
                issuer: var("JWT_ISSUER"),
                audience: var("JWT_AUDIENCE"),
                leeway_secs,
            },
            cursor_secret,
            catalog_ttl,
            quotas,
        })
    }

    /// A local configuration (tests, local server) with HS256 tokens.
    pub fn local(table_name: impl Into<String>, jwt_secret: impl Into<String>) -> Self {
        Config {
            table_name: table_name.into(),
            jwt: JwtConfig {
                mode: JwtMode::LocalHs256 {
                    secret: jwt_secret.into(),
                },
                issuer: None,
                audience: None,
                leeway_secs: 5,
            },
            cursor_secret: DEFAULT_CURSOR_SECRET.into(),
            catalog_ttl: Duration::from_secs(300),
            quotas: QuotaLimits::default(),
        }
    }
}

/// `QUOTA_MAX_ACTIVE_VMS` and `QUOTA_MAX_VCPUS` (whole numbers from 0), read through `var`.
fn quota_limits(var: impl Fn(&str) -> Option<String>) -> Result<QuotaLimits, ConfigError> {
    let defaults = QuotaLimits::default();
    let read = |name: &str, default: u32| match var(name) {
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| ConfigError(format!("{name} must be a whole number from 0, got '{v}'"))),
        None => Ok(default),
    };
    Ok(QuotaLimits {
        max_active_vms: read("QUOTA_MAX_ACTIVE_VMS", defaults.max_active_vms)?,
        max_vcpus: read("QUOTA_MAX_VCPUS", defaults.max_vcpus)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_limits_default_and_come_from_the_environment() {
        let none = |_: &str| None;
        assert_eq!(quota_limits(none).unwrap(), QuotaLimits::default());
        let set = |name: &str| match name {
            "QUOTA_MAX_ACTIVE_VMS" => Some("7".to_string()),
            "QUOTA_MAX_VCPUS" => Some("64".to_string()),
            _ => None,
        };
        assert_eq!(
            quota_limits(set).unwrap(),
            QuotaLimits {
                max_active_vms: 7,
                max_vcpus: 64
            }
        );
        let bad = |name: &str| (name == "QUOTA_MAX_VCPUS").then(|| "-1".to_string());
        assert!(quota_limits(bad)
            .unwrap_err()
            .to_string()
            .contains("QUOTA_MAX_VCPUS"));
    }
}
