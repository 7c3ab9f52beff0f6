//! `vmctl vms stuck`, `retry` and `stale`.

use super::*;

/// A demo VM in `status` with `pending`, its age counting from `minutes_ago`.
pub(super) fn vm_at(
    status: VmStatus,
    pending: Option<OpKind>,
    minutes_ago: i64,
) -> vmapi_models::VmRecord {
    let at =
        Timestamp::from_unix_millis(Timestamp::now().unix_millis() - minutes_ago * 60_000).unwrap();
    let mut vm = vmapi_core::memory::sample_vm();
    vm.name = vmapi_models::HostName::parse(&format!("vm-{}", vm.id)).unwrap();
    vm.status = status;
    vm.pending_op = pending.map(|op| PendingOp::new(op, at));
    vm.updated_at = at;
    vm
}

#[tokio::test]
async fn vms_stuck_and_retry() {
    init_env();
    let (table, repo) = fresh_table().await;
    let t = Some(table.as_str());
    let stuck = vm_at(VmStatus::Creating, Some(OpKind::Create), 90);
    let lost = vm_at(VmStatus::Stopping, None, 45);
    let young = vm_at(VmStatus::Starting, Some(OpKind::Start), 2);
    let running = vm_at(VmStatus::Running, None, 600);
    // A resize the provisioner never finished: running, with the resize still pending.
    let resizing = vm_at(VmStatus::Running, Some(OpKind::Resize), 60);
    for vm in [&stuck, &lost, &young, &running, &resizing] {
        repo.put_vm_unchecked(vm).await.unwrap();
    }
    let out = ok(t, &["vms", "stuck", "--minutes", "30"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("PENDING"),
        "{out}"
    );
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[1].starts_with(&stuck.id.to_string()) && lines[1].contains("create #0"),
        "{out}"
    );
    assert!(
        lines[2].starts_with(&resizing.id.to_string()) && lines[2].contains("resize #0"),
        "{out}"
    );
    assert!(
        lines[3].starts_with(&lost.id.to_string()) && lines[3].contains("none (lost)"),
        "{out}"
    );
    let json: Vec<vmapi_models::VmRecord> =
        serde_json::from_str(&ok(t, &["vms", "stuck", "--minutes", "1", "--json"])).unwrap();
    assert_eq!(json.len(), 4);

    let out = ok(t, &["vms", "retry", &resizing.id.to_string()]);
    assert!(out.contains("re-armed the resize"), "{out}");
    let op = repo
        .get_vm(resizing.id)
        .await
        .unwrap()
        .unwrap()
        .pending_op
        .unwrap();
    assert_eq!((op.op, op.attempt), (OpKind::Resize, 1));

    let out = ok(t, &["vms", "retry", &lost.id.to_string()]);
    assert!(
        out.contains("re-armed the stop") && out.contains("attempt 1, version 2"),
        "{out}"
    );
    let stored = repo.get_vm(lost.id).await.unwrap().unwrap();
    assert_eq!(stored.version, lost.version + 1);
    let op = stored.pending_op.unwrap();
    assert_eq!((op.op, op.attempt), (OpKind::Stop, 1));
    let events = repo.vm_events(lost.id, 10, None).await.unwrap().items;
    assert_eq!(events[0].kind, vmapi_models::EventKind::Retry);
    assert_eq!(events[0].actor, "operator:vmctl");

    let e = refused(t, &["vms", "retry", &running.id.to_string()]);
    assert!(e.contains("nothing to retry"), "{e}");
    assert_eq!(repo.get_vm(running.id).await.unwrap().unwrap(), running);
    let e = refused(t, &["vms", "retry", &vmapi_models::VmId::new().to_string()]);
    assert!(e.contains("not found"), "{e}");
}

#[tokio::test]
async fn vms_stale() {
    init_env();
    let (table, repo) = fresh_table().await;
    let t = Some(table.as_str());
    ok(t, &["load", "data/demo.json"]);
    let failed = vm_at(VmStatus::Failed, None, 8 * 24 * 60);
    let stuck = vm_at(VmStatus::Creating, Some(OpKind::Create), 90);
    let recent_failure = vm_at(VmStatus::Failed, None, 60);
    let running = vm_at(VmStatus::Running, None, 600);
    for vm in [&failed, &stuck, &recent_failure, &running] {
        repo.put_vm_unchecked(vm).await.unwrap();
    }
    let out = ok(t, &["vms", "stale"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("NEXT CLEANUP RUN"),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with(&failed.id.to_string())
            && lines[1].contains("failed")
            && lines[1].contains("delete: failed for more than 168 hours"),
        "{out}"
    );
    assert!(
        lines[2].starts_with(&stuck.id.to_string())
            && lines[2].contains("transitional")
            && lines[2].contains("repair the stuck create"),
        "{out}"
    );
    let col = lines[0].find("STATUS").unwrap();
    assert_eq!(&lines[2][col..col + 8], "creating", "{out}");

    let json: serde_json::Value =
        serde_json::from_str(&ok(t, &["vms", "stale", "--json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    // Reads only.
    assert_eq!(repo.get_vm(failed.id).await.unwrap().unwrap(), failed);
}
