//! Opaque, tamper-evident list cursors: the position plus the list it belongs to, HMAC-signed.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use vmapi_core::PageKey;
use vmapi_models::{ProjectId, TeamId, Timestamp, VmId};

/// Signs and verifies cursors.
#[derive(Clone)]
pub struct CursorCodec {
    key: hmac::Key,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    t: TeamId,
    p: ProjectId,
    c: i64,
    i: VmId,
}

impl CursorCodec {
    /// A codec with a secret shared by every function.
    pub fn new(secret: &str) -> Self {
        CursorCodec {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        }
    }

    /// The cursor for the page after `key` in the given list.
    pub fn encode(&self, team: TeamId, project: ProjectId, key: &PageKey) -> String {
        let payload = serde_json::to_vec(&Payload {
            t: team,
            p: project,
            c: key.created_at.unix_millis(),
            i: key.id,
        })
        .expect("cursor payload serializes");
        let tag = hmac::sign(&self.key, &payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// Checks a cursor's signature and that it belongs to this list.
    pub fn decode(
        &self,
        team: TeamId,
        project: ProjectId,
        cursor: &str,
    ) -> Result<PageKey, String> {
        let bad = || {
            "cursor is not valid for this list (use the value from X-Next-Cursor as is)".to_string()
        };
        let (payload, tag) = cursor.split_once('.').ok_or_else(bad)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| bad())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad())?;
        hmac::verify(&self.key, &payload, &tag).map_err(|_| bad())?;
        let p: Payload = serde_json::from_slice(&payload).map_err(|_| bad())?;
        if p.t != team || p.p != project {
            return Err(bad());
        }
        Ok(PageKey {
            created_at: Timestamp::from_unix_millis(p.c).map_err(|_| bad())?,
            id: p.i,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let codec = CursorCodec::new("s");
        let (t, p) = (TeamId::new(), ProjectId::new());
        let key = PageKey {
            created_at: Timestamp::now(),
            id: VmId::new(),
        };
        let c = codec.encode(t, p, &key);
        assert_eq!(codec.decode(t, p, &c).unwrap(), key);
        assert!(
            codec.decode(t, ProjectId::new(), &c).is_err(),
            "bound to its list"
        );
        assert!(
            CursorCodec::new("other").decode(t, p, &c).is_err(),
            "bound to its secret"
        );
        let mut tampered = c.clone().into_bytes();
        tampered[3] ^= 1;
        assert!(codec
            .decode(t, p, &String::from_utf8(tampered).unwrap())
            .is_err());
        assert!(codec.decode(t, p, "garbage").is_err());
    }
}
