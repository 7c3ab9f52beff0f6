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

/// A position in another list (a VM's history): the list's scope and the opaque position.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Position {
    s: String,
    q: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
        self.sign(&payload)
    }

    /// The cursor for `position` in the list named `scope` (e.g. `activity:{vmId}`).
    pub fn encode_position(&self, scope: &str, position: &str) -> String {
        let payload = serde_json::to_vec(&Position {
            s: scope.to_string(),
            q: position.to_string(),
        })
        .expect("cursor payload serializes");
        self.sign(&payload)
    }

    /// Checks a cursor of [`CursorCodec::encode_position`] and that it belongs to `scope`.
    pub fn decode_position(&self, scope: &str, cursor: &str) -> Result<String, String> {
        let bad = || {
            "cursor is not valid for this list (use the value from X-Next-Cursor as is)".to_string()
        };
        let payload = self.verify(cursor).ok_or_else(bad)?;
        let p: Position = serde_json::from_slice(&payload).map_err(|_| bad())?;
        if p.s != scope {
            return Err(bad());
        }
        Ok(p.q)
    }

    fn sign(&self, payload: &[u8]) -> String {
        let tag = hmac::sign(&self.key, payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    fn verify(&self, cursor: &str) -> Option<Vec<u8>> {
        let (payload, tag) = cursor.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.key, &payload, &tag).ok()?;
        Some(payload)
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
        let payload = self.verify(cursor).ok_or_else(bad)?;
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

    #[test]
    fn positions_are_bound_to_their_list() {
        let codec = CursorCodec::new("s");
        let c = codec.encode_position("activity:a", "EVENT#2026#ab");
        assert_eq!(
            codec.decode_position("activity:a", &c).unwrap(),
            "EVENT#2026#ab"
        );
        assert!(codec.decode_position("activity:b", &c).is_err());
        // A VM-list cursor is no position, and a position is no VM-list cursor.
        let list = codec.encode(
            TeamId::new(),
            ProjectId::new(),
            &PageKey {
                created_at: Timestamp::now(),
                id: VmId::new(),
            },
        );
        assert!(codec.decode_position("activity:a", &list).is_err());
        assert!(codec.decode(TeamId::new(), ProjectId::new(), &c).is_err());
    }
}
