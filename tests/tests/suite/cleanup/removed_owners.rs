//! Healthy VMs of a removed project or team.

use std::time::Duration;

use vmapi_models::{Timestamp, VmId, VmStatus};
use vmapi_tests::*;

use super::common::{cleanup, create_running, status_of};

#[tokio::test]
async fn healthy_vms_of_a_removed_project_or_team_are_deleted() {
    use vmapi_core::{Gone, Repository};
    let app = TestApp::spawn().await;
    let (sim, provisioner) = app.simulated();
    let own = (TEAM, PROJECT);
    let other = (OTHER_TEAM, OTHER_PROJECT);
    let a = create_running(&app, &provisioner, OWNER, own, "gone-a").await;
    let b = create_running(&app, &provisioner, OWNER, own, "gone-b").await;
    let c = create_running(&app, &provisioner, OTHER_OWNER, other, "stays").await;
    let id = |s: &str| VmId::parse(s).unwrap();
    assert_eq!(status_of(&app, id(&a)).await, Some(VmStatus::Running));

    // Healthy VMs are in no stale category: a run finds nothing to do.
    let quiet = cleanup(&app, Some(provisioner.clone()), false)
        .run()
        .await
        .unwrap();
    assert_eq!((quiet.candidates, quiet.deleted), (0, 0), "{quiet:#?}");

    // The platform removes the project; the stream (as in `make run` and in Lambda) notes it.
    let _stream = app.stream_provisioner(provisioner.clone()).await;
    let client = local_client().await;
    client
        .delete_item()
        .table_name(&app.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("PROJECT#{PROJECT}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("PROJECT".into()),
        )
        .send()
        .await
        .unwrap();
    let gone = Gone::Project(PROJECT.parse().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !app
        .repo
        .tombstones(10)
        .await
        .unwrap()
        .iter()
        .any(|t| t.gone == gone)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the stream noted no tombstone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A dry run names both VMs and changes nothing.
    let dry = cleanup(&app, Some(provisioner.clone()), true)
        .run()
        .await
        .unwrap();
    assert_eq!((dry.candidates, dry.deleted), (2, 2), "{dry:#?}");
    assert_eq!(status_of(&app, id(&a)).await, Some(VmStatus::Running));

    let run = cleanup(&app, Some(provisioner.clone()), false)
        .run()
        .await
        .unwrap();
    assert_eq!(
        (run.candidates, run.deleted, run.failed),
        (2, 2, 0),
        "{run:#?}"
    );
    for vm in [&a, &b] {
        assert_eq!(
            status_of(&app, id(vm)).await,
            Some(VmStatus::Deleted),
            "{vm}"
        );
        assert!(
            run.actions
                .iter()
                .any(|l| l.starts_with(vm.as_str()) && l.contains("no longer exists")),
            "{run:#?}"
        );
    }
    assert_eq!(
        status_of(&app, id(&c)).await,
        Some(VmStatus::Running),
        "other team untouched"
    );
    assert_eq!(
        sim.count(),
        1,
        "only the other team's VM is left in the cloud"
    );
    // The demo team has no VMs left but is still in the table: team logins are shared with
    // other deployments, so its login stays until the team itself is gone.
    let names = app.secret_names().await;
    assert!(
        names
            .iter()
            .any(|n| n.contains(&format!("{TEAM}/user/root"))),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains(&format!("{OTHER_TEAM}/user/root"))),
        "{names:?}"
    );

    // Nothing of the project is left: the next run forgets the tombstone.
    let next = cleanup(&app, Some(provisioner.clone()), false)
        .run()
        .await
        .unwrap();
    assert!(
        next.actions
            .iter()
            .any(|a| a.contains("forget the tombstone")),
        "{next:#?}"
    );
    assert!(app.repo.tombstones(10).await.unwrap().is_empty());

    // A removed team (the operator path: `vmctl remove team`): its VMs go too.
    app.repo
        .remove_owner(Gone::Team(OTHER_TEAM.parse().unwrap()), Timestamp::now())
        .await
        .unwrap();
    let run = cleanup(&app, Some(provisioner.clone()), false)
        .run()
        .await
        .unwrap();
    assert_eq!((run.candidates, run.deleted), (1, 1), "{run:#?}");
    assert_eq!(status_of(&app, id(&c)).await, Some(VmStatus::Deleted));
    assert_eq!(sim.count(), 0);
    // The removed team's login goes with it; the demo team's stays.
    let names = app.secret_names().await;
    assert!(
        !names
            .iter()
            .any(|n| n.contains(&format!("{OTHER_TEAM}/user/root"))),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains(&format!("{TEAM}/user/root"))),
        "{names:?}"
    );
}
