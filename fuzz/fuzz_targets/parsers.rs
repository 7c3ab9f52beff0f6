//! Every edge parser on arbitrary text: ids, host names, tags, timestamps, SSH public keys and
//! the list cursors. None may panic; what parses must print back to something that parses to
//! the same value.

#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vmapi_core::PageKey;
use vmapi_http::cursor::CursorCodec;
use vmapi_models::{
    HostName, ObjectId, ProjectId, SshPublicKey, Tag, Tags, TeamId, Timestamp, VmId,
};

/// The fixed list the cursors below belong to (the spec's team and project).
const TEAM: &str = "6548a41f38406c14db33b61e";
const PROJECT: &str = "6548a41f38406c14db33b62c";
const SCOPE: &str = "activity:654a11e60b23ef1b0f36d44e";

fn codec() -> &'static CursorCodec {
    static CODEC: OnceLock<CursorCodec> = OnceLock::new();
    CODEC.get_or_init(|| CursorCodec::new("vm-api-fuzz-cursor-secret"))
}

fn ids(s: &str) {
    let Ok(id) = ObjectId::parse(s) else {
        assert!(VmId::parse(s).is_err() && TeamId::parse(s).is_err());
        return;
    };
    let text = id.to_string();
    assert_eq!(text, s.to_ascii_lowercase(), "ids print as lower-case hex");
    assert_eq!(ObjectId::parse(&text).unwrap(), id);
    assert_eq!(VmId::parse(s).unwrap().0, id);
    assert_eq!(TeamId::parse(s).unwrap().0, id);
    let json = serde_json::to_string(&VmId(id)).unwrap();
    assert_eq!(serde_json::from_str::<VmId>(&json).unwrap(), VmId(id));
}

fn host_name(s: &str) {
    let Ok(name) = HostName::parse(s) else {
        return;
    };
    assert_eq!(name.as_str(), s, "host names are stored as given");
    assert!((1..=HostName::MAX_LEN).contains(&s.len()));
    assert!(s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    assert!(!s.starts_with('-') && !s.ends_with('-'));
    assert_eq!(HostName::parse(&name.to_string()).unwrap(), name);
    let json = serde_json::to_string(&name).unwrap();
    assert_eq!(serde_json::from_str::<HostName>(&json).unwrap(), name);
}

fn tags(s: &str) {
    let mut parsed = Vec::new();
    for part in s.split('\n') {
        if let Ok(tag) = Tag::parse(part) {
            assert_eq!(tag.as_str(), part);
            assert!((1..=Tag::MAX_LEN).contains(&part.chars().count()));
            assert!(!part.chars().any(char::is_control));
            let json = serde_json::to_string(&tag).unwrap();
            assert_eq!(serde_json::from_str::<Tag>(&json).unwrap(), tag);
            parsed.push(tag);
        }
    }
    let n = parsed.len();
    match Tags::new(parsed) {
        Ok(tags) => {
            assert!(n <= Tags::MAX);
            let json = serde_json::to_string(&tags).unwrap();
            assert_eq!(serde_json::from_str::<Tags>(&json).unwrap(), tags);
        }
        Err(_) => assert!(n > Tags::MAX),
    }
}

fn timestamp(s: &str) {
    let Ok(t) = Timestamp::parse(s) else {
        return;
    };
    let text = t.to_string();
    let again = Timestamp::parse(&text)
        .unwrap_or_else(|e| panic!("Timestamp display does not re-parse: {s:?} -> {text:?}: {e}"));
    assert_eq!(again, t, "{s:?} -> {text:?}");
    assert_eq!(Timestamp::from_unix_millis(t.unix_millis()).unwrap(), t);
}

fn ssh_key(s: &str) {
    let Ok(key) = SshPublicKey::parse(s) else {
        return;
    };
    // The canonical form is stored and shown: it must parse to itself.
    let again = SshPublicKey::parse(key.as_str()).expect("a canonical key re-parses");
    assert_eq!(again, key);
    let json = serde_json::to_string(&key).unwrap();
    assert_eq!(serde_json::from_str::<SshPublicKey>(&json).unwrap(), key);
}

fn cursors(s: &str, data: &[u8]) {
    let codec = codec();
    let (team, project) = (
        TeamId::parse(TEAM).unwrap(),
        ProjectId::parse(PROJECT).unwrap(),
    );
    if let Ok(key) = codec.decode(team, project, s) {
        // Only the codec's own cursors verify; re-encoding gives the same text.
        assert_eq!(
            codec.encode(team, project, &key),
            s,
            "a cursor has one form"
        );
    }
    if let Ok(position) = codec.decode_position(SCOPE, s) {
        assert_eq!(
            codec.encode_position(SCOPE, &position),
            s,
            "a cursor has one form"
        );
    }
    // Round trips of cursors built from the input.
    let c = codec.encode_position(SCOPE, s);
    assert_eq!(codec.decode_position(SCOPE, &c).unwrap(), s);
    assert!(codec.decode_position("activity:other", &c).is_err());
    assert!(codec.decode(team, project, &c).is_err());
    if data.len() >= 20 {
        let mut millis = [0u8; 8];
        millis.copy_from_slice(&data[..8]);
        let mut id = String::new();
        for b in &data[8..20] {
            id.push_str(&format!("{b:02x}"));
        }
        if let Ok(created_at) = Timestamp::from_unix_millis(i64::from_le_bytes(millis)) {
            let key = PageKey {
                created_at,
                id: VmId::parse(&id).unwrap(),
            };
            let c = codec.encode(team, project, &key);
            assert_eq!(codec.decode(team, project, &c).unwrap(), key);
            assert!(codec.decode(TeamId::new(), project, &c).is_err());
            assert!(codec.decode_position(SCOPE, &c).is_err());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    common::run(data, || {
        let s = String::from_utf8_lossy(data);
        let s = s.as_ref();
        ids(s);
        host_name(s);
        tags(s);
        // Inside the create and PATCH bodies every one of these is a JSON string, so the exact
        // text (including surrounding white space) reaches the parser.
        timestamp(s);
        ssh_key(s);
        cursors(s, data);
    });
});
