//! AWS EC2 and Secrets Manager on moto: another deployment's VMs and logins survive cleanup.

use aws_sdk_ec2::types::{Filter, InstanceType, ResourceType, Tag, TagSpecification};
use vmapi_drivers::aws::{group_name, AwsDriver};
use vmapi_secrets::config::SecretsManagerConfig;
use vmapi_secrets::SecretsManagerStore;

use super::*;

/// A region no other test uses.
const REGION: &str = "ap-northeast-3";
const AMI: &str = "ami-0d64bb532e0502c46";

fn aws_spec(vm: &VmRecord) -> VmSpec {
    let mut spec = spec_of(vm);
    spec.size = "t3.micro".into();
    spec.image = AMI.into();
    spec
}

/// An instance and a security group as the service made them before deployment ids:
/// `managed-by` and `vm-id` tags only.
async fn launch_untagged(ec2: &aws_sdk_ec2::Client, vm: VmId) -> String {
    let tags = |kind: ResourceType| {
        TagSpecification::builder()
            .resource_type(kind)
            .tags(Tag::builder().key("managed-by").value("vm-api").build())
            .tags(Tag::builder().key("vm-id").value(vm.to_string()).build())
            .build()
    };
    ec2.create_security_group()
        .group_name(group_name(vm))
        .description("legacy")
        .tag_specifications(tags(ResourceType::SecurityGroup))
        .send()
        .await
        .unwrap();
    let out = ec2
        .run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(tags(ResourceType::Instance))
        .send()
        .await
        .unwrap();
    out.instances()[0].instance_id().unwrap().to_string()
}

async fn state(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default()
}

/// The deployment tags of the VM's security groups.
async fn group_deployments(ec2: &aws_sdk_ec2::Client, vm: VmId) -> Vec<Option<String>> {
    let out = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-name")
                .values(group_name(vm))
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.security_groups()
        .iter()
        .map(|g| {
            g.tags()
                .iter()
                .find(|t| t.key() == Some(DeploymentId::TAG))
                .and_then(|t| t.value())
                .map(str::to_string)
        })
        .collect()
}

async fn secret_deployment(sm: &aws_sdk_secretsmanager::Client, name: &str) -> Option<String> {
    let out = sm.describe_secret().secret_id(name).send().await.unwrap();
    out.tags()
        .iter()
        .find(|t| t.key() == Some(DeploymentId::TAG))
        .and_then(|t| t.value())
        .map(str::to_string)
}

#[tokio::test]
async fn another_deployments_instance_group_and_login_survive_and_untagged_ones_wait_for_adopt() {
    let app = TestApp::spawn().await;
    let sdk = vmapi_aws::sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&sdk)
            .region(aws_sdk_ec2::config::Region::new(REGION))
            .build(),
    );
    let sm = secretsmanager_client().await;
    let prefix = app.secrets_prefix.clone().unwrap();
    let ours_aws = Arc::new(AwsDriver::new(sdk.clone(), ours()));
    let their_aws = AwsDriver::new(sdk.clone(), theirs());
    let their_store = SecretsManagerStore::new(
        sm.clone(),
        SecretsManagerConfig {
            prefix: prefix.clone(),
            kms_key_id: None,
            recovery_window_days: 0,
        },
        theirs(),
    );

    // The other deployment's VM (in its table, not ours): instance, group and login.
    let their_vm = vm_in("theirs", REGION);
    let their_instance = their_aws.create(&aws_spec(&their_vm)).await.unwrap();
    their_store
        .create(&vm_login(their_vm.id), &login(), labels(their_vm.id))
        .await
        .unwrap();
    // Ours with no VM record left: goes.
    let stray = vm_in("stray", REGION);
    let stray_instance = ours_aws.create(&aws_spec(&stray)).await.unwrap();
    app.secrets
        .create(&vm_login(stray.id), &login(), labels(stray.id))
        .await
        .unwrap();
    // Untagged, from before deployment ids: one whose VM is in this table, one not.
    let legacy = vm_in("legacy", REGION);
    app.seed_vm(&legacy).await;
    let unknown = vm_in("unknown", REGION);
    let legacy_instance = launch_untagged(&ec2, legacy.id).await;
    let unknown_instance = launch_untagged(&ec2, unknown.id).await;
    let legacy_secret = format!("{prefix}{}", vm_login(legacy.id));
    sm.create_secret()
        .name(&legacy_secret)
        .secret_string(serde_json::to_string(&login()).unwrap())
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("managed-by")
                .value("vm-api")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // The driver finds only its own deployment's: not the untagged instance by its VM id.
    let legacy_target = CloudTarget {
        vm_id: legacy.id,
        region: REGION.into(),
        provider_id: None,
    };
    assert_eq!(ours_aws.get(&legacy_target).await.unwrap(), None);

    let p = app.provisioner(Drivers::new().with(CloudKind::Aws, ours_aws.clone()));
    let regions = [(CloudKind::Aws, REGION)];
    let run = cleanup(&app, &p, &regions).await;
    assert_eq!(run.failed, 0, "{run:#?}");
    let stray_state = state(&ec2, &stray_instance.provider_id).await;
    assert!(
        matches!(stray_state.as_str(), "shutting-down" | "terminated"),
        "ours without a record goes: {stray_state}"
    );
    assert_eq!(state(&ec2, &their_instance.provider_id).await, "running");
    assert_eq!(
        group_deployments(&ec2, their_vm.id).await,
        [Some("staging".to_string())]
    );
    assert_eq!(state(&ec2, &legacy_instance).await, "running");
    assert_eq!(state(&ec2, &unknown_instance).await, "running");
    let names = app.secret_names().await;
    assert!(
        names.contains(&format!("{prefix}{}", vm_login(their_vm.id))),
        "{names:?}"
    );
    assert!(names.contains(&legacy_secret), "{names:?}");
    assert!(
        !names.contains(&format!("{prefix}{}", vm_login(stray.id))),
        "{names:?}"
    );
    // Untagged: the two instances and the legacy login, each reported (a long-lived moto
    // may hold more from earlier runs, so count only this run's).
    let left_alone = |s: &Summary| {
        s.actions
            .iter()
            .filter(|a| {
                a.contains("left alone")
                    && [legacy.id, unknown.id]
                        .iter()
                        .any(|id| a.contains(&id.to_string()))
            })
            .count()
    };
    assert_eq!(left_alone(&run), 3, "{run:#?}");
    assert!(run.untagged >= 3, "{run:#?}");
    assert!(
        !says(&run.actions, their_vm.id, ""),
        "another deployment's are passed over in silence: {run:#?}"
    );

    let adopted = adopt_ours(&app, &p, &regions).await;
    assert_eq!((adopted.adopted, adopted.failed), (2, 0), "{adopted:#?}");
    assert!(adopted.left >= 1, "{adopted:#?}");
    assert!(
        says(&adopted.actions, unknown.id, "left untagged"),
        "{adopted:#?}"
    );
    assert_eq!(
        ours_aws
            .get(&legacy_target)
            .await
            .unwrap()
            .map(|vm| vm.provider_id),
        Some(legacy_instance.clone()),
        "found by its tags once adopted"
    );
    assert_eq!(
        group_deployments(&ec2, legacy.id).await,
        [Some("local".to_string())],
        "its group is tagged with it"
    );
    assert_eq!(
        secret_deployment(&sm, &legacy_secret).await.as_deref(),
        Some("local")
    );

    let again = cleanup(&app, &p, &regions).await;
    assert_eq!(left_alone(&again), 1, "{again:#?}");
    assert!(!says(&again.actions, legacy.id, ""), "{again:#?}");
    assert!(says(&again.actions, unknown.id, "left alone"), "{again:#?}");
    assert_eq!(state(&ec2, &legacy_instance).await, "running");
    assert_eq!(state(&ec2, &their_instance.provider_id).await, "running");
}
