//! The authenticator against its own key sets and a local JWKS server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::http::{HeaderName, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
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
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
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

/// A key set on a loopback port: `url` serves `{"keys": [...]}` (the current `keys`, with
/// `Cache-Control: <cache_control>` when given) and counts fetches; `redirect` answers 302
/// to `url`.
struct KeySetServer {
    url: String,
    redirect: String,
    hits: Arc<AtomicUsize>,
    keys: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl KeySetServer {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn key_set_server(
    keys: Vec<serde_json::Value>,
    cache_control: Option<&'static str>,
) -> KeySetServer {
    let hits = Arc::new(AtomicUsize::new(0));
    let keys = Arc::new(Mutex::new(keys));
    let (counter, served) = (hits.clone(), keys.clone());
    let app = axum::Router::new()
        .route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let body = json!({ "keys": served.lock().unwrap().clone() });
                let headers: Vec<(HeaderName, &'static str)> = cache_control
                    .map(|v| (axum::http::header::CACHE_CONTROL, v))
                    .into_iter()
                    .collect();
                async move { (AppendHeaders(headers), axum::Json(body)).into_response() }
            }),
        )
        .route(
            "/redirect",
            axum::routing::get(|| async {
                (
                    StatusCode::FOUND,
                    [(axum::http::header::LOCATION, "/.well-known/jwks.json")],
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    KeySetServer {
        url: format!("{base}/.well-known/jwks.json"),
        redirect: format!("{base}/redirect"),
        hits,
        keys,
    }
}

/// Serves `{"keys": [...]}` on a loopback port and counts fetches.
async fn jwks_server(keys: Vec<serde_json::Value>) -> (String, Arc<AtomicUsize>) {
    let server = key_set_server(keys, None).await;
    (server.url, server.hits)
}

fn jwks_config(url: String, audience_claim: &str) -> JwtConfig {
    JwtConfig {
        mode: JwtMode::Jwks {
            url,
            audience_claim: audience_claim.into(),
        },
        issuer: Some("https://issuer.example".into()),
        audience: Some("vm-api".into()),
        leeway_secs: 5,
    }
}

fn jwks_auth(url: String) -> Authenticator {
    Authenticator::new(jwks_config(url, "aud"))
}

/// Claims that pass [`jwks_auth`]'s checks.
fn good_claims() -> serde_json::Value {
    let now = jsonwebtoken::get_current_timestamp();
    json!({"sub": "user-1", "exp": now + 60, "iss": "https://issuer.example", "aud": "vm-api"})
}

fn bearer(token: String) -> String {
    format!("Bearer {token}")
}

/// The message of an `Invalid` refusal (panics on anything else).
fn refusal(r: Result<UserId, AuthError>) -> String {
    match r {
        Err(AuthError::Invalid(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn jwks_tokens_are_verified_with_issuer_and_audience() {
    let key = signer("k1");
    let (url, hits) = jwks_server(vec![key.jwk.clone()]).await;
    let auth = jwks_auth(url);
    let now = jsonwebtoken::get_current_timestamp();
    let good =
        json!({"sub": "user-1", "exp": now + 60, "iss": "https://issuer.example", "aud": "vm-api"});
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

impl Authenticator {
    /// Makes the cached key set look `by` older (instead of waiting).
    async fn age_key_set(&self, by: Duration) {
        let Keys::Jwks { cache, .. } = &*self.keys else {
            panic!("not in key-set mode")
        };
        let mut c = cache.write().await;
        let at = c.fetched.expect("a fetched key set");
        c.fetched = Some(
            at.checked_sub(by)
                .expect("the monotonic clock is older than that"),
        );
    }

    /// The lifetime of the cached key set.
    async fn key_set_lifetime(&self) -> Duration {
        let Keys::Jwks { cache, .. } = &*self.keys else {
            panic!("not in key-set mode")
        };
        cache.read().await.ttl
    }
}

#[tokio::test]
async fn key_set_tokens_need_iss_and_aud_even_when_no_value_is_configured() {
    let key = signer("k1");
    let (url, _) = jwks_server(vec![key.jwk.clone()]).await;
    let configured = jwks_auth(url.clone());
    // Outside Lambda a key set may come without JWT_ISSUER / JWT_AUDIENCE: the claims
    // must be there all the same.
    let unconfigured = Authenticator::new(JwtConfig {
        issuer: None,
        audience: None,
        ..jwks_config(url, "aud")
    });
    for auth in [&configured, &unconfigured] {
        let user = auth
            .authenticate(Some(&bearer(es256(&key, "k1", good_claims()))))
            .await
            .unwrap();
        assert_eq!(user.as_str(), "user-1");
        for claim in ["iss", "aud"] {
            let mut claims = good_claims();
            claims.as_object_mut().unwrap().remove(claim);
            let why = refusal(
                auth.authenticate(Some(&bearer(es256(&key, "k1", claims))))
                    .await,
            );
            assert!(
                why.contains(&format!("Missing required claim: {claim}")),
                "{why}"
            );
        }
    }
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused() {
    let key = signer("k1");
    let (url, _) = jwks_server(vec![key.jwk.clone()]).await;
    let auth = jwks_auth(url);
    let now = jsonwebtoken::get_current_timestamp();
    let with_nbf = |nbf: u64| {
        let mut claims = good_claims();
        claims["nbf"] = json!(nbf);
        bearer(es256(&key, "k1", claims))
    };
    let why = refusal(auth.authenticate(Some(&with_nbf(now + 60))).await);
    assert!(why.contains("ImmatureSignature"), "{why}");
    // Within the leeway (5 s), or already valid: accepted.
    auth.authenticate(Some(&with_nbf(now + 2))).await.unwrap();
    auth.authenticate(Some(&with_nbf(now - 60))).await.unwrap();
    // Local tokens too.
    let local = Authenticator::new(JwtConfig {
        mode: JwtMode::LocalHs256 { secret: "s".into() },
        issuer: None,
        audience: None,
        leeway_secs: 5,
    });
    let hs = |nbf: u64| {
        let claims = json!({"sub": "me", "exp": now + 120, "nbf": nbf});
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        bearer(token)
    };
    refusal(local.authenticate(Some(&hs(now + 60))).await);
    local.authenticate(Some(&hs(now - 1))).await.unwrap();
}

#[tokio::test]
async fn symmetric_keys_in_the_key_set_are_never_used() {
    let key = signer("ec");
    let oct = json!({"kty": "oct", "kid": "k1", "k": URL_SAFE_NO_PAD.encode(b"a shared secret"), "alg": "HS256"});
    let (url, _) = jwks_server(vec![oct, key.jwk.clone()]).await;
    let auth = jwks_auth(url);
    // A token that names the symmetric key is refused for that reason.
    let why = refusal(
        auth.authenticate(Some(&bearer(es256(&key, "k1", good_claims()))))
            .await,
    );
    assert!(why.contains("symmetric"), "{why}");
    // An HS256 token signed with it is refused as well.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(
        &header,
        &good_claims(),
        &EncodingKey::from_secret(b"a shared secret"),
    )
    .unwrap();
    refusal(auth.authenticate(Some(&bearer(hs))).await);
    // Without a `kid`, the one asymmetric key is the only candidate: the symmetric one
    // does not count.
    let no_kid = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &good_claims(),
        &EncodingKey::from_ec_der(&key.pkcs8),
    )
    .unwrap();
    auth.authenticate(Some(&bearer(no_kid))).await.unwrap();
}

#[tokio::test]
async fn keys_whose_alg_or_use_do_not_fit_the_token_are_refused() {
    let key = signer("k1");
    let mut other_alg = key.jwk.clone();
    other_alg["kid"] = json!("alg");
    other_alg["alg"] = json!("ES384");
    let mut unknown_alg = key.jwk.clone();
    unknown_alg["kid"] = json!("odd-alg");
    unknown_alg["alg"] = json!("XY999");
    let mut encryption = key.jwk.clone();
    encryption["kid"] = json!("enc");
    encryption["use"] = json!("enc");
    let mut bare = key.jwk.clone();
    bare["kid"] = json!("bare");
    bare.as_object_mut().unwrap().remove("alg");
    bare.as_object_mut().unwrap().remove("use");
    // Two keys with one kid: the one fit for signatures is used.
    let mut twin_enc = key.jwk.clone();
    twin_enc["kid"] = json!("twin");
    twin_enc["use"] = json!("enc");
    let mut twin_sig = key.jwk.clone();
    twin_sig["kid"] = json!("twin");
    let (url, _) = jwks_server(vec![
        other_alg,
        unknown_alg,
        encryption,
        bare,
        twin_enc,
        twin_sig,
    ])
    .await;
    let auth = jwks_auth(url);
    let token = |kid: &str| bearer(es256(&key, kid, good_claims()));
    let why = refusal(auth.authenticate(Some(&token("alg"))).await);
    assert!(why.contains("ES384") && why.contains("ES256"), "{why}");
    refusal(auth.authenticate(Some(&token("odd-alg"))).await);
    let why = refusal(auth.authenticate(Some(&token("enc"))).await);
    assert!(why.contains("\"enc\""), "{why}");
    // No `alg` and no `use`: the key fits.
    auth.authenticate(Some(&token("bare"))).await.unwrap();
    auth.authenticate(Some(&token("twin"))).await.unwrap();
}

#[tokio::test]
async fn the_audience_may_come_in_client_id() {
    let key = signer("k1");
    let (url, _) = jwks_server(vec![key.jwk.clone()]).await;
    let auth = Authenticator::new(jwks_config(url, "client_id"));
    let token = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = good_claims();
        claims.as_object_mut().unwrap().remove("aud");
        claims["client_id"] = json!("vm-api");
        edit(&mut claims);
        bearer(es256(&key, "k1", claims))
    };
    // Cognito's access tokens: `client_id`, no `aud`.
    let user = auth.authenticate(Some(&token(&|_| {}))).await.unwrap();
    assert_eq!(user.as_str(), "user-1");
    auth.authenticate(Some(&token(&|c| c["client_id"] = json!(["x", "vm-api"]))))
        .await
        .unwrap();
    let why = refusal(
        auth.authenticate(Some(&token(&|c| c["client_id"] = json!("other-app"))))
            .await,
    );
    assert!(why.contains("client_id"), "{why}");
    let why = refusal(
        auth.authenticate(Some(&token(&|c| {
            c.as_object_mut().unwrap().remove("client_id");
            c["aud"] = json!("vm-api");
        })))
        .await,
    );
    assert!(why.contains("missing required claim 'client_id'"), "{why}");
    // `iss` is still required.
    let why = refusal(
        auth.authenticate(Some(&token(&|c| {
            c.as_object_mut().unwrap().remove("iss");
        })))
        .await,
    );
    assert!(why.contains("iss"), "{why}");
}

#[tokio::test]
async fn a_redirecting_key_set_url_is_not_followed() {
    let key = signer("k1");
    let server = key_set_server(vec![key.jwk.clone()], None).await;
    let r = jwks_auth(server.redirect.clone())
        .authenticate(Some(&bearer(es256(&key, "k1", good_claims()))))
        .await;
    let Err(AuthError::KeysUnavailable(cause)) = r else {
        panic!("expected KeysUnavailable, got {r:?}");
    };
    assert!(cause.to_string().contains("302"), "{cause}");
    assert_eq!(server.hits(), 0, "the redirect was followed");
}

#[tokio::test]
async fn a_plain_http_key_set_url_off_loopback_is_never_fetched() {
    let key = signer("k1");
    let r = jwks_auth("http://issuer.example/.well-known/jwks.json".into())
        .authenticate(Some(&bearer(es256(&key, "k1", good_claims()))))
        .await;
    let Err(AuthError::KeysUnavailable(cause)) = r else {
        panic!("expected KeysUnavailable, got {r:?}");
    };
    assert!(
        cause.to_string().contains("JWKS_URL must be https"),
        "{cause}"
    );
}

#[test]
fn key_set_lifetime_follows_cache_control_within_1_to_10_minutes() {
    let secs = |v: Option<&str>| key_set_ttl(v).as_secs();
    assert_eq!(secs(Some("max-age=60")), 60);
    assert_eq!(secs(Some("public, max-age=120, must-revalidate")), 120);
    assert_eq!(secs(Some("Max-Age=\"90\"")), 90);
    assert_eq!(secs(Some("max-age=5")), 60);
    assert_eq!(secs(Some("max-age=0")), 60);
    assert_eq!(secs(Some("no-cache")), 60);
    assert_eq!(secs(Some("max-age=3600, no-store")), 60);
    assert_eq!(secs(Some("max-age=86400")), 600);
    assert_eq!(secs(Some("max-age=99999999999999999999999")), 600);
    // No header, or no usable max-age: 5 minutes.
    assert_eq!(secs(None), 300);
    assert_eq!(secs(Some("")), 300);
    assert_eq!(secs(Some("public")), 300);
    assert_eq!(secs(Some("max-age=soon")), 300);
    assert_eq!(secs(Some("max-age=-5")), 300);
    assert_eq!(secs(Some("max-age")), 300);
    assert_eq!(secs(Some("s-maxage=60")), 300);
}

#[tokio::test]
async fn a_key_set_with_max_age_60_is_refetched_after_60_s() {
    let key = signer("k1");
    let server = key_set_server(vec![key.jwk.clone()], Some("public, max-age=60")).await;
    let auth = jwks_auth(server.url.clone());
    let token = || bearer(es256(&key, "k1", good_claims()));
    auth.authenticate(Some(&token())).await.unwrap();
    assert_eq!(auth.key_set_lifetime().await, Duration::from_secs(60));
    auth.age_key_set(Duration::from_secs(58)).await;
    auth.authenticate(Some(&token())).await.unwrap();
    assert_eq!(server.hits(), 1, "refetched before 60 s");
    auth.age_key_set(Duration::from_secs(3)).await;
    auth.authenticate(Some(&token())).await.unwrap();
    assert_eq!(server.hits(), 2, "not refetched after 60 s");
}

#[tokio::test]
async fn a_removed_key_is_refused_once_the_key_set_expires() {
    let key = signer("k1");
    let next = signer("k2");
    let server = key_set_server(vec![key.jwk.clone()], Some("max-age=60")).await;
    let auth = jwks_auth(server.url.clone());
    let token = || bearer(es256(&key, "k1", good_claims()));
    auth.authenticate(Some(&token())).await.unwrap();
    // The identity provider rotates k1 out.
    *server.keys.lock().unwrap() = vec![next.jwk.clone()];
    auth.authenticate(Some(&token())).await.unwrap();
    auth.age_key_set(Duration::from_secs(61)).await;
    let why = refusal(auth.authenticate(Some(&token())).await);
    assert!(why.contains("unknown signing key"), "{why}");
    auth.authenticate(Some(&bearer(es256(&next, "k2", good_claims()))))
        .await
        .unwrap();
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn without_cache_control_a_key_set_lives_5_minutes() {
    let key = signer("k1");
    let server = key_set_server(vec![key.jwk.clone()], None).await;
    let auth = jwks_auth(server.url.clone());
    let token = || bearer(es256(&key, "k1", good_claims()));
    auth.authenticate(Some(&token())).await.unwrap();
    assert_eq!(auth.key_set_lifetime().await, Duration::from_secs(300));
    auth.age_key_set(Duration::from_secs(298)).await;
    auth.authenticate(Some(&token())).await.unwrap();
    assert_eq!(server.hits(), 1);
    auth.age_key_set(Duration::from_secs(3)).await;
    auth.authenticate(Some(&token())).await.unwrap();
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_every_30_s() {
    let key = signer("k1");
    let server = key_set_server(vec![key.jwk.clone()], Some("max-age=600")).await;
    let auth = jwks_auth(server.url.clone());
    auth.authenticate(Some(&bearer(es256(&key, "k1", good_claims()))))
        .await
        .unwrap();
    let unknown = || bearer(es256(&key, "k9", good_claims()));
    refusal(auth.authenticate(Some(&unknown())).await);
    assert_eq!(server.hits(), 1, "refetched within 30 s");
    auth.age_key_set(Duration::from_secs(31)).await;
    refusal(auth.authenticate(Some(&unknown())).await);
    assert_eq!(server.hits(), 2, "not refetched after 30 s");
    refusal(auth.authenticate(Some(&unknown())).await);
    assert_eq!(server.hits(), 2);
}
