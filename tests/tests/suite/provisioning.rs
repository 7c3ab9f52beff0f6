//! Provisioning end to end: the API writes `pendingOp`, the provisioner (from the table's
//! stream, from a Lambda stream event, or run directly) drives a cloud: the simulated one, and
//! AWS EC2 on a real moto server.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use reqwest::Method;
use serde_json::{json, Value};
use vmapi_core::cloud::DriverError;
use vmapi_core::Drivers;
use vmapi_drivers::aws::AwsDriver;
use vmapi_drivers::SimulatedDriver;
use vmapi_models::{CloudKind, CredentialScope, OpKind, VmId, VmStatus};
use vmapi_tests::*;

fn vm_path(id: &str) -> String {
    format!("/api/virtual-machines/{id}")
}

/// A create body for a demo catalog offering: provider, size and price id suffixes
/// (after `6548a383e2442d14b6bf`), with the provider's first location and image.
pub(crate) fn catalog_request(provider: &str, size: &str, price: &str, name: &str) -> Value {
    let seed = demo_seed();
    let p = seed
        .providers
        .iter()
        .find(|p| p.id.to_string().ends_with(provider))
        .expect("provider");
    json!({
        "cloudProvider": p.cloud_provider,
        "team": TEAM,
        "project": PROJECT,
        "hostNames": [name],
        "provider": p.id,
        "size": format!("6548a383e2442d14b6bf{size}"),
        "price": format!("6548a383e2442d14b6bf{price}"),
        "subscription": "",
        "tags": [],
        "access": null,
        "region": p.locations[0].region,
        "image": p.images[0],
        "authMethod": 1
    })
}

pub(crate) async fn create_body(app: &TestApp, body: &Value) -> String {
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some(OWNER),
            Some(body),
        )
        .await
        .expect(201);
    id_of(&r.json[0])
}

async fn act(app: &TestApp, id: &str, action: &str) -> Reply {
    let (method, path) = match action {
        "delete" => (Method::DELETE, vm_path(id)),
        other => (Method::PUT, format!("{}/{other}", vm_path(id))),
    };
    app.call(method, &path, Some(OWNER), None).await.expect(200)
}

fn status_is(code: u64) -> impl Fn(&Reply) -> bool {
    move |r: &Reply| r.json["status"] == code
}

#[tokio::test]
async fn lifecycle_through_the_stream_on_the_simulated_cloud() {
    let app = TestApp::spawn_opts(Options {
        scope: CredentialScope::Vm,
        ..Options::default()
    })
    .await;
    let sim = Arc::new(SimulatedDriver::new(Duration::from_millis(50)));
    let drivers = Drivers::new().with(CloudKind::Kraud, sim.clone());
    let _stream = app.stream_provisioner(app.provisioner(drivers)).await;

    let id = create_body(&app, &spec_create_request()).await;
    let r = app.wait_for(&id, OWNER, 20, status_is(3)).await.expect(200);
    assert_eq!(r.json["statusName"], "running");
    let ips = r.json["ipConfigurations"].as_array().unwrap();
    let public = ips
        .iter()
        .find(|i| i["type"] == "public" && i["version"] == "IPv4")
        .expect("a public IPv4");
    assert!(public["address"]
        .as_str()
        .unwrap()
        .starts_with("203.0.113."));
    assert!(public["_id"].as_str().unwrap().len() == 24);
    let creds = app
        .get(&format!("{}/credentials", vm_path(&id)), OWNER)
        .await
        .expect(200)
        .json;
    assert_eq!(creds["host"], public["address"]);

    assert_eq!(act(&app, &id, "stop").await.json["status"], 4);
    let r = app.wait_for(&id, OWNER, 20, status_is(7)).await;
    assert_eq!(r.json["statusName"], "stopped");
    assert!(r.json["ipConfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["type"] != "public"));

    assert_eq!(act(&app, &id, "start").await.json["status"], 2);
    app.wait_for(&id, OWNER, 20, status_is(3)).await;

    assert_eq!(act(&app, &id, "delete").await.json["status"], 5);
    let r = app
        .wait_for(&id, OWNER, 20, |r| r.status.as_u16() == 404)
        .await;
    r.expect_error(404, "VM_NOT_FOUND");
    assert!(
        app.secret_names().await.is_empty(),
        "the VM's login went after the teardown"
    );
    assert_eq!(sim.count(), 0, "nothing left in the cloud");
}

#[tokio::test]
async fn lifecycle_on_aws_ec2_with_moto() {
    let app = TestApp::spawn().await;
    let sdk = vmapi_aws::sdk_config().await;
    assert!(
        std::env::var("AWS_ENDPOINT_URL_EC2").is_ok_and(|v| v.contains("127.0.0.1")),
        "AWS_ENDPOINT_URL_EC2 must point at moto: run the tests with `make test`"
    );
    let drivers = Drivers::new().with(
        CloudKind::Aws,
        Arc::new(AwsDriver::new(
            sdk.clone(),
            vmapi_models::DeploymentId::local(),
        )),
    );
    let p = app.provisioner(drivers);
    let id = create_body(&app, &catalog_request("968c", "9746", "970c", "aws-web-1")).await;
    app.settle(&p, &id).await;
    let vm = app.get(&vm_path(&id), OWNER).await.expect(200).json;
    assert_eq!(vm["status"], 3, "{vm}");
    let public = vm["ipConfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "public")
        .cloned()
        .expect("public IP");

    // The instance in moto: tagged, in the VM's region, with the login in cloud-init.
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&sdk)
            .region(aws_sdk_ec2::config::Region::new("eu-west-1"))
            .build(),
    );
    let out = ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:vm-id")
                .values(&id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let instances: Vec<_> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances().to_vec())
        .collect();
    assert_eq!(instances.len(), 1);
    let inst = &instances[0];
    assert_eq!(inst.instance_type().unwrap().as_str(), "m6a.large");
    assert_eq!(inst.public_ip_address(), public["address"].as_str());
    let tags: std::collections::BTreeMap<_, _> = inst
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(tags["managed-by"], "vm-api");
    assert_eq!(tags["vm-id"], id);
    assert_eq!(tags["team"], TEAM);
    let attr = ec2
        .describe_instance_attribute()
        .instance_id(inst.instance_id().unwrap())
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let user_data = attr.user_data().and_then(|u| u.value()).expect("user data");
    use base64::Engine;
    let cloud_init = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(user_data)
            .unwrap(),
    )
    .unwrap();
    let creds = app
        .get(&format!("{}/credentials", vm_path(&id)), OWNER)
        .await
        .expect(200)
        .json;
    assert!(cloud_init.starts_with("#cloud-config"));
    assert!(
        cloud_init.contains(creds["publicKey"].as_str().unwrap()),
        "{cloud_init}"
    );
    assert!(!cloud_init.contains("PRIVATE KEY"));

    act(&app, &id, "stop").await;
    app.settle(&p, &id).await;
    assert_eq!(app.get(&vm_path(&id), OWNER).await.json["status"], 7);
    act(&app, &id, "start").await;
    app.settle(&p, &id).await;
    assert_eq!(app.get(&vm_path(&id), OWNER).await.json["status"], 3);
    act(&app, &id, "delete").await;
    app.settle(&p, &id).await;
    app.get(&vm_path(&id), OWNER)
        .await
        .expect_error(404, "VM_NOT_FOUND");
    let out = ec2
        .describe_instances()
        .instance_ids(inst.instance_id().unwrap())
        .send()
        .await
        .unwrap();
    let state = out.reservations()[0].instances()[0]
        .state()
        .unwrap()
        .name()
        .unwrap()
        .as_str()
        .to_string();
    assert_eq!(state, "terminated");
}

#[tokio::test]
async fn a_confidential_size_without_sev_snp_fails_instead_of_falling_back() {
    // moto ignores CpuOptions, so the instance comes back without SEV-SNP: that must be status 6.
    let app = TestApp::spawn().await;
    let sdk = vmapi_aws::sdk_config().await;
    let p = app.provisioner(Drivers::new().with(
        CloudKind::Aws,
        Arc::new(AwsDriver::new(sdk, vmapi_models::DeploymentId::local())),
    ));
    let id = create_body(&app, &catalog_request("968c", "9747", "970d", "snp-1")).await;
    app.settle(&p, &id).await;
    let vm = app.get(&vm_path(&id), OWNER).await.expect(200).json;
    assert_eq!(vm["status"], 6, "{vm}");
    assert!(
        vm["statusReason"].as_str().unwrap().contains("sev-snp"),
        "{vm}"
    );
    assert_eq!(vm["size"]["confidential"], "sev-snp");
}

#[tokio::test]
async fn failures_are_readable_and_a_failed_teardown_keeps_the_login() {
    let app = TestApp::spawn_opts(Options {
        scope: CredentialScope::Vm,
        ..Options::default()
    })
    .await;
    let (sim, p) = app.simulated();
    sim.fail_creates(Some(DriverError::Quota(
        "no capacity for Standart_berlin_1_4_50 in berlin".into(),
    )));
    let bad = create_body(&app, &spec_create_request()).await;
    app.settle(&p, &bad).await;
    let vm = app.get(&vm_path(&bad), OWNER).await.expect(200).json;
    assert_eq!(vm["status"], 6);
    assert_eq!(vm["statusName"], "failed");
    assert!(
        vm["statusReason"].as_str().unwrap().contains("no capacity"),
        "{vm}"
    );
    app.call(
        Method::PUT,
        &format!("{}/start", vm_path(&bad)),
        Some(OWNER),
        None,
    )
    .await
    .expect_error(409, "ILLEGAL_TRANSITION");

    sim.fail_creates(None);
    let mut body = spec_create_request();
    body["hostNames"] = json!(["good-1"]);
    let good = create_body(&app, &body).await;
    app.settle(&p, &good).await;
    sim.fail_deletes(Some(DriverError::Provider {
        code: "Busy".into(),
        message: "volume still attached".into(),
    }));
    act(&app, &good, "delete").await;
    app.settle(&p, &good).await;
    let vm = app.get(&vm_path(&good), OWNER).await.expect(200).json;
    assert_eq!(vm["status"], 5);
    assert!(
        vm["statusReason"]
            .as_str()
            .unwrap()
            .contains("volume still attached"),
        "{vm}"
    );
    assert_eq!(app.secret_names().await.len(), 2, "both logins still there");
    app.get(&format!("{}/credentials", vm_path(&good)), OWNER)
        .await
        .expect(200);

    sim.fail_deletes(None);
    act(&app, &good, "delete").await;
    app.settle(&p, &good).await;
    app.get(&vm_path(&good), OWNER)
        .await
        .expect_error(404, "VM_NOT_FOUND");
    assert_eq!(app.secret_names().await.len(), 1);
}

#[tokio::test]
async fn the_stream_event_runs_through_the_lambda_handler_and_redelivery_changes_nothing() {
    let app = TestApp::spawn().await;
    let (sim, p) = app.simulated();
    let id = create_body(&app, &spec_create_request()).await;
    // The event names the AWS demo VM of `make run`; here it is about the VM just created.
    let raw = read("events/provisioner.json");
    let demo_vm: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(&raw).expect("the event parses");
    let named = vmapi_provision::lambda::work_item(&demo_vm.records[0])
        .expect("the event's first record is a VM's pending operation")
        .vm
        .to_string();
    let text = raw.replace(&named, &id);
    let event: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(&text).expect("the event parses");
    let items: Vec<_> = event
        .records
        .iter()
        .filter_map(vmapi_provision::lambda::work_item)
        .collect();
    assert_eq!(
        items.len(),
        1,
        "only the VM record with a pendingOp is work"
    );

    let resp =
        vmapi_provision::lambda::handle(&p, LambdaEvent::new(event.clone(), Context::default()))
            .await
            .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    // The simulated cloud has no delay, so the one delivery finished the create.
    let vm = app.get(&vm_path(&id), OWNER).await.expect(200).json;
    assert_eq!(vm["status"], 3, "{vm}");
    let before = app.dump().await;
    for _ in 0..2 {
        let resp = vmapi_provision::lambda::handle(
            &p,
            LambdaEvent::new(event.clone(), Context::default()),
        )
        .await
        .unwrap();
        assert!(resp.batch_item_failures.is_empty());
    }
    assert_eq!(
        app.dump().await,
        before,
        "redelivered records change nothing"
    );
    assert_eq!(
        sim.calls()
            .iter()
            .filter(|c| c.starts_with("create"))
            .count(),
        1
    );

    // A record whose VM cannot be processed is reported for retry by its sequence number.
    let broken = TestApp::spawn().await;
    let id2 = create_body(&broken, &spec_create_request()).await;
    let (sim2, p2) = broken.simulated();
    sim2.fail_creates(Some(DriverError::Unreachable("connection refused".into())));
    let event: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(&raw.replace(&named, &id2)).unwrap();
    let resp = vmapi_provision::lambda::handle(&p2, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    let failed: Vec<_> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect();
    assert_eq!(failed, vec!["111100000000000000000001".to_string()]);
    let vm = broken.get(&vm_path(&id2), OWNER).await.expect(200).json;
    assert_eq!(
        vm["status"], 0,
        "an unreachable cloud is retried, not a failure: {vm}"
    );

    // A cloud this deployment has no driver for: the VM fails with a reason, no endless retries.
    let p3 = broken.provisioner(Drivers::new());
    broken.settle(&p3, &id2).await;
    let vm = broken.get(&vm_path(&id2), OWNER).await.expect(200).json;
    assert_eq!(vm["status"], 6);
    assert!(
        vm["statusReason"].as_str().unwrap().contains("no driver"),
        "{vm}"
    );
}

#[tokio::test]
async fn reboot_is_carried_out_by_the_provisioner_and_only_when_running() {
    let app = TestApp::spawn().await;
    let (sim, provisioner) = app.simulated();
    let r = app.create(OWNER, &["reboot-me"]).await.expect(201);
    let id = r.json[0]["_id"].as_str().unwrap().to_string();
    let reboot = format!("{}/reboot", vm_path(&id));
    // Not running yet: 409.
    app.call(Method::PUT, &reboot, Some(OWNER), None)
        .await
        .expect_error(409, "ILLEGAL_TRANSITION");
    app.settle(&provisioner, &id).await;

    let r = app
        .call(Method::PUT, &reboot, Some(OWNER), None)
        .await
        .expect(200);
    assert_eq!(r.json["status"], 3, "{}", r.json);
    let vm_id = VmId::parse(&id).unwrap();
    let stored = vmapi_core::Repository::get_vm(app.repo.as_ref(), vm_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.pending_op.as_ref().map(|p| p.op),
        Some(OpKind::Reboot)
    );
    // A second reboot while one is pending changes nothing.
    app.call(Method::PUT, &reboot, Some(OWNER), None)
        .await
        .expect(200);
    let again = vmapi_core::Repository::get_vm(app.repo.as_ref(), vm_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.version, stored.version);

    app.settle(&provisioner, &id).await;
    assert!(
        sim.calls().contains(&format!("reboot {id}")),
        "{:?}",
        sim.calls()
    );
    let done = vmapi_core::Repository::get_vm(app.repo.as_ref(), vm_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((done.status, done.pending_op), (VmStatus::Running, None));

    // Stopped: 409 again.
    app.call(
        Method::PUT,
        &format!("{}/stop", vm_path(&id)),
        Some(OWNER),
        None,
    )
    .await
    .expect(200);
    app.settle(&provisioner, &id).await;
    app.call(Method::PUT, &reboot, Some(OWNER), None)
        .await
        .expect_error(409, "ILLEGAL_TRANSITION");
}
