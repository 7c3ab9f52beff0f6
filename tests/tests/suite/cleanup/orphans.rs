//! What no VM owns any more: logins (Secrets Manager, Vault) and cloud VMs (EC2 on moto).

use std::sync::Arc;
use std::time::Duration;

use vmapi_core::{Cleanup, CleanupPolicy, SystemClock};
use vmapi_models::{
    AuthMethod, CloudKind, LoginSecret, SecretPath, Sensitive, Timestamp, VmId, VmStatus,
};
use vmapi_tests::*;

use super::common::{cleanup, create_running, status_of};

fn login() -> LoginSecret {
    LoginSecret {
        username: "root".into(),
        auth_method: AuthMethod::Password,
        password: Some(Sensitive::new("Orphaned-Pa55word-xx".to_string())),
        private_key: None,
        public_key: None,
    }
}

#[tokio::test]
async fn orphaned_logins_and_cloud_vms_are_removed_after_the_grace_period() {
    use vmapi_core::cloud::CloudDriver;
    use vmapi_core::{Gone, SecretLabels};
    let app = TestApp::spawn().await;
    let (sim, provisioner) = app.simulated();
    let own = (TEAM, PROJECT);
    let live = create_running(&app, &provisioner, OWNER, own, "live").await;

    // A VM login whose VM record never came, a team login of a team without VMs (kept while
    // the team is in the table), and a cloud VM nobody asked for.
    let ghost = VmId::new();
    let ghost_login = SecretPath::from_text(&format!("{TEAM}/vm/{ghost}/root"));
    let other_team = SecretPath::from_text(&format!("{OTHER_TEAM}/user/root"));
    for (path, team, vm) in [
        (&ghost_login, TEAM, Some(ghost)),
        (&other_team, OTHER_TEAM, None),
    ] {
        app.secrets
            .create(
                path,
                &login(),
                SecretLabels {
                    team: team.parse().unwrap(),
                    vm,
                },
            )
            .await
            .unwrap();
    }
    let mut stray = demo_vm("stray", VmStatus::Running);
    stray.id = ghost;
    sim.create(&spec_of(&stray)).await.unwrap();
    assert_eq!(sim.count(), 2);
    let listed = app.secrets.list_managed().await.unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        listed.iter().all(|s| s.created_at.is_some()),
        "moto reports creation dates"
    );

    // Within the grace period nothing is touched.
    let young = Cleanup::new(
        app.repo.clone(),
        Arc::new(SystemClock),
        Some(provisioner.clone()),
        CleanupPolicy {
            orphan_grace: Duration::from_secs(3600),
            regions: vec![(CloudKind::Kraud, String::new())],
            ..CleanupPolicy::default()
        },
    );
    let summary = young.run().await.unwrap();
    assert_eq!(summary.reconciled, 0, "{summary:#?}");

    // A dry run names the ghost login and the stray VM, and changes nothing.
    let dry = cleanup(&app, Some(provisioner.clone()), true)
        .run()
        .await
        .unwrap();
    assert_eq!(dry.reconciled, 2, "{dry:#?}");
    assert_eq!(app.secret_names().await.len(), 3);
    assert_eq!(sim.count(), 2);

    let run = cleanup(&app, Some(provisioner.clone()), false)
        .run()
        .await
        .unwrap();
    assert_eq!((run.reconciled, run.failed), (2, 0), "{run:#?}");
    assert_eq!(
        app.secret_names().await.len(),
        2,
        "the other team's login stays"
    );

    // Once the team itself is removed, its login goes.
    app.repo
        .remove_owner(Gone::Team(OTHER_TEAM.parse().unwrap()), Timestamp::now())
        .await
        .unwrap();
    let gone = cleanup(&app, Some(provisioner.clone()), false)
        .run()
        .await
        .unwrap();
    assert_eq!((gone.reconciled, gone.failed), (1, 0), "{gone:#?}");
    assert!(
        gone.actions
            .iter()
            .any(|a| a.contains(&format!("team {OTHER_TEAM} is removed"))),
        "{gone:#?}"
    );
    let names = app.secret_names().await;
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].ends_with(&format!("{TEAM}/user/root")),
        "the live VM's team login stays"
    );
    let left = sim.list_managed("").await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].target.vm_id, VmId::parse(&live).unwrap());
    assert_eq!(
        status_of(&app, VmId::parse(&live).unwrap()).await,
        Some(VmStatus::Running)
    );
    let line = vmapi_core::cleanup::emf_line(&run, Timestamp::now());
    assert!(line.contains("\"Reconciled\":2"), "{line}");
    assert!(
        !line.contains("Orphaned-Pa55word"),
        "no secret in the summary"
    );

    // Idempotent: the next run finds nothing.
    let again = cleanup(&app, Some(provisioner), false).run().await.unwrap();
    assert_eq!(again.reconciled, 0, "{again:#?}");
}

#[tokio::test]
async fn vault_logins_are_listed_and_reconciled() {
    use vmapi_core::SecretLabels;
    let vault = vault::OpenBao::shared().await;
    let app = crate::vault::app(&vault, vmapi_models::CredentialScope::Vm).await;
    let (_sim, provisioner) = app.simulated();
    let own = (TEAM, PROJECT);
    let live = create_running(&app, &provisioner, OWNER, own, "live").await;
    let ghost = SecretPath::from_text(&format!("{TEAM}/vm/{}/root", VmId::new()));
    app.secrets
        .create(
            &ghost,
            &login(),
            SecretLabels {
                team: TEAM.parse().unwrap(),
                vm: None,
            },
        )
        .await
        .unwrap();
    // Not ours: another shape under the same mount.
    app.secrets
        .create(
            &SecretPath::from_text("azure-credentials"),
            &login(),
            SecretLabels {
                team: TEAM.parse().unwrap(),
                vm: None,
            },
        )
        .await
        .unwrap();
    let mut listed: Vec<String> = app
        .secrets
        .list_managed()
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            assert!(s.created_at.is_some(), "metadata gives created_time");
            s.path.to_string()
        })
        .collect();
    listed.sort();
    let mut expected = vec![format!("{TEAM}/vm/{live}/root"), ghost.to_string()];
    expected.sort();
    assert_eq!(listed, expected);

    let run = cleanup(&app, Some(provisioner), false).run().await.unwrap();
    assert_eq!(run.reconciled, 1, "{run:#?}");
    let paths = vault.paths().await;
    let mut expected = vec![
        "azure-credentials".to_string(),
        format!("{TEAM}/vm/{live}/root"),
    ];
    expected.sort();
    assert_eq!(paths, expected);
}

#[tokio::test]
async fn orphaned_ec2_instances_are_terminated_on_moto() {
    use vmapi_core::cloud::CloudDriver;
    use vmapi_drivers::aws::AwsDriver;
    // A region no other test uses, so other tests' instances are never judged here.
    const REGION: &str = "ap-southeast-2";
    let app = TestApp::spawn().await;
    let sdk = vmapi_aws::sdk_config().await;
    let aws = Arc::new(AwsDriver::new(
        sdk.clone(),
        vmapi_models::DeploymentId::local(),
    ));
    let mut stray = demo_vm("stray", VmStatus::Running);
    stray.region.datacenter.name = REGION.into();
    let mut spec = spec_of(&stray);
    spec.size = "t3.micro".into();
    spec.image = "ami-0d64bb532e0502c46".into();
    let created = aws.create(&spec).await.unwrap();
    // A VM whose record is in place: its instance and security group stay.
    let mut kept = demo_vm("kept", VmStatus::Running);
    kept.region.datacenter.name = REGION.into();
    app.seed_vm(&kept).await;
    let mut kept_spec = spec_of(&kept);
    kept_spec.size = "t3.micro".into();
    kept_spec.image = "ami-0d64bb532e0502c46".into();
    let kept_created = aws.create(&kept_spec).await.unwrap();
    // An instance that is not ours (no managed-by tag).
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&sdk)
            .region(aws_sdk_ec2::config::Region::new(REGION))
            .build(),
    );
    let foreign = ec2
        .run_instances()
        .image_id("ami-0d64bb532e0502c46")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let foreign_id = foreign.instances()[0].instance_id().unwrap().to_string();
    let listed = aws.list_managed(REGION).await.unwrap();
    assert!(
        listed.iter().any(|r| r.target.vm_id == stray.id
            && r.target.provider_id.as_deref() == Some(created.provider_id.as_str())),
        "{listed:?}"
    );
    assert!(listed
        .iter()
        .all(|r| r.target.provider_id.as_deref() != Some(foreign_id.as_str())));

    let provisioner = app.provisioner(vmapi_core::Drivers::new().with(CloudKind::Aws, aws.clone()));
    let job = || {
        Cleanup::new(
            app.repo.clone(),
            Arc::new(SystemClock),
            Some(provisioner.clone()),
            CleanupPolicy {
                orphan_grace: Duration::ZERO,
                regions: vec![(CloudKind::Aws, REGION.into())],
                ..CleanupPolicy::default()
            },
        )
    };
    let run = job().run().await.unwrap();
    assert!(run.reconciled >= 1, "{run:#?}");
    let state = |id: String| {
        let ec2 = ec2.clone();
        async move {
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
    };
    let ours = state(created.provider_id.clone()).await;
    assert!(
        matches!(ours.as_str(), "shutting-down" | "terminated"),
        "{ours}"
    );
    assert_eq!(state(foreign_id).await, "running", "not ours: untouched");
    assert_eq!(state(kept_created.provider_id.clone()).await, "running");

    // The stray's security group outlived its instance (it can only go once the instance is
    // terminated): the next listing names it as a firewall without a VM, and the next run
    // removes it. The recorded VM's group stays.
    let groups = |vm: VmId| {
        let ec2 = ec2.clone();
        async move {
            ec2.describe_security_groups()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("group-name")
                        .values(vmapi_drivers::aws::group_name(vm))
                        .build(),
                )
                .send()
                .await
                .unwrap()
                .security_groups()
                .len()
        }
    };
    assert_eq!(groups(stray.id).await, 1);
    let listed = aws.list_managed(REGION).await.unwrap();
    let left: Vec<_> = listed
        .iter()
        .filter(|r| r.target.vm_id == stray.id)
        .collect();
    assert!(
        matches!(left.as_slice(), [r] if matches!(r.kind, vmapi_core::cloud::ManagedKind::Firewall(_))),
        "{listed:?}"
    );
    let again = job().run().await.unwrap();
    assert!(
        again
            .actions
            .iter()
            .any(|a| a.contains("firewall") && a.contains(&stray.id.to_string())),
        "{again:#?}"
    );
    assert_eq!(groups(stray.id).await, 0, "the orphaned group is gone");
    assert_eq!(groups(kept.id).await, 1, "a recorded VM's group stays");
    assert_eq!(state(kept_created.provider_id.clone()).await, "running");
    assert!(aws
        .list_managed(REGION)
        .await
        .unwrap()
        .iter()
        .all(|r| r.target.vm_id != stray.id));
}
