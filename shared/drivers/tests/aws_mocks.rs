//! What moto cannot show (it ignores `ClientToken` and `CpuOptions`), checked on the requests the
//! AWS driver sends, with `aws-smithy-mocks`: the idempotency token of a retried create, and the
//! SEV-SNP request and verification.

use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_security_group_rules::DescribeSecurityGroupRulesOutput;
use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
use aws_sdk_ec2::operation::run_instances::RunInstancesOutput;
use aws_sdk_ec2::types::{
    AmdSevSnpSpecification, CpuOptions, Instance, InstanceState, InstanceStateName, Reservation,
    SecurityGroup,
};
use aws_sdk_ec2::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use vmapi_core::cloud::{CloudDriver, CloudState, LoginSpec, VmSpec};
use vmapi_drivers::aws::AwsDriver;
use vmapi_models::{ConfidentialTech, TeamId, VmId};

fn spec(confidential: Option<ConfidentialTech>) -> VmSpec {
    VmSpec {
        vm_id: VmId::parse("654a11e60b23ef1b0f36d44e").unwrap(),
        team: TeamId::parse("6548a41f38406c14db33b61e").unwrap(),
        name: "web-1".into(),
        region: "eu-west-1".into(),
        size: "m6a.large".into(),
        memory_gb: 8,
        vcpus: 2,
        disk_gb: 20,
        image: "ami-0123456789abcdef0".into(),
        login: LoginSpec {
            username: "root".into(),
            public_keys: vec!["ssh-ed25519 AAAA test".into()],
            password_hash: None,
            password: None,
        },
        confidential,
        rules: vec![],
    }
}

fn instance(
    id: &str,
    state: InstanceStateName,
    sev_snp: Option<AmdSevSnpSpecification>,
) -> Instance {
    let mut b = Instance::builder()
        .instance_id(id)
        .state(InstanceState::builder().name(state).build())
        .public_ip_address("198.51.100.10");
    if let Some(s) = sev_snp {
        b = b.cpu_options(CpuOptions::builder().amd_sev_snp(s).build());
    }
    b.build()
}

/// The VM's security group exists already, with no ingress permissions.
fn group() -> (Rule, Rule) {
    let groups = mock!(Client::describe_security_groups).then_output(|| {
        DescribeSecurityGroupsOutput::builder()
            .security_groups(SecurityGroup::builder().group_id("sg-0vm").build())
            .build()
    });
    let rules = mock!(Client::describe_security_group_rules)
        .then_output(|| DescribeSecurityGroupRulesOutput::builder().build());
    (groups, rules)
}

fn driver(client: Client) -> AwsDriver {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    AwsDriver::with_client(sdk, "eu-west-1", client)
}

#[tokio::test]
async fn a_retried_create_sends_the_same_client_token_and_gets_the_same_instance() {
    let vm = spec(None);
    // Describe does not see the instance yet (EC2 is eventually consistent) on both attempts.
    let describe = mock!(Client::describe_instances)
        .then_output(|| DescribeInstancesOutput::builder().build());
    let token = vm.idempotency_key();
    let expected = token.clone();
    let run = mock!(Client::run_instances)
        .match_requests(move |r| {
            r.client_token() == Some(expected.as_str()) && r.security_group_ids() == ["sg-0vm"]
        })
        .then_output(|| {
            RunInstancesOutput::builder()
                .instances(instance("i-0abc", InstanceStateName::Pending, None))
                .build()
        });
    let (groups, sg_rules) = group();
    let client = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [&describe, &run, &groups, &sg_rules]
    );
    let d = driver(client);
    let first = d.create(&vm).await.unwrap();
    let second = d.create(&vm).await.unwrap();
    assert_eq!(first.provider_id, "i-0abc");
    assert_eq!(
        second.provider_id, first.provider_id,
        "EC2 answers a repeated token with the original instance"
    );
    assert_eq!(
        run.num_calls(),
        2,
        "both attempts carried the token {token}"
    );
    assert_eq!(first.state, CloudState::Provisioning);
}

#[tokio::test]
async fn an_instance_already_there_is_not_launched_again() {
    let describe = mock!(Client::describe_instances).then_output(|| {
        DescribeInstancesOutput::builder()
            .reservations(
                Reservation::builder()
                    .instances(instance("i-0live", InstanceStateName::Running, None))
                    .build(),
            )
            .build()
    });
    let run = mock!(Client::run_instances).then_output(|| RunInstancesOutput::builder().build());
    let (groups, sg_rules) = group();
    let client = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [&describe, &run, &groups, &sg_rules]
    );
    let got = driver(client).create(&spec(None)).await.unwrap();
    assert_eq!(got.provider_id, "i-0live");
    assert_eq!(got.state, CloudState::Running);
    assert_eq!(run.num_calls(), 0);
}

#[tokio::test]
async fn sev_snp_is_requested_and_verified() {
    let describe = mock!(Client::describe_instances)
        .then_output(|| DescribeInstancesOutput::builder().build());
    let run = mock!(Client::run_instances)
        .match_requests(|r| {
            r.cpu_options().and_then(|c| c.amd_sev_snp()) == Some(&AmdSevSnpSpecification::Enabled)
        })
        .then_output(|| {
            RunInstancesOutput::builder()
                .instances(instance(
                    "i-0snp",
                    InstanceStateName::Pending,
                    Some(AmdSevSnpSpecification::Enabled),
                ))
                .build()
        });
    let (groups, sg_rules) = group();
    let client = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [&describe, &run, &groups, &sg_rules]
    );
    let got = driver(client)
        .create(&spec(Some(ConfidentialTech::SevSnp)))
        .await
        .unwrap();
    assert_eq!(run.num_calls(), 1, "the request asked for SEV-SNP");
    assert_eq!(got.confidential, Some(ConfidentialTech::SevSnp));
}

#[tokio::test]
async fn an_instance_without_sev_snp_is_reported_as_such() {
    // EC2 launched it, but without SEV-SNP (e.g. an instance type that lacks it): the driver
    // reports what the instance has, and the provisioner fails the VM (never a silent fallback).
    let describe = mock!(Client::describe_instances)
        .then_output(|| DescribeInstancesOutput::builder().build());
    let run = mock!(Client::run_instances).then_output(|| {
        RunInstancesOutput::builder()
            .instances(instance(
                "i-0plain",
                InstanceStateName::Pending,
                Some(AmdSevSnpSpecification::Disabled),
            ))
            .build()
    });
    let (groups, sg_rules) = group();
    let client = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [&describe, &run, &groups, &sg_rules]
    );
    let got = driver(client)
        .create(&spec(Some(ConfidentialTech::SevSnp)))
        .await
        .unwrap();
    assert_eq!(got.confidential, None);
}
