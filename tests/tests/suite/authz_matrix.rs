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

#[tokio::test]
async fn every_endpoint_for_every_caller() {
    let app = TestApp::spawn_opts(Options {
        scope: vmapi_models::CredentialScope::Vm,
        ..Options::default()
    })
    .await;
    let (team, project) = seed_matrix_team(&app).await;
    let (_sim, provisioner) = app.simulated();

    // The VM that read-only cells look at: created through the API by a member (so it has a
    // login), and provisioned (so it has addresses).
    let mut create_body = spec_create_request();
    create_body["team"] = json!(team.to_string());
    create_body["project"] = json!(project.to_string());
    create_body["hostNames"] = json!(["authz-main-vm"]);
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some(VM_OWNER),
            Some(&create_body),
        )
        .await
        .expect(201);
    let main_id = r.json[0]["_id"].as_str().unwrap().to_string();
    app.settle(&provisioner, &main_id).await;
    let main_json = app
        .get(&format!("/api/virtual-machines/{main_id}"), TEAM_OWNER)
        .await
        .expect(200)
        .json;
    assert_eq!(main_json["status"], 3, "provisioned: {main_json}");
    assert_eq!(main_json["owner"], VM_OWNER);
    let main = Secrets::of_json(&main_json);
    assert!(!main.addresses.is_empty(), "the VM has addresses");

    let list_path = format!("/api/teams/{team}/projects/{project}/virtual-machines");
    let mut failures: Vec<String> = Vec::new();
    let mut cells = 0;
    let mut n: u8 = 0;
    assert_eq!(
        MATRIX.map(|(ep, _)| ep),
        Ep::ALL,
        "the matrix has a row for every endpoint, in the table's order"
    );
    for (ep, row) in MATRIX {
        for (caller, expected) in CALLERS.into_iter().zip(row) {
            cells += 1;
            n += 1;
            let here = format!("{ep:?} × {caller:?}");
            // Mutating cells get a VM of their own, in a status where the action is a change.
            let own = match ep {
                Ep::UpdateVm | Ep::StopVm | Ep::RebootVm | Ep::DeleteVm | Ep::ResizeVm => {
                    Some(matrix_vm(
                        team,
                        project,
                        &format!("authz-cell-{n}"),
                        VmStatus::Running,
                        n,
                    ))
                }
                Ep::StartVm => Some(matrix_vm(
                    team,
                    project,
                    &format!("authz-cell-{n}"),
                    VmStatus::Stopped,
                    n,
                )),
                _ => None,
            };
            if let Some(vm) = &own {
                app.seed_vm(vm).await;
            }
            let target = own
                .as_ref()
                .map(|vm| vm.id.to_string())
                .unwrap_or_else(|| main_id.clone());
            let vm_path = format!("/api/virtual-machines/{target}");
            // A rule of the main VM for the delete cells, made by the team's owner.
            let own_rule = if ep == Ep::DeleteSecurityRule {
                let made = app
                    .call(
                        Method::POST,
                        "/api/security-rules",
                        Some(TEAM_OWNER),
                        Some(
                            &json!({"virtualMachine": main_id, "name": format!("doomed-{n}"),
                            "protocol": "*", "portRange": "*", "access": "Deny"}),
                        ),
                    )
                    .await
                    .expect(201);
                made.json["_id"].as_str().unwrap().to_string()
            } else {
                String::new()
            };
            let mut cell_create = create_body.clone();
            cell_create["hostNames"] = json!([format!("authz-new-{n}")]);
            let (method, path, body) = match ep {
                Ep::Health => (Method::GET, "/health".to_string(), None),
                Ep::CreateVm => (
                    Method::POST,
                    "/api/virtual-machines".to_string(),
                    Some(cell_create),
                ),
                Ep::ListVms => (Method::GET, list_path.clone(), None),
                Ep::GetVm => (Method::GET, vm_path.clone(), None),
                Ep::UpdateVm => (
                    Method::PATCH,
                    vm_path.clone(),
                    Some(json!({"tags": [format!("cell-{n}")]})),
                ),
                Ep::StartVm => (Method::PUT, format!("{vm_path}/start"), None),
                Ep::StopVm => (Method::PUT, format!("{vm_path}/stop"), None),
                Ep::RebootVm => (Method::PUT, format!("{vm_path}/reboot"), None),
                Ep::GetActivity => (Method::GET, format!("{vm_path}/activity"), None),
                Ep::DeleteVm => (Method::DELETE, vm_path.clone(), None),
                Ep::GetCredentials => (Method::GET, format!("{vm_path}/credentials"), None),
                Ep::CreateSecurityRule => (
                    Method::POST,
                    "/api/security-rules".to_string(),
                    Some(
                        json!({"virtualMachine": main_id, "name": format!("cell-{n}"),
                        "protocol": "*", "portRange": "*", "access": "Deny"}),
                    ),
                ),
                Ep::ListSecurityRules => (Method::GET, format!("{vm_path}/security-rules"), None),
                Ep::DeleteSecurityRule => (
                    Method::DELETE,
                    format!("/api/security-rules/{own_rule}"),
                    None,
                ),
                Ep::ListCloudProviders => (Method::GET, "/api/cloud-providers".into(), None),
                Ep::ListProviders => (
                    Method::GET,
                    format!("/api/cloud-providers/{CLOUD}/providers"),
                    None,
                ),
                Ep::ListLocations => (
                    Method::GET,
                    format!("/api/providers/{PROVIDER}/locations"),
                    None,
                ),
                Ep::ListImages => (
                    Method::GET,
                    format!("/api/providers/{PROVIDER}/locations/berlin/images"),
                    None,
                ),
                Ep::ListPrices => (
                    Method::GET,
                    format!("/api/providers/{PROVIDER}/locations/berlin/images/Ubuntu/prices"),
                    None,
                ),
                Ep::GetTeamCosts => (Method::GET, format!("/api/teams/{team}/costs"), None),
                Ep::ResizeVm => (
                    Method::PUT,
                    format!("{vm_path}/resize"),
                    Some(
                        json!({"size": "6548a383e2442d14b6bf9747", "price": "6548a383e2442d14b6bf970d"}),
                    ),
                ),
                Ep::AdminListTeamVms => (
                    Method::GET,
                    format!("/admin/api/teams/{team}/virtual-machines"),
                    None,
                ),
                Ep::AdminDeleteVm => (
                    Method::DELETE,
                    format!("/admin/api/virtual-machines/{main_id}"),
                    None,
                ),
                Ep::AdminBlockVm => (
                    Method::PUT,
                    format!("/admin/api/virtual-machines/{main_id}/block"),
                    None,
                ),
                Ep::AdminUnblockVm => (
                    Method::PUT,
                    format!("/admin/api/virtual-machines/{main_id}/unblock"),
                    None,
                ),
            };

            let before = app.dump().await;
            let mut req = app.http.request(method, format!("{}{path}", app.base));
            if let Some(auth) = authorization(&app, caller) {
                req = req.header("authorization", auth);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let r = TestApp::read(req.send().await.expect("request sent")).await;
            let after = app.dump().await;
            let status = r.status.as_u16();

            match expected {
                Cell::Ok(want) => {
                    if status != want {
                        failures.push(format!("{here}: expected {want}, got {status}: {}", r.json));
                        continue;
                    }
                    // The accepted request did what it says.
                    let problem = match ep {
                        Ep::Health => (r.json != json!({"status": "ok"})).then_some("health body"),
                        Ep::CreateVm => (r.json[0]["owner"] != user_of(caller)
                            || after.len() <= before.len())
                        .then_some("created VM not owned by the caller or not stored"),
                        Ep::ListVms => (!r
                            .json
                            .as_array()
                            .is_some_and(|l| l.iter().any(|v| v["_id"] == main_id.as_str())))
                        .then_some("list does not show the VM"),
                        Ep::GetVm => (r.json["_id"] != main_id.as_str() || before != after)
                            .then_some("wrong VM, or a read wrote"),
                        Ep::GetActivity => (!r.json.is_object() && !r.json.is_array()
                            || before != after)
                            .then_some("no history, or a read wrote"),
                        Ep::CreateSecurityRule => (r.json["virtualMachine"] != main_id.as_str()
                            || after.len() != before.len() + 2)
                            .then_some("the rule (and its pointer and event) is not stored"),
                        Ep::ListSecurityRules => (!r
                            .json
                            .as_array()
                            .is_some_and(|l| l.iter().any(|x| x["name"] == "AllowAnyInbound"))
                            || before != after)
                            .then_some("the list lacks the default rule, or a read wrote"),
                        Ep::DeleteSecurityRule => (r.json["ruleId"] != own_rule.as_str()
                            || after.len() != before.len())
                        .then_some("the rule's pointer is not replaced by the delete's event"),
                        Ep::GetCredentials => {
                            let new_events = after.len() as i64 - before.len() as i64;
                            (r.json["vmId"] != main_id.as_str()
                                || !r.json["privateKey"].is_string()
                                || new_events != 1)
                                .then_some("no key, or the read was not recorded exactly once")
                        }
                        Ep::ListCloudProviders
                        | Ep::ListProviders
                        | Ep::ListLocations
                        | Ep::ListImages
                        | Ep::ListPrices => (r.json.as_array().is_none_or(Vec::is_empty)
                            || before != after)
                            .then_some("an empty catalog answer, or the read wrote"),
                        Ep::ResizeVm
                        | Ep::AdminListTeamVms
                        | Ep::AdminDeleteVm
                        | Ep::AdminBlockVm
                        | Ep::AdminUnblockVm => Some("a user token passed an admin route"),
                        Ep::GetTeamCosts => (!r.json["vms"]
                            .as_array()
                            .is_some_and(|l| l.iter().any(|v| v["_id"] == main_id.as_str()))
                            || before != after)
                            .then_some("the costs lack the VM, or the read wrote"),
                        Ep::UpdateVm | Ep::StartVm | Ep::StopVm | Ep::RebootVm | Ep::DeleteVm => {
                            let now = app.get(&vm_path, TEAM_OWNER).await.json;
                            let want_status = match ep {
                                Ep::StartVm => 2,
                                Ep::StopVm => 4,
                                Ep::DeleteVm => 5,
                                _ => 3,
                            };
                            let tags_ok =
                                ep != Ep::UpdateVm || now["tags"] == json!([format!("cell-{n}")]);
                            (now["status"] != want_status || !tags_ok || before == after)
                                .then_some("the change is not stored")
                        }
                    };
                    if let Some(p) = problem {
                        failures.push(format!("{here}: {p}: {}", r.json));
                    }
                }
                Cell::Err(want, code) => {
                    if status != want || r.json["code"] != code || r.json["statusCode"] != want {
                        failures.push(format!(
                            "{here}: expected {want} {code}, got {status}: {}",
                            r.json
                        ));
                    }
                    if !(r.json["error"].is_string() && r.json["message"].is_string()) {
                        failures.push(format!("{here}: not the error shape: {}", r.json));
                    }
                    if want == 401 && r.headers.get("www-authenticate").is_none() {
                        failures.push(format!("{here}: 401 without WWW-Authenticate"));
                    }
                    if before != after {
                        failures.push(format!("{here}: a refused request wrote to the table"));
                    }
                    // What the caller sent may be echoed: the path and, for a rule, the VM id in
                    // the body.
                    let sent = match &body {
                        Some(b) if ep == Ep::CreateSecurityRule => format!("{path} {b}"),
                        _ => path.clone(),
                    };
                    let mut leaks = main.leaks(&r.json, &sent);
                    if let Some(vm) = &own {
                        leaks.extend(Secrets::of_record(vm).leaks(&r.json, &path));
                    }
                    for leak in leaks {
                        failures.push(format!("{here}: {leak}"));
                    }
                }
            }
        }
    }
    assert_eq!(
        cells,
        Ep::ALL.len() * CALLERS.len(),
        "every endpoint × every caller"
    );
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ from the policy:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The user id a caller authenticates as (for checking `owner` of what it creates).
fn user_of(caller: Caller) -> &'static str {
    match caller {
        Caller::VmOwner => VM_OWNER,
        Caller::TeamOwner => TEAM_OWNER,
        Caller::Admin => ADMIN,
        Caller::Member => MEMBER,
        Caller::Viewer => VIEWER,
        Caller::OtherTeamOwner => OTHER_OWNER,
        _ => "",
    }
}

/// The list of another team's project, asked for under one's own team id: the project check is
/// by team, not only by membership (404 `PROJECT_NOT_FOUND`, and nothing of the VM leaks); and a
/// VM id of another team under every VM route is the same 404 as an id that does not exist.
#[tokio::test]
async fn foreign_ids_are_indistinguishable_from_missing_ones() {
    let app = TestApp::spawn().await;
    let (team, project) = seed_matrix_team(&app).await;
    let vm = matrix_vm(team, project, "authz-probe", VmStatus::Running, 7);
    app.seed_vm(&vm).await;
    let secrets = Secrets::of_record(&vm);
    let missing = vmapi_models::VmId::new().to_string();
    let before = app.dump().await;
    for suffix in [
        "",
        "/start",
        "/stop",
        "/reboot",
        "/credentials",
        "/activity",
        "/security-rules",
    ] {
        for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
            let routed = matches!(
                (suffix, &method),
                ("", &Method::GET | &Method::PATCH | &Method::DELETE)
                    | ("/start" | "/stop" | "/reboot", &Method::PUT)
                    | (
                        "/credentials" | "/activity" | "/security-rules",
                        &Method::GET
                    )
            );
            if !routed {
                continue;
            }
            let body = json!({"tags": ["probe"]});
            let foreign = app
                .call(
                    method.clone(),
                    &format!("/api/virtual-machines/{}{suffix}", vm.id),
                    Some(OTHER_OWNER),
                    Some(&body),
                )
                .await
                .expect_error(404, "VM_NOT_FOUND");
            let absent = app
                .call(
                    method.clone(),
                    &format!("/api/virtual-machines/{missing}{suffix}"),
                    Some(OTHER_OWNER),
                    Some(&body),
                )
                .await
                .expect_error(404, "VM_NOT_FOUND");
            // The same answer but for the id that was asked for.
            let normalize = |v: &Value, id: &str| v.to_string().replace(id, "<id>");
            assert_eq!(
                normalize(&foreign.json, &vm.id.to_string()),
                normalize(&absent.json, &missing),
                "{method} {suffix}"
            );
            let leaks = secrets.leaks(&foreign.json, &format!("/{}", vm.id));
            assert!(leaks.is_empty(), "{leaks:?}");
        }
    }
    // A project of another team under one's own team.
    let r = app
        .get(
            &format!("/api/teams/{OTHER_TEAM}/projects/{project}/virtual-machines"),
            OTHER_OWNER,
        )
        .await
        .expect_error(404, "PROJECT_NOT_FOUND");
    assert!(secrets.leaks(&r.json, "").is_empty(), "{}", r.json);
    // Another team's project under that (foreign) team: the team is hidden.
    app.get(
        &format!("/api/teams/{team}/projects/{project}/virtual-machines"),
        OTHER_OWNER,
    )
    .await
    .expect_error(404, "TEAM_NOT_FOUND");
    // Creating into the matrix team's project while naming one's own team.
    let mut body = spec_create_request();
    body["team"] = json!(OTHER_TEAM);
    body["project"] = json!(project.to_string());
    app.call(
        Method::POST,
        "/api/virtual-machines",
        Some(OTHER_OWNER),
        Some(&body),
    )
    .await
    .expect_error(404, "PROJECT_NOT_FOUND");
    assert_eq!(app.dump().await, before, "probing wrote nothing");
}

/// What a member who may not read the credentials of the team owner's VM (403) gets through a VM
/// of their own, in a credential scope: (the owner VM's private key as its owner reads it, the
/// member VM's private key as the member reads it).
async fn keys_reachable_by_a_member(scope: vmapi_models::CredentialScope) -> (String, String) {
    let app = TestApp::spawn_opts(Options {
        scope,
        ..Options::default()
    })
    .await;
    let (team, project) = seed_matrix_team(&app).await;
    let mut body = spec_create_request();
    body["team"] = json!(team.to_string());
    body["project"] = json!(project.to_string());
    let mut ids = Vec::new();
    for (user, name) in [(TEAM_OWNER, "owners-vm"), (MEMBER, "members-vm")] {
        body["hostNames"] = json!([name]);
        let r = app
            .call(
                Method::POST,
                "/api/virtual-machines",
                Some(user),
                Some(&body),
            )
            .await
            .expect(201);
        ids.push(r.json[0]["_id"].as_str().unwrap().to_string());
    }
    let creds = |id: &str| format!("/api/virtual-machines/{id}/credentials");
    app.get(&creds(&ids[0]), MEMBER)
        .await
        .expect_error(403, "FORBIDDEN");
    let owners = app.get(&creds(&ids[0]), TEAM_OWNER).await.expect(200).json;
    let members = app.get(&creds(&ids[1]), MEMBER).await.expect(200).json;
    (
        owners["privateKey"].as_str().unwrap().to_string(),
        members["privateKey"].as_str().unwrap().to_string(),
    )
}

/// In `vm` scope each VM has its own login: the 403 on another member's VM credentials holds.
#[tokio::test]
async fn vm_scope_a_member_cannot_reach_another_vms_login_through_their_own() {
    let (owners, members) = keys_reachable_by_a_member(vmapi_models::CredentialScope::Vm).await;
    assert_ne!(owners, members);
}

/// The same in `team` scope (the default): every VM of a team shares the team's login
/// (`{teamId}/user/root`), so a member refused the credentials of the owner's VM (403) reads the
/// very same private key through any VM they create themselves.
#[tokio::test]
async fn team_scope_a_member_cannot_reach_the_shared_login_through_their_own_vm() {
    let app = TestApp::spawn_opts(Options {
        scope: vmapi_models::CredentialScope::Team,
        ..Options::default()
    })
    .await;
    let (team, project) = seed_matrix_team(&app).await;
    let mut body = spec_create_request();
    body["team"] = json!(team.to_string());
    body["project"] = json!(project.to_string());
    body["hostNames"] = json!(["members-vm"]);
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some(MEMBER),
            Some(&body),
        )
        .await
        .expect(201);
    let id = r.json[0]["_id"].as_str().unwrap().to_string();
    let path = format!("/api/virtual-machines/{id}/credentials");
    // The team login opens every VM of the team: the member who created this one is refused,
    // with a message saying why and what to do instead; the team's owner reads it.
    let refused = app.get(&path, MEMBER).await.expect_error(403, "FORBIDDEN");
    let message = refused.json["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("shared login") && message.contains("sshPublicKey"),
        "{message}"
    );
    assert!(!refused.json.to_string().contains("PRIVATE KEY"));
    let owners = app.get(&path, TEAM_OWNER).await.expect(200).json;
    assert!(owners["privateKey"]
        .as_str()
        .is_some_and(|k| k.contains("PRIVATE KEY")));
}
