//! The VM list's pages (signed cursors) and filters.

use vmapi_models::{Timestamp, VmStatus};
use vmapi_tests::*;

#[tokio::test]
async fn list_pages_with_signed_cursors() {
    let app = TestApp::spawn().await;
    let names: Vec<String> = (0..7).map(|i| format!("page-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    app.create(OWNER, &refs).await.expect(201);
    let base = format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines");
    let mut seen = Vec::new();
    let mut next = format!("{base}?limit=3");
    let mut pages = Vec::new();
    loop {
        let r = app.get(&next, OWNER).await.expect(200);
        let items = r.json.as_array().unwrap().clone();
        pages.push(items.len());
        seen.extend(
            items
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_string()),
        );
        let Some(link) = r.headers.get("link") else {
            assert!(r.headers.get("x-next-cursor").is_none());
            break;
        };
        let link = link.to_str().unwrap();
        let cursor = r.headers["x-next-cursor"].to_str().unwrap();
        assert!(
            link.ends_with("; rel=\"next\"") && link.contains(cursor),
            "{link}"
        );
        next = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_string();
    }
    assert_eq!(pages, [3, 3, 1]);
    let mut expected = names.clone();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, each once");

    for bad in [
        "limit=0",
        "limit=201",
        "limit=abc",
        "cursor=abc",
        "cursor=",
        "color=red",
    ] {
        app.get(&format!("{base}?{bad}"), OWNER)
            .await
            .expect_error(400, "INVALID_PARAMETER");
    }
    // A cursor is bound to its list: the other team's owner cannot use it on their project.
    let r = app.get(&format!("{base}?limit=1"), OWNER).await.expect(200);
    let cursor = r.headers["x-next-cursor"].to_str().unwrap().to_string();
    let other = format!(
        "/api/teams/{OTHER_TEAM}/projects/{OTHER_PROJECT}/virtual-machines?cursor={cursor}"
    );
    app.get(&other, OTHER_OWNER)
        .await
        .expect_error(400, "INVALID_PARAMETER");
    // Tampering is detected.
    let mut tampered = cursor.into_bytes();
    tampered[2] = if tampered[2] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    app.get(&format!("{base}?cursor={tampered}"), OWNER)
        .await
        .expect_error(400, "INVALID_PARAMETER");
    // The largest page is accepted.
    app.get(&format!("{base}?limit=200"), OWNER)
        .await
        .expect(200);
}

/// The list filters by status, tag and name prefix in the same single Query, with paging.
#[tokio::test]
async fn list_filters_by_status_tag_and_name_with_paging() {
    use vmapi_models::{Tag, Tags};
    let app = TestApp::spawn().await;
    // 300 VMs: every 50th a "web-" one, every 3rd tagged "blue", statuses running/stopped/failed.
    let mut vms = Vec::new();
    for i in 0..300 {
        let status = match i % 3 {
            0 => VmStatus::Running,
            1 => VmStatus::Stopped,
            _ => VmStatus::Failed,
        };
        let name = if i % 50 == 0 {
            format!("web-{i}")
        } else {
            format!("db-{i}")
        };
        let mut vm = demo_vm(&name, status);
        vm.created_at =
            Timestamp::from_unix_millis(Timestamp::now().unix_millis() - i as i64 * 1000).unwrap();
        if i % 3 == 0 {
            vm.tags = Tags::new(vec![Tag::parse("blue").unwrap()]).unwrap();
        }
        vms.push(vm);
    }
    app.repo.put_vms_unchecked(&vms).await.unwrap();
    let list = format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines");
    // Follows the cursors and returns every name seen, checking each page's size.
    let all_pages = |query: String| {
        let app = &app;
        let list = list.clone();
        async move {
            let mut names = Vec::new();
            let mut url = format!("{list}?{query}");
            for _ in 0..100 {
                let r = app.get(&url, OWNER).await.expect(200);
                let page = r.json.as_array().unwrap().clone();
                assert!(page.len() <= 50);
                names.extend(page.iter().map(|v| v["name"].as_str().unwrap().to_string()));
                let Some(link) = r.headers.get("link") else {
                    return names;
                };
                let link = link.to_str().unwrap();
                let next = link.trim_start_matches('<').split('>').next().unwrap();
                // The next page keeps the filters.
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let key = pair.split('=').next().unwrap();
                    assert!(next.contains(&format!("&{key}=")), "{link}");
                }
                url = next.to_string();
            }
            panic!("too many pages");
        }
    };
    let expect = |f: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..300)
            .filter(|i| f(*i))
            .map(|i| vms[i].name.to_string())
            .collect()
    };

    assert_eq!(all_pages("status=3".into()).await, expect(&|i| i % 3 == 0));
    assert_eq!(
        all_pages("status=3,7".into()).await,
        expect(&|i| i % 3 != 2),
        "codes, comma-separated"
    );
    assert_eq!(
        all_pages("status=running&status=failed".into()).await,
        expect(&|i| i % 3 != 1),
        "names, repeated"
    );
    assert_eq!(all_pages("tag=blue".into()).await, expect(&|i| i % 3 == 0));
    // A rare match: pages may be short (even empty) while the cursor goes on.
    assert_eq!(
        all_pages("name=web-".into()).await,
        expect(&|i| i % 50 == 0)
    );
    assert_eq!(
        all_pages("name=web-&status=7".into()).await,
        expect(&|i| i % 50 == 0 && i % 3 == 1)
    );
    assert_eq!(all_pages(String::new()).await.len(), 300);

    for (query, field) in [
        ("status=8", "status"),
        ("status=5", "status"),
        ("status=sleeping", "status"),
        ("tag=a&tag=b", "tag"),
        ("name=Web", "name"),
        ("limit=5&limit=6", "limit"),
        ("colour=blue", "colour"),
    ] {
        let r = app
            .get(&format!("{list}?{query}"), OWNER)
            .await
            .expect_error(400, "INVALID_PARAMETER");
        assert_eq!(r.json["details"][0]["field"], field, "{query}: {}", r.json);
    }
}
