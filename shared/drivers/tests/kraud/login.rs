//! The login injection: keys and the password hash in the compose, never a plaintext password.

use vmapi_core::cloud::{CloudDriver, DriverError};

use crate::common::{driver, spec, HASH, KEY, PASSWORD};
use crate::kraud_api::{KraudApi, Options};

/// Standard base64 decoding (the driver's login values are base64 literals).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|b| **b == b'=').count();
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { value(*b)? };
            n = (n << 6) | v;
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

/// Every `echo <base64> | base64 -d` value of a login script, decoded.
fn decoded_values(script: &str) -> Vec<String> {
    script
        .split("echo ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(base64_decode)
        .map(|b| String::from_utf8(b).expect("UTF-8"))
        .collect()
}

#[tokio::test]
async fn the_compose_carries_keys_and_the_hash_never_a_plaintext_password() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    driver.create(&spec(None)).await.expect("create");
    let launch = &api.launches()[0];

    for text in [&launch.compose, &launch.env] {
        assert!(!text.contains(PASSWORD), "plaintext password sent");
    }
    assert_eq!(launch.entrypoint.len(), 3, "{:?}", launch.entrypoint);
    assert_eq!(
        &launch.entrypoint[..2],
        &["/bin/sh".to_string(), "-c".to_string()]
    );
    let script = &launch.entrypoint[2];
    assert!(script.trim_end().ends_with("exec /sbin/init"), "{script}");
    assert!(script.contains("chpasswd -e"));
    assert!(script.contains("passwd -l root"));
    let values = decoded_values(script);
    assert!(
        values.iter().all(|v| !v.contains(PASSWORD)),
        "plaintext password in {values:?}"
    );
    assert!(
        values.contains(&format!("root:{HASH}\n")),
        "hash in {values:?}"
    );
    assert!(values.contains(&format!("{KEY}\n")), "key in {values:?}");
    assert!(values.iter().any(|v| v.contains("PermitRootLogin yes")));

    // A key-only login: no password line at all, password authentication off.
    let mut keys_only = spec(None);
    keys_only.login.password_hash = None;
    driver.create(&keys_only).await.expect("create");
    let script = &api.launches()[1].entrypoint[2];
    assert!(!script.contains("chpasswd"));
    assert!(decoded_values(script)
        .iter()
        .any(|v| v.contains("PasswordAuthentication no")));

    // A "hash" that is not one (it could be a plaintext password) is refused, unsent.
    let mut wrong = spec(None);
    wrong.login.password_hash = Some(PASSWORD.into());
    let err = driver.create(&wrong).await.expect_err("not a crypt hash");
    assert!(matches!(err, DriverError::InvalidSpec(_)), "{err:?}");
    assert_eq!(api.launches().len(), 2);
    assert!(api.requests().iter().all(|r| !r.contains(PASSWORD)));
}
