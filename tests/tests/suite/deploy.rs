//! The deploy surface agrees with the code: table definition, routes, functions, events.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tower::ServiceExt;
use vmapi_core::credentials::generate_team_login;
use vmapi_core::SecretLabels;
use vmapi_http::endpoints::Auth;
use vmapi_http::{router, Endpoint};
use vmapi_models::{CredentialScope, Login, SecretRef, VmId, VmStatus};
use vmapi_tests::*;

#[test]
fn template_table_is_the_table_the_code_creates() {
    let tables = resources_of_type(&template_json(), "AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 1, "one table");
    let props = &tables[0].1["Properties"];
    let code = vmapi_store_dynamodb::table_definition().0;
    for (key, expected) in code.as_object().unwrap() {
        assert_eq!(
            &props[key], expected,
            "template's {key} differs from the code's table definition"
        );
    }
}

#[test]
fn template_functions_and_routes_match_the_route_table() {
    let mut in_template = BTreeSet::new();
    let mut binaries = BTreeSet::new();
    for (_, f) in resources_of_type(&template_json(), "AWS::Serverless::Function") {
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda");
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap()
            .to_string();
        for (_, ev) in f["Properties"]["Events"].as_object().unwrap() {
            if ev["Type"] == "HttpApi" {
                let p = &ev["Properties"];
                in_template.insert((
                    binary.clone(),
                    p["Method"].as_str().unwrap().to_string(),
                    p["Path"].as_str().unwrap().to_string(),
                ));
            }
        }
        binaries.insert(binary);
    }
    let in_code: BTreeSet<(String, String, String)> = Endpoint::ALL
        .iter()
        .map(|e| {
            (
                e.function().to_string(),
                e.method().to_string(),
                e.path().to_string(),
            )
        })
        .collect();
    assert_eq!(in_template, in_code, "template routes == route table");
    // API Gateway's JWT authorizer guards exactly the user routes: public and admin routes are
    // `Authorizer: NONE` (admin functions check the `Api-Key` themselves), which CORS allows.
    for (_, f) in resources_of_type(&template_json(), "AWS::Serverless::Function") {
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        let Some(endpoint) = Endpoint::ALL.iter().find(|e| e.function() == binary) else {
            continue;
        };
        let authorizer = &f["Properties"]["Events"]["Api"]["Properties"]["Auth"]["Authorizer"];
        assert_eq!(
            authorizer == "NONE",
            endpoint.spec().auth != Auth::User,
            "{binary}: Authorizer {authorizer}"
        );
    }
    let cors = &template_json()["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"];
    for header in [
        "Authorization",
        "Api-Key",
        "If-Match",
        "If-None-Match",
        "Idempotency-Key",
    ] {
        assert!(
            cors["AllowHeaders"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h == header),
            "CORS allows {header}: {cors}"
        );
    }
    let paths: Vec<&str> = in_template.iter().map(|(_, _, p)| p.as_str()).collect();
    assert_eq!(route_variable_clashes(&paths), Vec::<String>::new());
    // Every function named in the template is a crate under functions/ with that binary.
    for b in &binaries {
        let manifest = read(&format!("functions/{b}/Cargo.toml"));
        assert!(
            manifest.contains(&format!("name = \"{b}\"")),
            "functions/{b} builds binary {b}"
        );
        assert!(
            read("Cargo.toml").contains("\"functions/*\""),
            "functions/{b} is a workspace member (the functions/* glob)"
        );
    }
}

#[test]
fn each_function_serves_its_own_endpoint_and_only_those_that_need_the_secret_store_build_it() {
    for endpoint in Endpoint::ALL {
        assert_eq!(
            Endpoint::ALL[endpoint.index()],
            endpoint,
            "Endpoint::index is the position in ALL"
        );
        let main = read(&format!("functions/{}/src/main.rs", endpoint.function()));
        let runner = if endpoint.needs_logins() {
            "run_with_logins"
        } else {
            "run"
        };
        let call = format!(
            "vmapi_http::lambda::{runner}::<{{ vmapi_http::Endpoint::{endpoint:?}.index() }}>()"
        );
        assert!(
            main.contains(&call),
            "functions/{}/src/main.rs calls `{call}` (its own endpoint; the secret store exactly when it needs it)",
            endpoint.function()
        );
    }
}

/// `cargo metadata` of the workspace (no dependencies).
fn cargo_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_template_function_is_a_binary_cargo_knows_and_watch_routes_match() {
    let meta = cargo_metadata();
    let binaries: BTreeSet<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    let functions = resources_of_type(&template_json(), "AWS::Serverless::Function");
    assert!(functions.len() >= 11, "every function is in the template");
    for (name, f) in functions {
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        assert!(
            binaries.contains(binary),
            "{name} builds binary {binary}, which cargo does not know"
        );
    }
    // `cargo lambda watch` routes (Cargo.toml) == the route table.
    let router = meta["metadata"]["lambda"]["watch"]["router"]
        .as_object()
        .expect("[workspace.metadata.lambda.watch.router]");
    let mut in_watch = BTreeSet::new();
    for (path, routes) in router {
        for r in routes.as_array().unwrap() {
            in_watch.insert((
                r["function"].as_str().unwrap().to_string(),
                r["method"].as_str().unwrap().to_string(),
                path.clone(),
            ));
        }
    }
    let in_code: BTreeSet<(String, String, String)> = Endpoint::ALL
        .iter()
        .map(|e| {
            (
                e.function().to_string(),
                e.method().to_string(),
                e.path().to_string(),
            )
        })
        .collect();
    assert_eq!(
        in_watch, in_code,
        "cargo lambda watch routes == route table"
    );
}

#[test]
fn the_worker_events_parse() {
    let stream: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(&read("events/provisioner.json")).expect("stream event");
    assert_eq!(stream.records.len(), 2);
    let schedule: Value =
        serde_json::from_str(&read("events/cleanup.json")).expect("scheduled event");
    assert_eq!(schedule["detail-type"], "Scheduled Event");
}

const EVENT_VM: &str = "654a11e60b23ef1b0f36d44e";
/// The security rule `events/delete-security-rule.json` names (a rule of the event VM).
const EVENT_RULE: &str = "654a11e60b23ef1b0f36d450";

#[tokio::test]
async fn every_event_runs_through_its_function_handler() {
    for endpoint in Endpoint::ALL {
        let app = TestApp::spawn().await;
        let mut vm = demo_vm("event-demo-vm", VmStatus::Running);
        vm.id = VmId::parse(EVENT_VM).unwrap();
        // The VM's team login, as a create through the API would have stored it.
        let path = CredentialScope::Team.path(vm.team, vm.id);
        let login = generate_team_login(vm.team, vm.auth_method).unwrap();
        let labels = SecretLabels {
            team: vm.team,
            vm: None,
        };
        app.secrets.create(&path, &login, labels).await.unwrap();
        vm.login = Some(Login {
            username: "root".into(),
            secret: Some(SecretRef {
                path,
                scope: CredentialScope::Team,
            }),
        });
        // Its default rule, with the id the delete-security-rule event names.
        let mut rule = vmapi_models::SecurityRule::default_for(
            Some(vmapi_models::CloudKind::Kraud),
            1,
            vm.created_at,
        );
        rule.id = vmapi_models::SecurityRuleId::parse(EVENT_RULE).unwrap();
        vm.rules = vec![rule];
        vm.rules_revision = 1;
        app.seed_vm(&vm).await;
        if endpoint == Endpoint::ResizeVm {
            app.seed_vm(&as_aws_demo_vm(&vm)).await;
        }
        let name = endpoint.function();
        let text = read(&format!("events/{name}.json"));
        assert!(
            !text.contains("eyJ"),
            "events/{name}.json must not contain a token"
        );
        let mut text = text.replace("{{TOKEN}}", &app.token(OWNER));
        if text.contains("{{ADMIN_KEY}}") {
            let (_, key) = vmapi_core::AdminKeys::new(
                app.repo.clone(),
                std::sync::Arc::new(vmapi_core::SystemClock),
            )
            .create(vmapi_models::AdminKeyName::parse("events").unwrap(), None)
            .await
            .unwrap();
            text = text.replace("{{ADMIN_KEY}}", &key);
        }
        let request = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("events/{name}.json: {e}"));
        let resp = router(app.state(), &[endpoint])
            .oneshot(request)
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let expected = endpoint.spec().success.status;
        assert_eq!(
            status,
            expected,
            "events/{name}.json: {}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn demo_data_keeps_the_spec_objects_and_monthly_prices() {
    let seed = demo_seed();
    // AWS and Azure prices: pricePerMonth = 730 x hourly. The spec page's Kraud.Cloud price
    // (0.04 / 30) is kept exactly as the page shows it.
    let spec_price = "6548a383e2442d14b6bf970b";
    for p in seed
        .prices
        .iter()
        .filter(|p| p.id.to_string() != spec_price)
    {
        assert_eq!(
            p.price_per_month,
            p.price_per_hour.times(730),
            "price {}",
            p.id
        );
        assert_eq!(p.currency_code, "EUR");
    }
    let spec: Value =
        serde_json::from_str(&read("shared/models/tests/fixtures/get-response.json")).unwrap();
    let price = seed
        .prices
        .iter()
        .find(|p| p.id.to_string() == spec_price)
        .expect("spec price");
    assert_eq!(serde_json::to_value(price).unwrap(), spec["price"]);
    assert_eq!(serde_json::to_value(&seed.teams[0]).unwrap(), spec["team"]);
    assert_eq!(
        serde_json::to_value(&seed.projects[0]).unwrap(),
        spec["project"]
    );
    assert_eq!(serde_json::to_value(&seed.sizes[0]).unwrap(), spec["size"]);
    // A second team with another owner, for isolation by hand.
    assert_eq!(seed.teams.len(), 2);
    assert_ne!(seed.teams[0].members[0].user, seed.teams[1].members[0].user);
}

#[test]
fn the_events_name_the_demo_vms_and_carry_the_authorizer_claims() {
    let seed = demo_seed();
    let demo = &seed.demo_vms;
    assert_eq!(demo.len(), 3, "one demo VM per cloud");
    let clouds: BTreeSet<String> = demo
        .iter()
        .map(|v| v.request.cloud_provider.to_string())
        .collect();
    assert_eq!(clouds.len(), 3, "{clouds:?}");
    // The HTTP events' VM and rule are the Kraud.Cloud demo VM's.
    assert_eq!(demo[0].id.to_string(), EVENT_VM);
    assert_eq!(demo[0].default_rule.to_string(), EVENT_RULE);
    // The provisioner's event names the AWS demo VM (on moto in the local run).
    let aws = demo
        .iter()
        .find(|v| v.request.cloud_provider.to_string() == "6548a383e2442d14b6bf9686")
        .expect("an AWS demo VM");
    let stream: Value = serde_json::from_str(&read("events/provisioner.json")).unwrap();
    assert_eq!(
        stream["Records"][0]["dynamodb"]["Keys"]["pk"]["S"],
        format!("VM#{}", aws.id)
    );
    for endpoint in Endpoint::ALL {
        let name = endpoint.function();
        let event: Value = serde_json::from_str(&read(&format!("events/{name}.json"))).unwrap();
        let claims = &event["requestContext"]["authorizer"]["jwt"]["claims"];
        match endpoint.spec().auth {
            Auth::Public => {
                assert!(claims.is_null(), "events/{name}.json: no authorizer");
                continue;
            }
            Auth::Admin => {
                assert!(claims.is_null(), "events/{name}.json: no authorizer");
                assert_eq!(
                    event["headers"]["api-key"], "{{ADMIN_KEY}}",
                    "events/{name}.json: the admin key sam-local.sh fills in"
                );
                assert!(event["headers"]["authorization"].is_null());
                continue;
            }
            Auth::User => {}
        }
        assert_eq!(
            claims["sub"],
            demo[0].owner.to_string(),
            "events/{name}.json"
        );
        // API Gateway passes every claim as a string.
        for (k, v) in claims.as_object().expect("claims") {
            assert!(v.is_string(), "events/{name}.json: claim {k} is {v}");
        }
    }
}

#[tokio::test]
async fn demo_vms_are_created_with_their_fixed_ids() {
    let app = TestApp::spawn().await;
    let seed = demo_seed();
    let state = app.state();
    for demo in &seed.demo_vms {
        let made = state
            .service
            .create_with_ids(
                &demo.owner,
                demo.request.clone(),
                &[(demo.id, demo.default_rule)],
            )
            .await
            .unwrap_or_else(|e| panic!("demo VM {}: {e}", demo.id));
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].id, demo.id);
        let rules = state
            .service
            .list_rules(&demo.owner, demo.id)
            .await
            .unwrap();
        assert_eq!(
            rules.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![demo.default_rule],
            "demo VM {}",
            demo.id
        );
    }
    // A mismatch of ids and host names is refused, not guessed.
    let mut two = seed.demo_vms[0].request.clone();
    two.quantity = Some(2);
    two.host_names
        .push(vmapi_models::HostName::parse("demo-extra-01").unwrap());
    let e = state
        .service
        .create_with_ids(
            &seed.demo_vms[0].owner,
            two,
            &[(VmId::new(), vmapi_models::SecurityRuleId::new())],
        )
        .await
        .unwrap_err();
    assert!(
        format!("{e:?}").contains("1 id pairs for 2 host names"),
        "{e:?}"
    );
}

/// Route variables named differently at the same position of two paths (API Gateway refuses
/// `/api/teams/{team}/a` beside `/api/teams/{id}/b`), as `path: name vs name`.
fn route_variable_clashes(paths: &[&str]) -> Vec<String> {
    let mut seen: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut clashes = Vec::new();
    for path in paths {
        let segments: Vec<&str> = path.split('/').collect();
        for (i, segment) in segments.iter().enumerate() {
            let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                continue;
            };
            let level: Vec<&str> = segments[..i]
                .iter()
                .map(|s| if s.starts_with('{') { "{}" } else { s })
                .collect();
            let level = level.join("/");
            match seen.get(&level) {
                Some((other, at)) if other != name => clashes.push(format!(
                    "{level}/: {{{other}}} in {at} vs {{{name}}} in {path}"
                )),
                Some(_) => {}
                None => {
                    seen.insert(level, (name.to_string(), path.to_string()));
                }
            }
        }
    }
    clashes
}

#[test]
fn route_variables_of_one_level_clash_when_named_apart() {
    assert_eq!(
        route_variable_clashes(&["/api/teams/{team}/costs", "/api/teams/{id}/vms"]).len(),
        1
    );
    assert!(route_variable_clashes(&[
        "/api/teams/{team}/costs",
        "/api/teams/{team}/projects/{project}/virtual-machines",
        "/api/virtual-machines/{id}",
    ])
    .is_empty());
}
