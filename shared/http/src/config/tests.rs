//! The configuration's parsing and its refusals.

use super::*;

#[test]
fn quota_limits_default_and_come_from_the_environment() {
    let none = Env::from_pairs(&[]);
    assert_eq!(quota_limits(&none).unwrap(), QuotaLimits::default());
    let set = Env::from_pairs(&[("QUOTA_MAX_ACTIVE_VMS", "7"), ("QUOTA_MAX_VCPUS", "64")]);
    assert_eq!(
        quota_limits(&set).unwrap(),
        QuotaLimits {
            max_active_vms: 7,
            max_vcpus: 64
        }
    );
    let bad = Env::from_pairs(&[("QUOTA_MAX_VCPUS", "-1")]);
    assert_eq!(
        quota_limits(&bad).unwrap_err().message,
        "QUOTA_MAX_VCPUS must be a whole number from 0, got '-1'"
    );
}

/// [`Config::read`] over the given variables (empty values count as unset).
fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::read(&Env::from_pairs(vars))
}

const LAMBDA: (&str, &str) = ("AWS_LAMBDA_FUNCTION_NAME", "get-vm");
const JWKS: (&str, &str) = ("JWKS_URL", "https://idp.example/.well-known/jwks.json");
const CURSOR: (&str, &str) = ("CURSOR_SECRET", "a-cursor-secret-of-our-own");

#[test]
fn lambda_with_a_key_set_needs_issuer_and_audience() {
    let issuer = ("JWT_ISSUER", "https://idp.example");
    let audience = ("JWT_AUDIENCE", "vm-api");
    for (vars, missing) in [
        (
            vec![LAMBDA, JWKS, CURSOR],
            "JWT_ISSUER and JWT_AUDIENCE are not",
        ),
        (vec![LAMBDA, JWKS, CURSOR, issuer], "JWT_AUDIENCE is not"),
        (vec![LAMBDA, JWKS, CURSOR, audience], "JWT_ISSUER is not"),
        (
            vec![LAMBDA, JWKS, CURSOR, ("JWT_ISSUER", " "), audience],
            "JWT_ISSUER is not",
        ),
    ] {
        let e = config(&vars).unwrap_err().to_string();
        assert!(e.contains(missing), "{vars:?}: {e}");
    }
    let c = config(&[LAMBDA, JWKS, CURSOR, issuer, audience]).unwrap();
    assert_eq!(c.jwt.issuer.as_deref(), Some("https://idp.example"));
    assert_eq!(c.jwt.audience.as_deref(), Some("vm-api"));
    assert!(matches!(
        c.jwt.mode,
        JwtMode::Jwks { ref audience_claim, .. } if audience_claim == "aud"
    ));
    // Outside Lambda a key set without them is accepted (the token must still carry
    // `iss` and `aud`; see auth/mod.rs).
    config(&[JWKS]).unwrap();
    assert!(config(&[LAMBDA, CURSOR]).is_err());
}

const SAM_LOCAL: (&str, &str) = ("AWS_SAM_LOCAL", "true");
const SECRET: (&str, &str) = ("LOCAL_JWT_SECRET", "explicit");

#[test]
fn local_tokens_in_lambda_only_under_sam_local() {
    // Under `sam local` (SAM CLI sets AWS_SAM_LOCAL=true) an explicit secret is used.
    let c = config(&[LAMBDA, CURSOR, SAM_LOCAL, SECRET]).unwrap();
    assert!(matches!(c.jwt.mode, JwtMode::LocalHs256 { ref secret } if secret == "explicit"));
    // A deployed function with LOCAL_JWT_SECRET set refuses to start, whatever else is set.
    for vars in [
        vec![LAMBDA, CURSOR, SECRET],
        vec![LAMBDA, CURSOR, SECRET, ("AWS_SAM_LOCAL", "false")],
        vec![LAMBDA, CURSOR, SECRET, ("AWS_SAM_LOCAL", "1")],
    ] {
        let e = config(&vars).unwrap_err().to_string();
        assert!(
            e.contains("LOCAL_JWT_SECRET is set in a deployed function")
                && e.contains("AWS_SAM_LOCAL=true"),
            "{vars:?}: {e}"
        );
    }
    // An empty LOCAL_JWT_SECRET (the template's default) counts as unset: a deployed
    // function with a key set starts, one without refuses the built-in secret.
    let issuer = ("JWT_ISSUER", "https://idp.example");
    let audience = ("JWT_AUDIENCE", "vm-api");
    let empty = ("LOCAL_JWT_SECRET", "");
    let c = config(&[LAMBDA, CURSOR, JWKS, issuer, audience, empty]).unwrap();
    assert!(matches!(c.jwt.mode, JwtMode::Jwks { .. }));
    let e = config(&[LAMBDA, CURSOR, empty]).unwrap_err().to_string();
    assert!(e.contains("JWKS_URL is not set"), "{e}");
    // A key set wins over a local secret: never HS256 where JWKS_URL is configured.
    let c = config(&[LAMBDA, CURSOR, SAM_LOCAL, SECRET, JWKS, issuer, audience]).unwrap();
    assert!(matches!(c.jwt.mode, JwtMode::Jwks { .. }));
    // Outside Lambda AWS_SAM_LOCAL changes nothing.
    config(&[SECRET]).unwrap();
    config(&[SECRET, SAM_LOCAL]).unwrap();
}

#[test]
fn the_audience_claim_is_configurable() {
    let c = config(&[JWKS, ("JWT_AUDIENCE_CLAIM", "client_id")]).unwrap();
    assert!(matches!(
        c.jwt.mode,
        JwtMode::Jwks { ref audience_claim, .. } if audience_claim == "client_id"
    ));
    let e = config(&[JWKS, ("JWT_AUDIENCE_CLAIM", "client id")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("JWT_AUDIENCE_CLAIM"), "{e}");
}

#[test]
fn the_key_set_url_is_https_or_loopback() {
    for ok in [
        "https://idp.example/.well-known/jwks.json",
        "https://10.0.0.1/jwks",
        "http://127.0.0.1:8080/jwks",
        "http://127.4.5.6/jwks",
        "http://[::1]:9000/jwks",
        "http://localhost/jwks",
        "http://LOCALHOST:1/jwks",
    ] {
        check_key_set_url(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "http://idp.example/.well-known/jwks.json",
        "http://10.0.0.1/jwks",
        "http://128.0.0.1/jwks",
        "http://[::2]/jwks",
        "http://localhost.idp.example/jwks",
        "ftp://idp.example/jwks",
        "file:///etc/jwks.json",
        "idp.example/jwks",
    ] {
        let e = check_key_set_url(bad).unwrap_err().to_string();
        assert!(e.contains("JWKS_URL"), "{bad}: {e}");
    }
    // And at start-up.
    let e = config(&[("JWKS_URL", "http://idp.example/jwks")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("JWKS_URL must be https"), "{e}");
}

#[test]
fn loopback_hosts() {
    for h in [
        "127.0.0.1",
        "127.255.0.9",
        "::1",
        "[::1]",
        "localhost",
        " Localhost ",
    ] {
        assert!(is_loopback_host(h), "{h}");
    }
    for h in [
        "0.0.0.0",
        "::",
        "10.1.2.3",
        "192.168.1.1",
        "example.com",
        "",
        "[::2]",
    ] {
        assert!(!is_loopback_host(h), "{h}");
    }
}

const LOCAL_DDB: Option<&str> = Some("http://127.0.0.1:8000");

#[test]
fn builtin_secrets_are_named() {
    let defaults = config(&[]).unwrap();
    assert_eq!(
        defaults.builtin_secrets(),
        ["LOCAL_JWT_SECRET", "CURSOR_SECRET"]
    );
    let own_token = config(&[("LOCAL_JWT_SECRET", "mine")]).unwrap();
    assert_eq!(own_token.builtin_secrets(), ["CURSOR_SECRET"]);
    let own_cursor = config(&[CURSOR]).unwrap();
    assert_eq!(own_cursor.builtin_secrets(), ["LOCAL_JWT_SECRET"]);
    // Set explicitly to the published value: still the built-in one.
    let explicit_default = config(&[
        ("LOCAL_JWT_SECRET", DEFAULT_LOCAL_JWT_SECRET),
        ("CURSOR_SECRET", DEFAULT_CURSOR_SECRET),
    ])
    .unwrap();
    assert_eq!(explicit_default.builtin_secrets().len(), 2);
    // A key set needs no token secret.
    assert_eq!(
        config(&[JWKS]).unwrap().builtin_secrets(),
        ["CURSOR_SECRET"]
    );
    assert!(config(&[JWKS, CURSOR])
        .unwrap()
        .builtin_secrets()
        .is_empty());
}

#[test]
fn builtin_secrets_only_on_loopback_with_a_local_table() {
    let defaults = config(&[]).unwrap();
    // Loopback host and local table: accepted.
    for host in ["127.0.0.1", "::1", "[::1]", "localhost"] {
        for endpoint in [
            "http://127.0.0.1:8000",
            "http://localhost:8000",
            "http://[::1]:8000/",
        ] {
            defaults
                .check_builtin_secrets(host, Some(endpoint))
                .unwrap_or_else(|e| panic!("{host} {endpoint}: {e}"));
        }
    }
    // Not a loopback host.
    let e = defaults
        .check_builtin_secrets("0.0.0.0", LOCAL_DDB)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("LOCAL_JWT_SECRET and CURSOR_SECRET") && e.contains("binds '0.0.0.0'"),
        "{e}"
    );
    assert!(!e.contains("DynamoDB endpoint"), "{e}");
    // No DynamoDB endpoint (unset or empty): a real table.
    for endpoint in [None, Some(""), Some("  ")] {
        let e = defaults
            .check_builtin_secrets("127.0.0.1", endpoint)
            .unwrap_err()
            .to_string();
        assert!(e.contains("AWS_ENDPOINT_URL_DYNAMODB is not set"), "{e}");
        assert!(!e.contains("binds"), "{e}");
    }
    // An endpoint elsewhere, or unparsable.
    for endpoint in [
        "https://dynamodb.eu-west-1.amazonaws.com",
        "http://10.0.0.5:8000",
        "127.0.0.1:8000",
    ] {
        let e = defaults
            .check_builtin_secrets("127.0.0.1", Some(endpoint))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not on a loopback host"), "{endpoint}: {e}");
    }
    // Both reasons at once.
    let e = defaults
        .check_builtin_secrets("192.168.1.10", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("binds") && e.contains("not set"), "{e}");
    // Only the secret in use is named.
    let own_token = config(&[("LOCAL_JWT_SECRET", "mine")]).unwrap();
    let e = own_token
        .check_builtin_secrets("0.0.0.0", LOCAL_DDB)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("built-in CURSOR_SECRET") && !e.contains("LOCAL_JWT_SECRET"),
        "{e}"
    );
    let own_cursor = config(&[CURSOR]).unwrap();
    let e = own_cursor
        .check_builtin_secrets("127.0.0.1", None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("built-in LOCAL_JWT_SECRET") && !e.contains("CURSOR_SECRET ("),
        "{e}"
    );
    // Secrets of one's own pass anywhere.
    let own = config(&[("LOCAL_JWT_SECRET", "mine"), CURSOR]).unwrap();
    own.check_builtin_secrets("0.0.0.0", None).unwrap();
    own.check_builtin_secrets("203.0.113.7", Some("https://dynamodb.example"))
        .unwrap();
    config(&[JWKS, CURSOR])
        .unwrap()
        .check_builtin_secrets("0.0.0.0", None)
        .unwrap();
}
