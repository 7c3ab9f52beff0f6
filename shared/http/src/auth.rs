//! Bearer-token authentication: JWKS in production, HS256 locally.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{
    decode, decode_header, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use vmapi_models::UserId;

use crate::config::{JwtConfig, JwtMode};

/// How long a fetched key set is trusted before it is fetched again.
const JWKS_TTL: Duration = Duration::from_secs(600);
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

#[derive(Default)]
struct JwksCache {
    keys: Option<JwkSet>,
    fetched: Option<Instant>,
}

enum Keys {
    Hs256(DecodingKey),
    Jwks {
        url: String,
        http: reqwest::Client,
        cache: RwLock<JwksCache>,
    },
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
            JwtMode::Jwks { url } => Keys::Jwks {
                url: url.clone(),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(3))
                    .build()
                    .unwrap_or_default(),
                cache: RwLock::new(JwksCache::default()),
            },
        };
        Authenticator {
            keys: Arc::new(keys),
            config: Arc::new(config),
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.config.leeway_secs.min(5);
        v.set_required_spec_claims(&["exp", "sub"]);
        match &self.config.audience {
            Some(aud) => v.set_audience(&[aud]),
            None => v.validate_aud = false,
        }
        if let Some(iss) = &self.config.issuer {
            v.set_issuer(&[iss]);
        }
        v
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
                decode::<Claims>(token, key, &self.validation(Algorithm::HS256))
            }
            Keys::Jwks { .. } => {
                if !ASYMMETRIC.contains(&header.alg) {
                    return Err(AuthError::Invalid(format!(
                        "algorithm {:?} is not accepted",
                        header.alg
                    )));
                }
                let jwk = self.find_key(header.kid.as_deref()).await?;
                let key = DecodingKey::from_jwk(&jwk)
                    .map_err(|e| AuthError::Invalid(format!("unusable key: {e}")))?;
                decode::<Claims>(token, &key, &self.validation(header.alg))
            }
        }
        .map_err(|e| AuthError::Invalid(e.to_string()))?
        .claims;
        UserId::parse(&claims.sub).map_err(|e| AuthError::Invalid(format!("claim 'sub': {e}")))
    }

    async fn find_key(&self, kid: Option<&str>) -> Result<Jwk, AuthError> {
        let Keys::Jwks { url, http, cache } = &*self.keys else {
            return Err(AuthError::Invalid("no key set configured".into()));
        };
        let pick = |set: &JwkSet| -> Option<Jwk> {
            match kid {
                Some(kid) => set.find(kid).cloned(),
                None if set.keys.len() == 1 => set.keys.first().cloned(),
                None => None,
            }
        };
        {
            let c = cache.read().await;
            if let (Some(set), Some(at)) = (&c.keys, c.fetched) {
                if at.elapsed() < JWKS_TTL {
                    if let Some(k) = pick(set) {
                        return Ok(k);
                    }
                    if at.elapsed() < JWKS_MIN_REFRESH {
                        return Err(AuthError::Invalid("unknown signing key".into()));
                    }
                }
            }
        }
        let mut c = cache.write().await;
        let fresh = c.fetched.is_some_and(|at| at.elapsed() < JWKS_MIN_REFRESH);
        if !fresh {
            let set: JwkSet = http
                .get(url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| AuthError::KeysUnavailable(e.into()))?
                .json()
                .await
                .map_err(|e| AuthError::KeysUnavailable(e.into()))?;
            c.keys = Some(set);
            c.fetched = Some(Instant::now());
        }
        c.keys
            .as_ref()
            .and_then(pick)
            .ok_or_else(|| AuthError::Invalid("unknown signing key".into()))
    }
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
