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
        /// Built on the first fetch: it loads the trust store, which init need not pay for.
        http: std::sync::OnceLock<reqwest::Client>,
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
                http: std::sync::OnceLock::new(),
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
                .get_or_init(|| {
                    reqwest::Client::builder()
                        .timeout(Duration::from_secs(3))
                        .build()
                        .unwrap_or_default()
                })
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    use super::*;
    use crate::config::{JwtConfig, JwtMode};

    struct Signer {
        pkcs8: Vec<u8>,
        jwk: serde_json::Value,
    }

    fn signer(kid: &str) -> Signer {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Signer {
            pkcs8: doc.as_ref().to_vec(),
            jwk,
        }
    }

    fn es256(s: &Signer, kid: &str, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&s.pkcs8)).unwrap()
    }

    /// Serves `{"keys": [...]}` on a loopback port and counts fetches.
    async fn jwks_server(
        keys: Vec<serde_json::Value>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = json!({ "keys": keys.clone() });
                async move { axum::Json(body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, hits)
    }

    fn jwks_auth(url: String) -> Authenticator {
        Authenticator::new(JwtConfig {
            mode: JwtMode::Jwks { url },
            issuer: Some("https://issuer.example".into()),
            audience: Some("vm-api".into()),
            leeway_secs: 5,
        })
    }

    #[tokio::test]
    async fn jwks_tokens_are_verified_with_issuer_and_audience() {
        let key = signer("k1");
        let (url, hits) = jwks_server(vec![key.jwk.clone()]).await;
        let auth = jwks_auth(url);
        let now = jsonwebtoken::get_current_timestamp();
        let good = json!({"sub": "user-1", "exp": now + 60, "iss": "https://issuer.example", "aud": "vm-api"});
        let bearer = |t: String| format!("Bearer {t}");

        let user = auth
            .authenticate(Some(&bearer(es256(&key, "k1", good.clone()))))
            .await
            .unwrap();
        assert_eq!(user.as_str(), "user-1");
        auth.authenticate(Some(&bearer(es256(&key, "k1", good.clone()))))
            .await
            .unwrap();
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "key set cached"
        );

        let mut wrong_iss = good.clone();
        wrong_iss["iss"] = json!("https://evil.example");
        let mut wrong_aud = good.clone();
        wrong_aud["aud"] = json!("other-api");
        let mut expired = good.clone();
        expired["exp"] = json!(now - 30);
        for claims in [wrong_iss, wrong_aud, expired] {
            let r = auth
                .authenticate(Some(&bearer(es256(&key, "k1", claims.clone()))))
                .await;
            assert!(matches!(r, Err(AuthError::Invalid(_))), "{claims}: {r:?}");
        }
        // Another key with a known kid, an unknown kid, and HS256 are all refused.
        let other = signer("k1");
        assert!(matches!(
            auth.authenticate(Some(&bearer(es256(&other, "k1", good.clone()))))
                .await,
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            auth.authenticate(Some(&bearer(es256(&key, "k9", good.clone()))))
                .await,
            Err(AuthError::Invalid(_))
        ));
        let hs = mint_local_token(
            "secret",
            &UserId::parse("user-1").unwrap(),
            Duration::from_secs(60),
        );
        assert!(matches!(
            auth.authenticate(Some(&bearer(hs))).await,
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            auth.authenticate(None).await,
            Err(AuthError::Missing)
        ));
        assert!(matches!(
            auth.authenticate(Some("Basic abc")).await,
            Err(AuthError::Missing)
        ));
    }

    #[tokio::test]
    async fn unreachable_key_set_is_unavailable_not_unauthorized() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        drop(listener);
        let key = signer("k1");
        let now = jsonwebtoken::get_current_timestamp();
        let token = es256(
            &key,
            "k1",
            json!({"sub": "u", "exp": now + 60, "iss": "https://issuer.example", "aud": "vm-api"}),
        );
        let r = jwks_auth(url)
            .authenticate(Some(&format!("Bearer {token}")))
            .await;
        assert!(matches!(r, Err(AuthError::KeysUnavailable(_))), "{r:?}");
    }

    #[tokio::test]
    async fn local_tokens_need_sub_and_exp_and_the_secret() {
        let auth = Authenticator::new(JwtConfig {
            mode: JwtMode::LocalHs256 { secret: "s".into() },
            issuer: None,
            audience: None,
            leeway_secs: 5,
        });
        let good = mint_local_token("s", &UserId::parse("me").unwrap(), Duration::from_secs(60));
        assert_eq!(
            auth.authenticate(Some(&format!("bearer {good}")))
                .await
                .unwrap()
                .as_str(),
            "me"
        );
        let other = mint_local_token("t", &UserId::parse("me").unwrap(), Duration::from_secs(60));
        assert!(auth
            .authenticate(Some(&format!("Bearer {other}")))
            .await
            .is_err());
    }
}
