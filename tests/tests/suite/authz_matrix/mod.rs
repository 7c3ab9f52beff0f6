//! Object-level authorization matrix: every endpoint × every kind of caller → the expected
//! status (and error `code`), asserted cell by cell over HTTP against DynamoDB Local.
//!
//! The policy (docs/api.md "Authentication and authorization", docs/credentials.md,
//! `shared/core/src/authz.rs`, `Service::credentials`):
//! - a bad token (none, expired, signed with another key, `alg: none`) is 401 `UNAUTHORIZED`
//!   before anything else, on every endpoint but `/health`;
//! - anyone outside the VM's team gets 404 (never 403, so ids cannot be probed);
//! - every member of the team reads; owners, admins and members change; viewers get 403;
//! - credentials: only the VM's creator and the team's owners and admins; other members and
//!   viewers 403.
//!
//! Besides the status, each cell checks that a refused request wrote nothing (a full table dump
//! before and after), that an accepted one did what it says, and that no refused answer carries
//! the VM's data (name, addresses, attestation id, creator, or its id anywhere but the standard
//! not-found message of the id the caller sent).

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_models::{
    IpConfigId, IpConfiguration, Member, ProjectId, Role, Team, TeamId, UserId, VmRecord, VmStatus,
};
// The rows of the matrix: every endpoint of the table, in its order.
use vmapi_http::Endpoint as Ep;
use vmapi_tests::*;

/// The users of the matrix team.
const VM_OWNER: &str = "authz-vm-owner";
const TEAM_OWNER: &str = "authz-team-owner";
const ADMIN: &str = "authz-admin";
const MEMBER: &str = "authz-member";
const VIEWER: &str = "authz-viewer";

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    /// A member (role 2) who created the VM.
    VmOwner,
    /// The team's owner (role 0).
    TeamOwner,
    /// An admin (role 1).
    Admin,
    /// A member (role 2) who did not create the VM.
    Member,
    /// A viewer (role 3).
    Viewer,
    /// The owner of another team (not a member of this one).
    OtherTeamOwner,
    /// No `Authorization` header.
    NoToken,
    /// The team owner's token, expired a minute ago (leeway is 5 s).
    Expired,
    /// The team owner's token signed with another key.
    ForeignKey,
    /// The team owner's claims with `alg: none` and no signature.
    AlgNone,
}

/// The columns of the matrix, in order.
const CALLERS: [Caller; 10] = [
    Caller::VmOwner,
    Caller::TeamOwner,
    Caller::Admin,
    Caller::Member,
    Caller::Viewer,
    Caller::OtherTeamOwner,
    Caller::NoToken,
    Caller::Expired,
    Caller::ForeignKey,
    Caller::AlgNone,
];

/// What a cell expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    /// Success with this status.
    Ok(u16),
    /// An error with this status and `code`.
    Err(u16, &'static str),
}

const OK: Cell = Cell::Ok(200);
const CREATED: Cell = Cell::Ok(201);
const DENY: Cell = Cell::Err(403, "FORBIDDEN");
const HIDE_VM: Cell = Cell::Err(404, "VM_NOT_FOUND");
const HIDE_TEAM: Cell = Cell::Err(404, "TEAM_NOT_FOUND");
const HIDE_RULE: Cell = Cell::Err(404, "SECURITY_RULE_NOT_FOUND");
const AUTH: Cell = Cell::Err(401, "UNAUTHORIZED");
/// Authorized, then refused by the VM's cloud (the matrix's VM is on Kraud.Cloud, which cannot
/// resize; tests/tests/suite/resize.rs resizes on the others).
const NO_RESIZE: Cell = Cell::Err(422, "UNSUPPORTED_BY_PROVIDER");

/// The policy as a table. Columns as [`CALLERS`]:
/// vm-owner, team-owner, admin, member, viewer, other-team, no-token, expired, foreign-key, alg-none.
#[rustfmt::skip]
const MATRIX: [(Ep, [Cell; 10]); Ep::ALL.len()] = [
    (Ep::Health,              [OK,      OK,      OK,      OK,      OK,     OK,        OK,   OK,   OK,   OK  ]),
    (Ep::CreateVm,            [CREATED, CREATED, CREATED, CREATED, DENY,   HIDE_TEAM, AUTH, AUTH, AUTH, AUTH]),
    (Ep::ListVms,             [OK,      OK,      OK,      OK,      OK,     HIDE_TEAM, AUTH, AUTH, AUTH, AUTH]),
    (Ep::GetVm,               [OK,      OK,      OK,      OK,      OK,     HIDE_VM,   AUTH, AUTH, AUTH, AUTH]),
    (Ep::UpdateVm,            [OK,      OK,      OK,      OK,      DENY,   HIDE_VM,   AUTH, AUTH, AUTH, AUTH]),
    (Ep::StartVm,             [OK,      OK,      OK,      OK,      DENY,   HIDE_VM,   AUTH, AUTH, AUTH, AUTH]),
    (Ep::StopVm,              [OK,      OK,      OK,      OK,      DENY,   HIDE_VM,   AUTH, AUTH, AUTH, AUTH]),
    (Ep::RebootVm,            [OK,      OK,      OK,      OK,      DENY,   HIDE_VM,   AUTH, AUTH, AUTH, AUTH]),
    (Ep::ResizeVm,            [NO_RESIZE, NO_RESIZE, NO_RESIZE, NO_RESIZE, DENY, HIDE_VM, AUTH, AUTH, AUTH, AUTH]),
    (Ep::DeleteVm,            [OK,      OK,      OK,      OK,      DENY,   HIDE_VM,   AUTH, AUTH, AUTH, AUTH]),
    (Ep::GetCredentials,      [OK,      OK,      OK,      DENY,    DENY,   HIDE_VM,   AUTH, AUTH, AUTH, AUTH]),
    (Ep::GetActivity,         [OK,      OK,      OK,      OK,      OK,     HIDE_VM,   AUTH, AUTH, AUTH, AUTH]),
    (Ep::CreateSecurityRule,  [CREATED, CREATED, CREATED, CREATED, DENY,   HIDE_VM,   AUTH, AUTH, AUTH, AUTH]),
    (Ep::ListSecurityRules,   [OK,      OK,      OK,      OK,      OK,     HIDE_VM,   AUTH, AUTH, AUTH, AUTH]),
    (Ep::DeleteSecurityRule,  [OK,      OK,      OK,      OK,      DENY,   HIDE_RULE, AUTH, AUTH, AUTH, AUTH]),
    (Ep::ListCloudProviders,  [OK,      OK,      OK,      OK,      OK,     OK,        AUTH, AUTH, AUTH, AUTH]),
    (Ep::ListProviders,       [OK,      OK,      OK,      OK,      OK,     OK,        AUTH, AUTH, AUTH, AUTH]),
    (Ep::ListLocations,       [OK,      OK,      OK,      OK,      OK,     OK,        AUTH, AUTH, AUTH, AUTH]),
    (Ep::ListImages,          [OK,      OK,      OK,      OK,      OK,     OK,        AUTH, AUTH, AUTH, AUTH]),
    (Ep::ListPrices,          [OK,      OK,      OK,      OK,      OK,     OK,        AUTH, AUTH, AUTH, AUTH]),
    (Ep::GetTeamCosts,        [OK,      OK,      OK,      OK,      OK,     HIDE_TEAM, AUTH, AUTH, AUTH, AUTH]),
    // Admin routes take an admin key only (tests/tests/suite/admin.rs): every user token is a 401.
    (Ep::AdminListTeamVms,    [AUTH,    AUTH,    AUTH,    AUTH,    AUTH,   AUTH,      AUTH, AUTH, AUTH, AUTH]),
    (Ep::AdminDeleteVm,       [AUTH,    AUTH,    AUTH,    AUTH,    AUTH,   AUTH,      AUTH, AUTH, AUTH, AUTH]),
    (Ep::AdminBlockVm,        [AUTH,    AUTH,    AUTH,    AUTH,    AUTH,   AUTH,      AUTH, AUTH, AUTH, AUTH]),
    (Ep::AdminUnblockVm,      [AUTH,    AUTH,    AUTH,    AUTH,    AUTH,   AUTH,      AUTH, AUTH, AUTH, AUTH]),
];

/// The Authorization header value a caller sends (None: no header).
fn authorization(app: &TestApp, caller: Caller) -> Option<String> {
    let now = jsonwebtoken::get_current_timestamp();
    let hs = |claims: Value, secret: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let b64 = |v: Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let token = match caller {
        Caller::VmOwner => app.token(VM_OWNER),
        Caller::TeamOwner => app.token(TEAM_OWNER),
        Caller::Admin => app.token(ADMIN),
        Caller::Member => app.token(MEMBER),
        Caller::Viewer => app.token(VIEWER),
        Caller::OtherTeamOwner => app.token(OTHER_OWNER),
        Caller::NoToken => return None,
        Caller::Expired => hs(json!({"sub": TEAM_OWNER, "exp": now - 60}), SECRET),
        Caller::ForeignKey => hs(
            json!({"sub": TEAM_OWNER, "exp": now + 600}),
            "a-key-this-service-never-trusted",
        ),
        Caller::AlgNone => format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "JWT"})),
            b64(json!({"sub": TEAM_OWNER, "exp": now + 600}))
        ),
    };
    Some(format!("Bearer {token}"))
}

/// Adds a team with the five users of the matrix and a project of it.
async fn seed_matrix_team(app: &TestApp) -> (TeamId, ProjectId) {
    let mut seed = demo_seed();
    let mut team: Team = seed.teams.remove(0);
    team.id = TeamId::new();
    team.members = [
        (VM_OWNER, Role::Member),
        (TEAM_OWNER, Role::Owner),
        (ADMIN, Role::Admin),
        (MEMBER, Role::Member),
        (VIEWER, Role::Viewer),
    ]
    .into_iter()
    .map(|(user, role)| Member {
        user: UserId::parse(user).unwrap(),
        role,
    })
    .collect();
    let mut project = seed.projects.remove(0);
    project.id = ProjectId::new();
    project.team = team.id;
    let ids = (team.id, project.id);
    app.repo
        .load_seed(&vmapi_models::Seed {
            teams: vec![team],
            projects: vec![project],
            ..Default::default()
        })
        .await
        .unwrap();
    ids
}

/// What identifies a VM in an answer: none of it may reach a caller who may not see the VM.
struct Secrets {
    id: String,
    name: String,
    attestation_id: String,
    addresses: Vec<String>,
}

impl Secrets {
    fn of_record(vm: &VmRecord) -> Self {
        Secrets {
            id: vm.id.to_string(),
            name: vm.name.to_string(),
            attestation_id: vm.attestation_id.to_string(),
            addresses: vm
                .ip_configurations
                .iter()
                .map(|ip| ip.address.clone())
                .collect(),
        }
    }

    fn of_json(vm: &Value) -> Self {
        Secrets {
            id: vm["_id"].as_str().unwrap().to_string(),
            name: vm["name"].as_str().unwrap().to_string(),
            attestation_id: vm["attestationId"].as_str().unwrap().to_string(),
            addresses: vm["ipConfigurations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|ip| ip["address"].as_str().unwrap().to_string())
                .collect(),
        }
    }

    /// Problems with a refused answer's body, if it shows any of this VM's data.
    fn leaks(&self, body: &Value, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        let text = body.to_string();
        for (what, value) in [
            ("name", &self.name),
            ("attestationId", &self.attestation_id),
            ("creator", &VM_OWNER.to_string()),
        ] {
            if text.contains(value.as_str()) {
                out.push(format!("{what} '{value}' in {text}"));
            }
        }
        for ip in &self.addresses {
            if text.contains(ip.as_str()) {
                out.push(format!("address {ip} in {text}"));
            }
        }
        if text.contains(&self.id) {
            // Only the standard not-found message of the id the caller sent may name it.
            let echo = format!("Virtual machine {} not found", self.id);
            let mut rest = body.clone();
            if body["message"] == echo.as_str() && path.contains(&self.id) {
                rest["message"] = Value::Null;
            }
            if rest.to_string().contains(&self.id) {
                out.push(format!("VM id {} in {text}", self.id));
            }
        }
        let allowed = ["statusCode", "error", "code", "message", "details"];
        if let Some(map) = body.as_object() {
            for key in map.keys() {
                if !allowed.contains(&key.as_str()) {
                    out.push(format!("unexpected field '{key}' in an error body: {text}"));
                }
            }
        } else {
            out.push(format!(
                "a refused answer's body is not a JSON object: {text}"
            ));
        }
        out
    }
}

/// A VM of the matrix team, created by the VM owner, stored as is in `status` with a public
/// address of its own (for the leak checks).
fn matrix_vm(team: TeamId, project: ProjectId, name: &str, status: VmStatus, n: u8) -> VmRecord {
    let mut vm = demo_vm(name, status);
    vm.team = team;
    vm.project = project;
    vm.owner = UserId::parse(VM_OWNER).unwrap();
    vm.ip_configurations = vec![IpConfiguration {
        id: IpConfigId::new(),
        kind: "public".into(),
        method: "Dynamic".into(),
        version: "IPv4".into(),
        address: format!("198.51.100.{n}"),
    }];
    vm
}

mod cells;
mod foreign;
