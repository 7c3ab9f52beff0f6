//! Bearer-token authentication: JWKS in production, HS256 locally.
//!
//! In key-set mode a token must carry `sub`, `exp`, `iss` and the audience claim (`aud`, or
//! the claim `JWT_AUDIENCE_CLAIM` names), with the configured values; `nbf`, when present, is
//! checked; leeway at most 5 s. Only keys fit for the token are used: never a symmetric key
//! (`kty: oct`), never one whose `use` is not `sig` or whose `alg` is not the token's. The key
//! set is cached as long as its response's `Cache-Control: max-age` says, within 1 to 10
//! minutes (see [`key_set_ttl`]). Local HS256 tokens need only `sub` and `exp`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{
    decode, decode_header, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use vmapi_models::UserId;

use crate::config::{check_key_set_url, JwtConfig, JwtMode, DEFAULT_AUDIENCE_CLAIM};

/// The shortest time a fetched key set is trusted, whatever its `Cache-Control` says.
const JWKS_TTL_MIN: Duration = Duration::from_secs(60);
/// The longest time a fetched key set is trusted: a key the identity provider removed is
/// refused at most this long after.
const JWKS_TTL_MAX: Duration = Duration::from_secs(600);
/// How long a key set is trusted when its response has no usable `Cache-Control: max-age`.
const JWKS_TTL_DEFAULT: Duration = Duration::from_secs(300);
/// An unknown `kid` refetches the key set at most this often.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(30);

/// Algorithms accepted from a JWKS (never HMAC, never `none`).
const ASYMMETRIC: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Why a token was refused (all 401; the message is safe to show).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token: send 'Authorization: Bearer <token>'")]
    Missing,
    /// The token is malformed, expired, or signed by another key.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The key set could not be fetched (503).
    #[error("the token keys are unavailable; retry shortly")]
    KeysUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Claims read from a token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
}

/// How long a key set fetched with this `Cache-Control` header value is trusted: its
/// `max-age` (`no-cache`/`no-store` count as 0), clamped to 1–10 minutes; 5 minutes when there
/// is no header or no parsable `max-age`.
pub fn key_set_ttl(cache_control: Option<&str>) -> Duration {
    let mut max_age = None;
    for directive in cache_control.unwrap_or("").split(',') {
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            max_age = Some(0);
            break;
        }
        if name.eq_ignore_ascii_case("max-age") && max_age.is_none() {
            max_age = value
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                // All digits: only too large a number fails to parse.
                .map(|v| v.parse::<u64>().unwrap_or(u64::MAX));
        }
    }
    match max_age {
        Some(secs) => Duration::from_secs(secs).clamp(JWKS_TTL_MIN, JWKS_TTL_MAX),
        None => JWKS_TTL_DEFAULT,
    }
}

struct JwksCache {
    keys: Option<JwkSet>,
    fetched: Option<Instant>,
    /// How long `keys` is trusted from `fetched` ([`key_set_ttl`] of its response).
    ttl: Duration,
}

enum Keys {
    Hs256(DecodingKey),
    Jwks {
        url: String,
        /// Built on the first fetch: it loads the trust store, which init need not pay for.
        http: std::sync::OnceLock<reqwest::Client>,
        cache: RwLock<JwksCache>,
    },
}

/// What a key set holds for a token.
enum Pick<'a> {
    /// A key fit for the token.
    Found(&'a Jwk),
    /// Keys with the token's `kid`, none of them fit (the reason).
    Refused(String),
    /// No key with the token's `kid` (or, without a `kid`, not exactly one usable key).
    Unknown,
}

/// Why `jwk` may not verify a token signed with `alg`, if it may not.
fn unfit(jwk: &Jwk, alg: Algorithm) -> Option<String> {
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return Some("it is a symmetric key (kty \"oct\"); symmetric keys are never used".into());
    }
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(other) => {
            let name = match other {
                PublicKeyUse::Encryption => "enc",
                PublicKeyUse::Other(o) => o.as_str(),
                PublicKeyUse::Signature => "sig",
            };
            return Some(format!("its use is \"{name}\", not \"sig\""));
        }
    }
    match jwk.common.key_algorithm {
        Some(key_alg) if key_alg != KeyAlgorithm::from(alg) => Some(format!(
            "it is for {key_alg}, the token is signed with {alg:?}"
        )),
        _ => None,
    }
}

/// The key of `set` for a token with `kid` signed with `alg`.
fn pick<'a>(set: &'a JwkSet, kid: Option<&str>, alg: Algorithm) -> Pick<'a> {
    match kid {
        Some(kid) => {
            let mut refusal = None;
            for jwk in set
                .keys
                .iter()
                .filter(|k| k.common.key_id.as_deref() == Some(kid))
            {
                match unfit(jwk, alg) {
                    None => return Pick::Found(jwk),
                    Some(why) => {
                        refusal.get_or_insert(format!("signing key '{kid}' is refused: {why}"));
                    }
                }
            }
            refusal.map_or(Pick::Unknown, Pick::Refused)
        }
        None => {
            let mut usable = set
                .keys
                .iter()
                .filter(|k| !matches!(k.algorithm, AlgorithmParameters::OctetKey(_)));
            match (usable.next(), usable.next()) {
                (Some(only), None) => match unfit(only, alg) {
                    None => Pick::Found(only),
                    Some(why) => Pick::Refused(format!("the signing key is refused: {why}")),
                },
                _ => Pick::Unknown,
            }
        }
    }
}

impl Pick<'_> {
    fn into_result(self) -> Result<Jwk, AuthError> {
        match self {
            Pick::Found(k) => Ok(k.clone()),
            Pick::Refused(why) => Err(AuthError::Invalid(why)),
            Pick::Unknown => Err(AuthError::Invalid("unknown signing key".into())),
        }
    }
}

/// Verifies bearer tokens. Built once per container; the key set is fetched lazily and cached.
#[derive(Clone)]
pub struct Authenticator {
    keys: Arc<Keys>,
    config: Arc<JwtConfig>,
}

impl Authenticator {
    /// From configuration. No network I/O happens here.
    pub fn new(config: JwtConfig) -> Self {
        let keys = match &config.mode {
            JwtMode::LocalHs256 { secret } => {
                Keys::Hs256(DecodingKey::from_secret(secret.as_bytes()))
            }
            JwtMode::Jwks { url, .. } => Keys::Jwks {
                url: url.clone(),
                http: std::sync::OnceLock::new(),
                cache: RwLock::new(JwksCache {
                    keys: None,
                    fetched: None,
                    ttl: Duration::ZERO,
                }),
            },
        };
        Authenticator {
            keys: Arc::new(keys),
            config: Arc::new(config),
        }
    }

    /// The claim that must carry the audience, when it is not `aud` (key-set mode only).
    fn other_audience_claim(&self) -> Option<&str> {
        match &self.config.mode {
            JwtMode::Jwks { audience_claim, .. } if audience_claim != DEFAULT_AUDIENCE_CLAIM => {
                Some(audience_claim)
            }
            _ => None,
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.config.leeway_secs.min(5);
        v.validate_nbf = true;
        let key_set = matches!(self.config.mode, JwtMode::Jwks { .. });
        let other_claim = self.other_audience_claim().is_some();
        // jsonwebtoken checks `iss` and `aud` only when present: in key-set mode they must be.
        match (key_set, other_claim) {
            (false, _) => v.set_required_spec_claims(&["exp", "sub"]),
            (true, false) => v.set_required_spec_claims(&["exp", "sub", "iss", "aud"]),
            (true, true) => v.set_required_spec_claims(&["exp", "sub", "iss"]),
        }
        match &self.config.audience {
            Some(aud) if !other_claim => v.set_audience(&[aud]),
            _ => v.validate_aud = false,
        }
        if let Some(iss) = &self.config.issuer {
            v.set_issuer(&[iss]);
        }
        v
    }

    /// Checks the audience in the configured claim other than `aud` (e.g. `client_id`): a
    /// string, or an array of strings, that contains the configured audience (if any).
    fn check_other_audience(&self, claims: &serde_json::Value) -> Result<(), AuthError> {
        let Some(name) = self.other_audience_claim() else {
            return Ok(());
        };
        let values: Vec<&str> = match claims.get(name) {
            Some(serde_json::Value::String(s)) => vec![s.as_str()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        };
        if values.is_empty() {
            return Err(AuthError::Invalid(format!(
                "missing required claim '{name}'"
            )));
        }
        match &self.config.audience {
            Some(aud) if !values.contains(&aud.as_str()) => Err(AuthError::Invalid(format!(
                "claim '{name}' does not name this API"
            ))),
            _ => Ok(()),
        }
    }

    /// Verifies the value of an `Authorization` header and returns the caller.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<UserId, AuthError> {
        let token = header
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let claims = match &*self.keys {
            Keys::Hs256(key) => {
                if header.alg != Algorithm::HS256 {
                    return Err(AuthError::Invalid(format!(
                        "algorithm {:?} is not accepted",
                        header.alg
                    )));
                }
                decode::<serde_json::Value>(token, key, &self.validation(Algorithm::HS256))
            }
            Keys::Jwks { .. } => {
                if !ASYMMETRIC.contains(&header.alg) {
                    return Err(AuthError::Invalid(format!(
                        "algorithm {:?} is not accepted",
                        header.alg
                    )));
                }
                let jwk = self.find_key(header.kid.as_deref(), header.alg).await?;
                let key = DecodingKey::from_jwk(&jwk)
                    .map_err(|e| AuthError::Invalid(format!("unusable key: {e}")))?;
                decode::<serde_json::Value>(token, &key, &self.validation(header.alg))
            }
        }
        .map_err(|e| AuthError::Invalid(e.to_string()))?
        .claims;
        self.check_other_audience(&claims)?;
        let sub = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .ok_or_else(|| AuthError::Invalid("claim 'sub' is not a string".into()))?;
        UserId::parse(sub).map_err(|e| AuthError::Invalid(format!("claim 'sub': {e}")))
    }

    async fn find_key(&self, kid: Option<&str>, alg: Algorithm) -> Result<Jwk, AuthError> {
        let Keys::Jwks { url, http, cache } = &*self.keys else {
            return Err(AuthError::Invalid("no key set configured".into()));
        };
        {
            let c = cache.read().await;
            if let (Some(set), Some(at)) = (&c.keys, c.fetched) {
                if at.elapsed() < c.ttl {
                    match pick(set, kid, alg) {
                        Pick::Unknown if at.elapsed() >= JWKS_MIN_REFRESH => {}
                        known_or_recent => return known_or_recent.into_result(),
                    }
                }
            }
        }
        let mut c = cache.write().await;
        // Another request may have fetched it meanwhile.
        let fresh = c
            .fetched
            .is_some_and(|at| at.elapsed() < JWKS_MIN_REFRESH.min(c.ttl));
        if !fresh {
            let (set, ttl) = fetch_key_set(url, http).await?;
            c.keys = Some(set);
            c.fetched = Some(Instant::now());
            c.ttl = ttl;
        }
        c.keys
            .as_ref()
            .map_or(Pick::Unknown, |set| pick(set, kid, alg))
            .into_result()
    }
}

/// Fetches the key set at `url` (redirects are not followed) and says how long to trust it.
async fn fetch_key_set(
    url: &str,
    http: &std::sync::OnceLock<reqwest::Client>,
) -> Result<(JwkSet, Duration), AuthError> {
    let unavailable = |e: Box<dyn std::error::Error + Send + Sync>| AuthError::KeysUnavailable(e);
    // Also checked at start-up (`Config::from_env`); a hand-built configuration is checked here.
    check_key_set_url(url).map_err(|e| unavailable(e.into()))?;
    let client = match http.get() {
        Some(client) => client,
        None => {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| unavailable(e.into()))?;
            http.get_or_init(|| client)
        }
    };
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| unavailable(e.into()))?;
    let status = response.status();
    if status.is_redirection() {
        return Err(unavailable(
            format!("the key set URL answered {status}; redirects are not followed").into(),
        ));
    }
    let response = response
        .error_for_status()
        .map_err(|e| unavailable(e.into()))?;
    // Several headers count as one list; none is an empty list (the default lifetime).
    let cache_control = response
        .headers()
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let ttl = key_set_ttl(Some(&cache_control));
    let set: JwkSet = response.json().await.map_err(|e| unavailable(e.into()))?;
    Ok((set, ttl))
}

/// Mints an HS256 token for local runs and tests.
pub fn mint_local_token(secret: &str, user: &UserId, ttl: Duration) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: user.to_string(),
        exp: now + ttl.as_secs(),
        iss: None,
        aud: None,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing cannot fail")
}

#[cfg(test)]
mod tests;
