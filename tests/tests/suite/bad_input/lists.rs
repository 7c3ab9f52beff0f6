//! List requests with bad query parameters or path ids.

use reqwest::Method;
use vmapi_tests::*;

use super::case::{case, Case, Payload, Want};

/// List requests with bad query parameters or path ids.
pub(super) fn list_cases() -> Vec<Case> {
    let base = format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines");
    let param = Want::Code(400, "INVALID_PARAMETER");
    let mut out = Vec::new();
    let long_cursor = "A".repeat(8000);
    for query in [
        "limit=0",
        "limit=-1",
        "limit=201",
        "limit=1000000000000000000000000",
        "limit=abc",
        "limit=",
        "limit=1.5",
        "limit=%205",
        "limit=0x10",
        "limit=1e2",
        "limit=%ZZ",
        "limit=1&limit=2",
        "cursor=",
        "cursor=garbage",
        "cursor=%FF%FE",
        "cursor=AAAAAAAAAAAAAAAAAAAAAAAA",
        "cursor=eyJ0ZWFtIjoiNjU0OGE0MWYzODQwNmMxNGRiMzNiNjFlIn0",
        "cursor=..%2F..%2Fetc%2Fpasswd",
        &format!("cursor={long_cursor}"),
        "cursor=a&cursor=b",
        "color=red",
        "LIMIT=5",
        "limit=5&sort=name",
        "limit",
        "=5",
    ] {
        out.push(case(
            format!("list ?{query:.60}"),
            Method::GET,
            &format!("{base}?{query}"),
            Payload::Empty,
            param,
        ));
    }
    for (what, team, project, want) in [
        ("team not an id", "x", PROJECT, param),
        ("project not an id", TEAM, "y", param),
        ("team invalid percent-encoding", "%C3%28", PROJECT, param),
        ("project invalid percent-encoding", TEAM, "%FF", param),
        (
            "team of 25 digits",
            "6548a41f38406c14db33b61e0",
            PROJECT,
            param,
        ),
        (
            "unknown team",
            "6548a41f38406c14db33b6ff",
            PROJECT,
            Want::Code(404, "TEAM_NOT_FOUND"),
        ),
        (
            "unknown project",
            TEAM,
            "6548a41f38406c14db33b6ff",
            Want::Code(404, "PROJECT_NOT_FOUND"),
        ),
        (
            "another team's project",
            TEAM,
            OTHER_PROJECT,
            Want::Code(404, "PROJECT_NOT_FOUND"),
        ),
        (
            "another team",
            OTHER_TEAM,
            OTHER_PROJECT,
            Want::Code(404, "TEAM_NOT_FOUND"),
        ),
    ] {
        out.push(case(
            format!("list: {what}"),
            Method::GET,
            &format!("/api/teams/{team}/projects/{project}/virtual-machines"),
            Payload::Empty,
            want,
        ));
    }
    out
}
