//! Rules applied to EC2 security groups on moto: one group per VM kept equal to its rules,
//! removed with the VM, changes through the stream.

use super::*;

const REGION: &str = "eu-west-1";

async fn ec2() -> aws_sdk_ec2::Client {
    let sdk = vmapi_aws::sdk_config().await;
    aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&sdk)
            .region(aws_sdk_ec2::config::Region::new(REGION))
            .build(),
    )
}

fn aws_spec(rules: Vec<SecurityRule>) -> VmSpec {
    VmSpec {
        vm_id: VmId::new(),
        team: TeamId::parse(TEAM).unwrap(),
        name: "sg-test".into(),
        region: REGION.into(),
        size: "m6a.large".into(),
        memory_gb: 8,
        vcpus: 2,
        disk_gb: 20,
        image: "ami-0d64bb532e0502c46".into(),
        login: LoginSpec {
            username: "root".into(),
            public_keys: vec!["ssh-ed25519 AAAA test".into()],
            password_hash: None,
            password: None,
        },
        confidential: None,
        rules,
    }
}

/// The group's ingress permissions as `protocol from-to cidr (description)`.
async fn ingress(client: &aws_sdk_ec2::Client, group: &str) -> BTreeSet<String> {
    let out = client
        .describe_security_group_rules()
        .filters(Filter::builder().name("group-id").values(group).build())
        .send()
        .await
        .unwrap();
    out.security_group_rules()
        .iter()
        .filter(|r| r.is_egress() == Some(false))
        .map(|r| {
            format!(
                "{} {}-{} {} ({})",
                r.ip_protocol().unwrap_or(""),
                r.from_port().unwrap_or(0),
                r.to_port().unwrap_or(0),
                r.cidr_ipv4().or(r.cidr_ipv6()).unwrap_or(""),
                r.description().unwrap_or("")
            )
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn each_aws_vm_has_its_own_security_group_kept_equal_to_its_rules() {
    let sdk = vmapi_aws::sdk_config().await;
    assert!(
        std::env::var("AWS_ENDPOINT_URL_EC2").is_ok_and(|v| v.contains("127.0.0.1")),
        "AWS_ENDPOINT_URL_EC2 must point at moto: run the tests with `make test`"
    );
    let client = ec2().await;
    let counter = RequestCounter::default();
    let driver = AwsDriver::with_client(sdk.clone(), REGION, counter.ec2_client(REGION).await);
    let ssh = SecurityRule::default_for(Some(CloudKind::Aws), 1, Timestamp::now());
    let spec = aws_spec(vec![ssh.clone()]);
    let target = spec.target();
    let created = driver.create(&spec).await.unwrap();

    // The group: named and tagged after the VM, in the default VPC, the instance in it.
    let groups = groups_of(&client, spec.vm_id).await;
    assert_eq!(groups.len(), 1);
    let group = &groups[0];
    let group_id = group.group_id().unwrap().to_string();
    let tags: std::collections::BTreeMap<_, _> = group
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(tags["managed-by"], "vm-api");
    assert_eq!(tags["vm-id"], spec.vm_id.to_string());
    assert_eq!(tags["team"], TEAM);
    let default_vpc = client
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .unwrap();
    assert_eq!(group.vpc_id(), default_vpc.vpcs()[0].vpc_id());
    let instance = client
        .describe_instances()
        .instance_ids(&created.provider_id)
        .send()
        .await
        .unwrap();
    let in_groups: Vec<_> = instance.reservations()[0].instances()[0]
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    assert_eq!(in_groups, [group_id.as_str()]);
    assert_eq!(
        ingress(&client, &group_id).await,
        set(&["tcp 22-22 0.0.0.0/0 (AllowAnySSHInbound)"])
    );
    let egress_before = group.ip_permissions_egress().to_vec();

    // Every kind of rule: port ranges, every protocol with and without ports, ICMP, IPv6.
    let rules = vec![
        ssh.clone(),
        rule(
            "Web",
            Protocol::Tcp,
            &["80", "8000-8090"],
            "203.0.113.0/24",
            2,
        ),
        rule("Dns", Protocol::Udp, &["53"], "10.0.0.0/8", 2),
        rule("Office", Protocol::Any, &["*"], "198.51.100.0/24", 2),
        rule("Tls", Protocol::Any, &["443"], "0.0.0.0/0", 2),
        rule("Ping", Protocol::Icmp, &["*"], "0.0.0.0/0", 2),
        rule("Ssh6", Protocol::Tcp, &["22"], "2001:db8::/32", 2),
        rule("Ping6", Protocol::Icmp, &["*"], "2001:db8::/32", 2),
        rule("AllTcp", Protocol::Tcp, &["*"], "192.0.2.0/24", 2),
    ];
    driver.apply_rules(&target, &rules).await.unwrap();
    let full = set(&[
        "tcp 22-22 0.0.0.0/0 (AllowAnySSHInbound)",
        "tcp 80-80 203.0.113.0/24 (Web)",
        "tcp 8000-8090 203.0.113.0/24 (Web)",
        "udp 53-53 10.0.0.0/8 (Dns)",
        "-1 -1--1 198.51.100.0/24 (Office)",
        "tcp 443-443 0.0.0.0/0 (Tls)",
        "udp 443-443 0.0.0.0/0 (Tls)",
        "icmp -1--1 0.0.0.0/0 (Ping)",
        "tcp 22-22 2001:db8::/32 (Ssh6)",
        "icmpv6 -1--1 2001:db8::/32 (Ping6)",
        "tcp 0-65535 192.0.2.0/24 (AllTcp)",
    ]);
    assert_eq!(ingress(&client, &group_id).await, full);

    // Idempotent: the same set again only reads.
    counter.take();
    driver.apply_rules(&target, &rules).await.unwrap();
    assert_eq!(
        counter.take(),
        ["DescribeSecurityGroups", "DescribeSecurityGroupRules"]
    );
    assert_eq!(ingress(&client, &group_id).await, full);

    // Fewer rules: the extra permissions are revoked, egress is untouched.
    driver
        .apply_rules(&target, &[rules[1].clone(), rules[7].clone()])
        .await
        .unwrap();
    assert_eq!(
        ingress(&client, &group_id).await,
        set(&[
            "tcp 80-80 203.0.113.0/24 (Web)",
            "tcp 8000-8090 203.0.113.0/24 (Web)",
            "icmpv6 -1--1 2001:db8::/32 (Ping6)",
        ])
    );
    driver.apply_rules(&target, &[]).await.unwrap();
    assert!(ingress(&client, &group_id).await.is_empty());
    let after = client
        .describe_security_groups()
        .group_ids(&group_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.security_groups()[0].ip_permissions_egress(),
        egress_before
    );

    // Rules AWS cannot express are refused before any change.
    let mut deny = rules[1].clone();
    deny.access = RuleAccess::Deny;
    let mut outbound = rules[1].clone();
    outbound.direction = Direction::Outbound;
    for bad in [deny, outbound] {
        assert!(matches!(
            driver.apply_rules(&target, &[bad]).await,
            Err(DriverError::InvalidSpec(_))
        ));
    }

    // A repeated create finds the instance and the group and syncs the rules again.
    let again = driver.create(&spec).await.unwrap();
    assert_eq!(again.provider_id, created.provider_id);
    assert_eq!(
        ingress(&client, &group_id).await,
        set(&["tcp 22-22 0.0.0.0/0 (AllowAnySSHInbound)"])
    );

    // Delete: the instance first; the group with the call after the instance is gone.
    driver.delete(&target).await.unwrap();
    for _ in 0..50 {
        if driver.get(&target).await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(driver.get(&target).await.unwrap().is_none());
    driver.delete(&target).await.unwrap();
    let left = groups_of(&client, spec.vm_id).await;
    assert!(left.is_empty(), "{left:?}");
    // Again: nothing left, nothing to do.
    driver.delete(&target).await.unwrap();
    assert!(matches!(
        driver.apply_rules(&target, &rules).await,
        Err(DriverError::NotFound(_))
    ));
}

#[tokio::test]
async fn the_provisioner_applies_rules_on_aws_and_removes_the_group_with_the_vm() {
    let app = TestApp::spawn().await;
    let sdk = vmapi_aws::sdk_config().await;
    let client = ec2().await;
    let p = app.provisioner(vmapi_core::Drivers::new().with(
        CloudKind::Aws,
        Arc::new(AwsDriver::new(sdk, vmapi_models::DeploymentId::local())),
    ));
    let seed = demo_seed();
    let aws = seed
        .providers
        .iter()
        .find(|p| p.id.to_string().ends_with("968c"))
        .unwrap();
    let body = serde_json::json!({
        "cloudProvider": aws.cloud_provider, "team": TEAM, "project": PROJECT,
        "hostNames": ["aws-rules-1"], "provider": aws.id, "size": "6548a383e2442d14b6bf9746",
        "price": "6548a383e2442d14b6bf970c", "region": aws.locations[0].region, "image": aws.images[0],
        "authMethod": 0
    });
    let id = VmId::parse(&app.create_vm_as(OWNER, &body).await).unwrap();
    app.settle(&p, &id.to_string()).await;
    let vm = stored(&app, id).await;
    assert_eq!(vm.status, VmStatus::Running, "{vm:?}");
    let group_of = |client: aws_sdk_ec2::Client| async move {
        groups_of(&client, id)
            .await
            .first()
            .and_then(|g| g.group_id())
            .map(str::to_string)
    };
    let group = group_of(client.clone()).await.expect("the VM's group");

    change_rules(
        &app,
        id,
        vec![rule("Web", Protocol::Tcp, &["443"], "0.0.0.0/0", 9)],
    )
    .await;
    app.settle(&p, &id.to_string()).await;
    let vm = stored(&app, id).await;
    assert_eq!(vm.rules_applied, vm.rules_revision);
    assert_eq!(
        ingress(&client, &group).await,
        set(&["tcp 443-443 0.0.0.0/0 (Web)"])
    );

    app.call(
        Method::DELETE,
        &format!("/api/virtual-machines/{id}"),
        Some(OWNER),
        None,
    )
    .await
    .expect(200);
    app.settle(&p, &id.to_string()).await;
    assert_eq!(stored(&app, id).await.status, VmStatus::Deleted);
    assert_eq!(group_of(client).await, None, "the group went with the VM");
}

#[tokio::test]
async fn rule_changes_reach_the_cloud_through_the_stream() {
    let app = TestApp::spawn().await;
    let (sim, p) = app.simulated();
    let _stream = app.stream_provisioner(p).await;
    let r = app.create(OWNER, &["rules-stream"]).await.expect(201);
    let id = VmId::parse(r.json[0]["_id"].as_str().unwrap()).unwrap();
    app.wait_for(&id.to_string(), OWNER, 20, |r| r.json["status"] == 3)
        .await;
    let vm = stored(&app, id).await;
    assert_eq!(vm.rules_applied, vm.rules_revision, "{vm:?}");

    let wanted = vec![rule("Web", Protocol::Tcp, &["8080"], "0.0.0.0/0", 2)];
    let written = change_rules(&app, id, wanted.clone()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let vm = stored(&app, id).await;
        if vm.rules_applied == written.rules_revision && vm.pending_op.is_none() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never applied: {vm:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sim.rules(id).unwrap(), wanted);
}

/// The security groups named after a VM (`vm-api-{vmId}`).
async fn groups_of(
    client: &aws_sdk_ec2::Client,
    vm: VmId,
) -> Vec<aws_sdk_ec2::types::SecurityGroup> {
    client
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-name")
                .values(format!("vm-api-{vm}"))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .security_groups()
        .to_vec()
}
