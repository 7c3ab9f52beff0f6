//! Configuration from environment variables, read once per cold start (docs/configuration.md's
//! table is generated from the declarations here).

use std::time::Duration;

use vmapi_aws::settings::TABLE_NAME;
use vmapi_config::{ConfigError, Env, Reader, Var};
use vmapi_core::QuotaLimits;

use crate::logging::{AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL, RUST_LOG};

/// The default HS256 secret for local runs (documented in the README). Never used in Lambda.
pub const DEFAULT_LOCAL_JWT_SECRET: &str = "vm-api-local-development-secret";
/// The default cursor-signing secret for local runs.
pub const DEFAULT_CURSOR_SECRET: &str = "vm-api-local-cursor-secret";

/// The claim that carries the audience unless `JWT_AUDIENCE_CLAIM` names another.
pub const DEFAULT_AUDIENCE_CLAIM: &str = "aud";

/// The HTTP functions and `vmctl` (the local server and the tool's tokens).
const HTTP: &[Reader] = &[Reader::Http, Reader::Vmctl];

/// The token issuer's key set.
pub const JWKS_URL: Var = Var::new(
    "JWKS_URL",
    HTTP,
    "JWKS of the token issuer (production); when unset, local HS256 tokens are used",
)
.values("an https URL (http only on a loopback host)");
/// Required `iss`.
pub const JWT_ISSUER: Var = Var::new(
    "JWT_ISSUER",
    HTTP,
    "the `iss` tokens must carry (key-set mode; required in Lambda with `JWKS_URL`)",
);
/// Required audience.
pub const JWT_AUDIENCE: Var = Var::new(
    "JWT_AUDIENCE",
    HTTP,
    "the audience tokens must carry (key-set mode; required in Lambda with `JWKS_URL`)",
);
/// The claim that carries the audience.
pub const JWT_AUDIENCE_CLAIM: Var = Var::new(
    "JWT_AUDIENCE_CLAIM",
    HTTP,
    "the claim that carries the audience: `aud`, or `client_id` (Cognito access tokens); \
     template parameter `JwtAudienceClaim`",
)
.default(DEFAULT_AUDIENCE_CLAIM)
.values("a claim name such as `aud` or `client_id`");
/// Clock leeway.
pub const JWT_LEEWAY_SECONDS: Var = Var::new(
    "JWT_LEEWAY_SECONDS",
    HTTP,
    "clock leeway of token times in seconds",
)
.default("5")
.values("0 to 5");
/// Local tokens' secret.
pub const LOCAL_JWT_SECRET: Var = Var::new(
    "LOCAL_JWT_SECRET",
    HTTP,
    "HS256 secret of local tokens; in Lambda only under `sam local` (`AWS_SAM_LOCAL=true`). \
     Declared empty in the template (for `sam local`): empty is unset",
)
.default(DEFAULT_LOCAL_JWT_SECRET)
.note("not in Lambda");
/// Set by SAM CLI.
pub const AWS_SAM_LOCAL: Var = Var::new(
    "AWS_SAM_LOCAL",
    HTTP,
    "`true` in `sam local` (SAM CLI sets it); inside Lambda local tokens (`LOCAL_JWT_SECRET`) \
     are accepted only then",
)
.values("`true` (anything else is false)");
/// Signs list cursors.
pub const CURSOR_SECRET: Var = Var::new(
    "CURSOR_SECRET",
    HTTP,
    "signs list cursors; the same for every function (the stack generates one unless \
     `CursorSecret` is given)",
)
.default(DEFAULT_CURSOR_SECRET)
.note("required in Lambda");
/// Catalog cache lifetime.
pub const CATALOG_CACHE_SECONDS: Var = Var::new(
    "CATALOG_CACHE_SECONDS",
    HTTP,
    "how long a container serves catalog items from memory (0 disables)",
)
.default("300")
.values("a whole number of seconds");
/// Default quota: active VMs.
pub const QUOTA_MAX_ACTIVE_VMS: Var = Var::new(
    "QUOTA_MAX_ACTIVE_VMS",
    HTTP,
    "create-vm: default quota of a team's active VMs (a team's record may set its own \
     `quotas`); template parameter `QuotaMaxActiveVms`",
)
.default("50")
.values("a whole number from 0");
/// Default quota: vCPUs.
pub const QUOTA_MAX_VCPUS: Var = Var::new(
    "QUOTA_MAX_VCPUS",
    HTTP,
    "create-vm: default quota of the vCPUs of a team's active VMs; template parameter \
     `QuotaMaxVcpus`",
)
.default("200")
.values("a whole number from 0");
/// Port of the local server.
pub const PORT: Var = Var::new(
    "PORT",
    &[Reader::Vmctl],
    "port of the local server (`make run`)",
)
.default("3000")
.values("a port number");

/// An admin key of the operator's choosing for the local run (else `make run` makes one).
pub const ADMIN_API_KEY: Var = Var::new(
    "ADMIN_API_KEY",
    &[Reader::Vmctl],
    "`make run`: the admin key to register (at least 32 visible ASCII characters); unset, a new \
     one is made; either way it is printed and written to `.local/admin-key`",
)
.values("a key");

/// The variables of this crate.
pub const VARS: &[Var] = &[
    JWKS_URL,
    JWT_ISSUER,
    JWT_AUDIENCE,
    JWT_AUDIENCE_CLAIM,
    JWT_LEEWAY_SECONDS,
    LOCAL_JWT_SECRET,
    AWS_SAM_LOCAL,
    CURSOR_SECRET,
    CATALOG_CACHE_SECONDS,
    QUOTA_MAX_ACTIVE_VMS,
    QUOTA_MAX_VCPUS,
    PORT,
    ADMIN_API_KEY,
    RUST_LOG,
    AWS_LAMBDA_LOG_LEVEL,
    AWS_LAMBDA_LOG_FORMAT,
];

/// How tokens are verified.
#[derive(Clone, Debug)]
pub enum JwtMode {
    /// Production: keys from a JWKS URL (asymmetric algorithms only). Tokens must carry `iss`
    /// and the audience claim; `nbf`, when present, is checked.
    Jwks {
        /// Where the key set lives: `https://`, or `http://` on a loopback host (tests); see
        /// [`check_key_set_url`].
        url: String,
        /// The claim that carries the audience (`JWT_AUDIENCE_CLAIM`, default `aud`): identity
        /// providers whose access tokens carry the client in `client_id` instead of `aud`
        /// (Amazon Cognito) set `client_id`. A string, or an array of strings, that must
        /// contain [`JwtConfig::audience`] when that is set.
        audience_claim: String,
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
    /// Required audience (in `aud`, or the claim [`JwtMode::Jwks::audience_claim`] names), if
    /// configured.
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

impl Config {
    /// Reads the environment. In Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) the local defaults
    /// for secrets are refused: a JWKS URL is required, or an explicit `LOCAL_JWT_SECRET` under
    /// `sam local` (`AWS_SAM_LOCAL=true`, which SAM CLI sets); a deployed function with
    /// `LOCAL_JWT_SECRET` set refuses to start;
    /// with a JWKS URL, `JWT_ISSUER` and `JWT_AUDIENCE` are required too (a function URL or a
    /// direct invocation bypasses API Gateway's authorizer, so the function checks them itself).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(&Env::process())
    }

    /// [`Config::from_env`] over `env` (the process environment, or a stand-in).
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let in_lambda = env.in_lambda();
        // SAM CLI sets it in every local invocation (samcli/local/lambdafn/env_vars.py).
        let sam_local = env.get(&AWS_SAM_LOCAL).is_some_and(|v| v.trim() == "true");
        let issuer = env.get(&JWT_ISSUER);
        let audience = env.get(&JWT_AUDIENCE);
        let mode =
            match env.get(&JWKS_URL) {
                Some(url) => {
                    if in_lambda {
                        require_issuer_and_audience(issuer.is_some(), audience.is_some())?;
                    }
                    key_set_mode(url, env)?
                }
                None => match env.get(&LOCAL_JWT_SECRET) {
                    Some(_) if in_lambda && !sam_local => return Err(LOCAL_JWT_SECRET.error(
                        "LOCAL_JWT_SECRET is set in a deployed function: local HS256 tokens are \
                         accepted inside Lambda only under `sam local` (AWS_SAM_LOCAL=true); \
                         set JWKS_URL and leave LOCAL_JWT_SECRET empty",
                    )),
                    Some(secret) => JwtMode::LocalHs256 { secret },
                    None if in_lambda => return Err(JWKS_URL.error(
                        "JWKS_URL is not set; in Lambda the default local token secret is refused",
                    )),
                    None => JwtMode::LocalHs256 {
                        secret: DEFAULT_LOCAL_JWT_SECRET.into(),
                    },
                },
            };
        let cursor_secret = if in_lambda {
            env.require(&CURSOR_SECRET, "in Lambda")?
        } else {
            env.string(&CURSOR_SECRET).unwrap_or_default()
        };
        let leeway_secs = env.parse_with(&JWT_LEEWAY_SECONDS, |v| {
            v.parse::<u64>().ok().filter(|l| *l <= 5)
        })?;
        Ok(Config {
            table_name: env.string(&TABLE_NAME).unwrap_or_default(),
            jwt: JwtConfig {
                mode,
                issuer,
                audience,
                leeway_secs,
            },
            cursor_secret,
            catalog_ttl: env.secs(&CATALOG_CACHE_SECONDS)?,
            quotas: quota_limits(env)?,
        })
    }

    /// The variables whose built-in local default (published in the README) is in use:
    /// `LOCAL_JWT_SECRET` when tokens are HS256 with [`DEFAULT_LOCAL_JWT_SECRET`], and
    /// `CURSOR_SECRET` when cursors are signed with [`DEFAULT_CURSOR_SECRET`] (whether unset or
    /// set to that very value). Empty when neither is.
    pub fn builtin_secrets(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if matches!(&self.jwt.mode, JwtMode::LocalHs256 { secret } if secret == DEFAULT_LOCAL_JWT_SECRET)
        {
            names.push("LOCAL_JWT_SECRET");
        }
        if self.cursor_secret == DEFAULT_CURSOR_SECRET {
            names.push("CURSOR_SECRET");
        }
        names
    }

    /// For a server outside Lambda (`vmctl serve`, `vmctl dev`): refuses the built-in secrets
    /// ([`Config::builtin_secrets`]) unless the server binds a loopback host (127.0.0.0/8,
    /// `::1`, `localhost`) and the table is a local one (`dynamodb_endpoint`, i.e.
    /// `AWS_ENDPOINT_URL_DYNAMODB`, set and on a loopback host). Anyone can mint tokens and
    /// forge cursors with the published defaults. Secrets set to other values pass anywhere.
    pub fn check_builtin_secrets(
        &self,
        bind_host: &str,
        dynamodb_endpoint: Option<&str>,
    ) -> Result<(), ConfigError> {
        let builtin = self.builtin_secrets();
        if builtin.is_empty() {
            return Ok(());
        }
        let mut why = Vec::new();
        if !is_loopback_host(bind_host) {
            why.push(format!(
                "the server binds '{bind_host}', which is not a loopback address"
            ));
        }
        match dynamodb_endpoint.map(str::trim).filter(|e| !e.is_empty()) {
            None => why.push(
                "AWS_ENDPOINT_URL_DYNAMODB is not set, so the table is a real DynamoDB table"
                    .to_string(),
            ),
            Some(endpoint) if !url_on_loopback(endpoint) => why.push(format!(
                "the DynamoDB endpoint '{endpoint}' is not on a loopback host, so the table may \
                 be a real one"
            )),
            Some(_) => {}
        }
        if why.is_empty() {
            return Ok(());
        }
        let names = builtin.join(" and ");
        Err(ConfigError {
            var: builtin[0],
            message: format!(
                "the built-in {names} (published in the README: anyone can mint tokens or forge \
             list cursors with {}) {} accepted only on a loopback address (127.0.0.0/8, ::1, \
             localhost) with a local table (AWS_ENDPOINT_URL_DYNAMODB on a loopback host), \
             but {}; set {names} to secrets of your own",
                if builtin.len() == 1 { "it" } else { "them" },
                if builtin.len() == 1 { "is" } else { "are" },
                why.join(", and ")
            ),
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

/// Key-set mode: `JWKS_URL` (checked by [`check_key_set_url`]) and `JWT_AUDIENCE_CLAIM`.
fn key_set_mode(url: String, env: &Env) -> Result<JwtMode, ConfigError> {
    check_key_set_url(&url)?;
    let name_chars = |c: char| c.is_ascii_alphanumeric() || "_-:.".contains(c);
    let audience_claim = env.parse_with(&JWT_AUDIENCE_CLAIM, |claim| {
        claim.chars().all(name_chars).then(|| claim.to_string())
    })?;
    Ok(JwtMode::Jwks {
        url,
        audience_claim,
    })
}

/// In Lambda a key set needs `JWT_ISSUER` and `JWT_AUDIENCE`: a function URL or a direct
/// invocation bypasses API Gateway's authorizer, so the function checks them itself.
fn require_issuer_and_audience(issuer: bool, audience: bool) -> Result<(), ConfigError> {
    let (var, missing) = match (issuer, audience) {
        (true, true) => return Ok(()),
        (false, false) => (JWT_ISSUER, "JWT_ISSUER and JWT_AUDIENCE are"),
        (false, true) => (JWT_ISSUER, "JWT_ISSUER is"),
        (true, false) => (JWT_AUDIENCE, "JWT_AUDIENCE is"),
    };
    Err(var.error(format!(
        "JWKS_URL is set but {missing} not: in Lambda tokens are checked against the issuer and \
         the audience (a function URL or a direct invocation bypasses API Gateway's authorizer)"
    )))
}

/// Whether `host` (a host name or an IP address, IPv6 with or without brackets) is a loopback
/// host: 127.0.0.0/8, `::1` or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `url` parses and its host is a loopback host.
fn url_on_loopback(url: &str) -> bool {
    reqwest::Url::parse(url.trim())
        .ok()
        .and_then(|u| u.host_str().map(is_loopback_host))
        .unwrap_or(false)
}

/// Checks a key-set URL (`JWKS_URL`): it must be `https://`, or `http://` on a loopback host
/// (127.0.0.0/8, `::1`, `localhost`; for tests), so that a network attacker cannot serve
/// their own keys. (Redirects are not followed when the key set is fetched.)
pub fn check_key_set_url(url: &str) -> Result<(), ConfigError> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| JWKS_URL.error(format!("JWKS_URL is not a URL ({e}): '{url}'")))?;
    let Some(host) = parsed.host_str() else {
        return Err(JWKS_URL.error(format!("JWKS_URL has no host: '{url}'")));
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(host) => Ok(()),
        scheme => Err(JWKS_URL.error(format!(
            "JWKS_URL must be https (http only on a loopback host: 127.0.0.0/8, ::1, \
             localhost), got {scheme}:// on '{host}'"
        ))),
    }
}

/// [`QUOTA_MAX_ACTIVE_VMS`] and [`QUOTA_MAX_VCPUS`].
fn quota_limits(env: &Env) -> Result<QuotaLimits, ConfigError> {
    Ok(QuotaLimits {
        max_active_vms: env.parse(&QUOTA_MAX_ACTIVE_VMS)?,
        max_vcpus: env.parse(&QUOTA_MAX_VCPUS)?,
    })
}

#[cfg(test)]
mod tests;
