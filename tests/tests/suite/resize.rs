//! Changing a VM's size: `PUT /api/virtual-machines/{id}/resize` through the provisioner and the
//! EC2 driver on moto, and the driver itself (stop, change the type, start, one step per
//! call). The Azure driver's resize is checked against Microsoft's API description in
//! `shared/drivers/tests/azure`; Kraud.Cloud cannot resize (422 at request time).

use std::sync::Arc;

use vmapi_core::cloud::{CloudDriver, CloudTarget, ResizeProgress};
use vmapi_core::Drivers;
use vmapi_drivers::aws::AwsDriver;
use vmapi_models::{CloudKind, DeploymentId, VmId};
use vmapi_tests::*;

use crate::provisioning::{catalog_request, create_body};

/// Calls `resize` until it answers `Done` (moto moves between states at once).
async fn resize(driver: &AwsDriver, target: &CloudTarget, size: &str, running: bool) -> usize {
    for calls in 1..=10 {
        if driver.resize(target, size, running).await.expect("resize") == ResizeProgress::Done {
            return calls;
        }
    }
    panic!("resize to {size} never finished");
}

async fn instance(ec2: &aws_sdk_ec2::Client, id: &str) -> aws_sdk_ec2::types::Instance {
    ec2.describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:vm-id")
                .values(id)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .reservations()
        .iter()
        .flat_map(|r| r.instances().to_vec())
        .find(|i| {
            i.state().and_then(|s| s.name())
                != Some(&aws_sdk_ec2::types::InstanceStateName::Terminated)
        })
        .expect("the VM's instance")
}

#[tokio::test]
async fn an_ec2_instance_is_stopped_changed_and_started_again_or_left_stopped() {
    let app = TestApp::spawn().await;
    let sdk = vmapi_aws::sdk_config().await;
    let driver = AwsDriver::new(sdk.clone(), DeploymentId::local());
    let p = app.provisioner(Drivers::new().with(
        CloudKind::Aws,
        Arc::new(AwsDriver::new(sdk.clone(), DeploymentId::local())),
    ));
    let id = create_body(&app, &catalog_request("968c", "9746", "970c", "aws-resize")).await;
    app.settle(&p, &id).await;
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&sdk)
            .region(aws_sdk_ec2::config::Region::new("eu-west-1"))
            .build(),
    );
    let before = instance(&ec2, &id).await;
    assert_eq!(before.instance_type().unwrap().as_str(), "m6a.large");
    let target = CloudTarget {
        vm_id: VmId::parse(&id).unwrap(),
        region: "eu-west-1".into(),
        provider_id: None,
    };

    // Running: stop, change, start; running again with the new type.
    let calls = resize(&driver, &target, "m6a.xlarge", true).await;
    assert!(
        calls >= 3,
        "stop, change and start are separate steps ({calls} calls)"
    );
    let after = instance(&ec2, &id).await;
    assert_eq!(after.instance_type().unwrap().as_str(), "m6a.xlarge");
    assert_eq!(
        after.state().and_then(|s| s.name()).map(|s| s.as_str()),
        Some("running")
    );
    assert_eq!(
        after.instance_id(),
        before.instance_id(),
        "the same instance"
    );
    // Again: nothing to do.
    assert_eq!(
        driver.resize(&target, "m6a.xlarge", true).await.unwrap(),
        ResizeProgress::Done
    );

    // A stopped VM stays stopped.
    driver.stop(&target).await.unwrap();
    resize(&driver, &target, "m6a.large", false).await;
    let stopped = instance(&ec2, &id).await;
    assert_eq!(stopped.instance_type().unwrap().as_str(), "m6a.large");
    assert_eq!(
        stopped.state().and_then(|s| s.name()).map(|s| s.as_str()),
        Some("stopped")
    );
}

#[test]
fn only_kraud_cannot_resize() {
    use vmapi_drivers::azure::AzureDriver;
    use vmapi_drivers::kraud::KraudDriver;
    assert!(!KraudDriver::static_capabilities().resize);
    assert!(AzureDriver::static_capabilities().resize);
}

#[tokio::test]
async fn put_resize_moves_an_aws_vm_to_the_new_size_and_it_runs_again() {
    let app = TestApp::spawn().await;
    let sdk = vmapi_aws::sdk_config().await;
    let p = app.provisioner(Drivers::new().with(
        CloudKind::Aws,
        Arc::new(AwsDriver::new(sdk.clone(), DeploymentId::local())),
    ));
    let id = create_body(
        &app,
        &catalog_request("968c", "9746", "970c", "aws-put-resize"),
    )
    .await;
    app.settle(&p, &id).await;
    let path = format!("/api/virtual-machines/{id}");
    let etag = app.get(&path, OWNER).await.expect(200).headers["etag"]
        .to_str()
        .unwrap()
        .to_string();
    let body = serde_json::json!({
        "size": "6548a383e2442d14b6bf9747",
        "price": "6548a383e2442d14b6bf970d"
    });
    // A stale If-Match is refused; the right one accepted.
    app.call_with(
        reqwest::Method::PUT,
        &format!("{path}/resize"),
        Some(OWNER),
        Some(&body),
        &[("if-match", b"\"1\"")],
    )
    .await
    .expect_error(412, "PRECONDITION_FAILED");
    let r = app
        .call_with(
            reqwest::Method::PUT,
            &format!("{path}/resize"),
            Some(OWNER),
            Some(&body),
            &[("if-match", etag.as_bytes())],
        )
        .await
        .expect(200);
    assert_eq!(r.json["message"], "Virtual machine is being resized");
    assert_eq!(r.json["status"], 3);
    let during = app.get(&path, OWNER).await.json;
    assert_eq!(
        during["size"]["name"], "m6a.large",
        "the old size until the cloud confirms"
    );

    app.settle(&p, &id).await;
    let vm = app.get(&path, OWNER).await.expect(200).json;
    assert_eq!(vm["status"], 3, "{vm}");
    assert_eq!(vm["size"]["name"], "m6a.xlarge");
    assert_eq!(vm["price"]["_id"], "6548a383e2442d14b6bf970d");
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&sdk)
            .region(aws_sdk_ec2::config::Region::new("eu-west-1"))
            .build(),
    );
    assert_eq!(
        instance(&ec2, &id).await.instance_type().unwrap().as_str(),
        "m6a.xlarge"
    );
    let usage = app
        .repo
        .usage(TEAM.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(usage.vcpus, 4, "the larger size counts against the quota");
    let activity = app.get(&format!("{path}/activity"), OWNER).await.json;
    assert!(
        activity
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "vm.resize" && e["detail"] == "from m6a.large to m6a.xlarge"),
        "{activity}"
    );
}

#[tokio::test]
async fn bad_resizes_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let sdk = vmapi_aws::sdk_config().await;
    let p = app.provisioner(Drivers::new().with(
        CloudKind::Aws,
        Arc::new(AwsDriver::new(sdk.clone(), DeploymentId::local())),
    ));
    let aws = create_body(
        &app,
        &catalog_request("968c", "9746", "970c", "aws-bad-resize"),
    )
    .await;
    app.settle(&p, &aws).await;
    let kraud = app
        .create(OWNER, &["kraud-no-resize"])
        .await
        .expect(201)
        .json[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let put = |id: &str, body: serde_json::Value| {
        let path = format!("/api/virtual-machines/{id}/resize");
        let app = &app;
        async move {
            app.call(reqwest::Method::PUT, &path, Some(OWNER), Some(&body))
                .await
        }
    };
    let before = app.dump().await;
    // An Azure size for an AWS VM; the price of another size; an unknown field.
    let r = put(&aws, serde_json::json!({"size": "6548a383e2442d14b6bf9749", "price": "6548a383e2442d14b6bf970f"}))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    assert!(r.json.to_string().contains("size"), "{}", r.json);
    let r = put(&aws, serde_json::json!({"size": "6548a383e2442d14b6bf9747", "price": "6548a383e2442d14b6bf970c"}))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    assert!(r.json.to_string().contains("price"), "{}", r.json);
    put(&aws, serde_json::json!({"size": "6548a383e2442d14b6bf9747", "price": "6548a383e2442d14b6bf970d", "cores": 8}))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    // Kraud.Cloud cannot.
    put(&kraud, serde_json::json!({"size": "6548a383e2442d14b6bf9745", "price": "6548a383e2442d14b6bf970b"}))
        .await
        .expect_error(422, "UNSUPPORTED_BY_PROVIDER");
    assert_eq!(app.dump().await, before, "a refused resize wrote");

    // A confidential VM (m6a.xlarge is sev-snp; moto cannot run one, so it is seeded) cannot
    // move to a size that is not.
    let mut conf = as_aws_demo_vm(&demo_vm(
        "aws-confidential",
        vmapi_models::VmStatus::Running,
    ));
    conf.size = "6548a383e2442d14b6bf9747".parse().unwrap();
    conf.price = "6548a383e2442d14b6bf970d".parse().unwrap();
    app.seed_vm(&conf).await;
    let r = put(&conf.id.to_string(), serde_json::json!({"size": "6548a383e2442d14b6bf9746", "price": "6548a383e2442d14b6bf970c"}))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    assert!(r.json.to_string().contains("confidential"), "{}", r.json);
}
