//! `vmctl vms backfill`: VM records from before the team index join it.

use aws_sdk_dynamodb::types::AttributeValue;
use vmapi_core::TeamVms;
use vmapi_models::VmId;

use super::vms::vm_at;
use super::*;

/// Takes the team-index keys off a VM's item: a record written before the index has none.
async fn as_legacy(table: &str, id: VmId) {
    vmapi_http::state::dynamodb_client()
        .await
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("VM#{id}")))
        .key("sk", AttributeValue::S("VM".into()))
        .update_expression("REMOVE gsi3pk, gsi3sk")
        .condition_expression("attribute_exists(gsi3pk)")
        .send()
        .await
        .unwrap();
}

/// The ids the team index lists for the demo team (not deleted).
async fn indexed(repo: &DynamoRepository) -> Vec<VmId> {
    let mut ids: Vec<VmId> = repo
        .team_vms(DEMO_TEAM.parse().unwrap(), TeamVms::NotDeleted)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn vms_backfill_puts_records_from_before_the_team_index_into_it() {
    init_env();
    let (table, repo) = fresh_table().await;
    let t = Some(table.as_str());
    let (old, older, current) = (
        vm_at(VmStatus::Running, None, 600),
        vm_at(VmStatus::Stopped, None, 900),
        vm_at(VmStatus::Running, None, 5),
    );
    for vm in [&old, &older, &current] {
        repo.put_vm_unchecked(vm).await.unwrap();
    }
    as_legacy(&table, old.id).await;
    as_legacy(&table, older.id).await;
    assert_eq!(indexed(&repo).await, [current.id]);

    // A dry run lists them and writes nothing.
    let out = ok(t, &["vms", "backfill", "--dry-run"]);
    let mut listed: Vec<&str> = out.lines().collect();
    listed.sort();
    let mut want = [old.id.to_string(), older.id.to_string()];
    want.sort();
    assert_eq!(listed, want, "{out}");
    assert_eq!(indexed(&repo).await, [current.id]);

    let out = vmctl(t, &["vms", "backfill"]);
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stderr.contains("2 VM records without team-index keys")
            && out.stderr.contains("2 given them"),
        "{}",
        out.stderr
    );
    let mut all = vec![old.id, older.id, current.id];
    all.sort();
    assert_eq!(indexed(&repo).await, all);
    // The records are otherwise as they were.
    assert_eq!(repo.get_vm(old.id).await.unwrap().unwrap(), old);

    // Again: nothing left to do.
    let out = vmctl(t, &["vms", "backfill"]);
    assert!(out.ok && out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.starts_with("0 VM records"), "{}", out.stderr);
}
