//! The read capacity of a run grows with the candidates, not with the table.

use vmapi_models::{VmRecord, VmStatus};
use vmapi_tests::*;

use super::common::{cleanup, vm};

/// Read capacity of one dry run over a table with `healthy` healthy VMs and 10 stale ones.
async fn capacity_of_a_run(healthy: usize) -> f64 {
    let app = TestApp::spawn().await;
    let mut vms: Vec<VmRecord> = (0..healthy)
        .map(|i| vm(&format!("healthy-{i}"), VmStatus::Running, 100))
        .collect();
    for i in 0..10 {
        let mut v = vm(&format!("stale-{i}"), VmStatus::Failed, 30);
        v.status_reason = Some("test".into());
        vms.push(v);
    }
    app.repo.put_vms_unchecked(&vms).await.unwrap();
    let before = app.repo.consumed_read_capacity();
    let s = cleanup(&app, None, true).run().await.unwrap();
    assert_eq!(
        s.candidates, 10,
        "only the stale VMs are candidates: {s:#?}"
    );
    app.repo.consumed_read_capacity() - before
}

#[tokio::test]
async fn read_capacity_grows_with_candidates_not_with_the_table() {
    let small = capacity_of_a_run(0).await;
    let large = capacity_of_a_run(10_000).await;
    assert!(small > 0.0, "DynamoDB Local reports consumed capacity");
    assert!(
        large <= small * 1.5,
        "10 stale among 10,000 healthy VMs cost {large} RCU, 10 alone {small} RCU"
    );
}
