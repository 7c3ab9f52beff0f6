//! `vmctl catalog validate`, `import` and `list`.

use super::*;

#[tokio::test]
async fn catalog_validate_import_list() {
    init_env();
    let (table, repo) = fresh_table().await;
    let t = Some(table.as_str());
    assert!(ok(t, &["catalog", "list"]).contains("the catalog is empty"));
    let out = ok(None, &["catalog", "validate", "data/demo.json"]);
    assert!(
        out.contains("is a valid catalog: 3 cloud providers, 3 providers, 5 sizes, 5 prices"),
        "{out}"
    );

    // A broken file: refused by validate and by import alike, naming each problem; nothing written.
    let mut broken: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo.json"))
            .unwrap(),
    )
    .unwrap();
    broken["sizes"][3]["provider"] = "6548a383e2442d14b6bf0000".into();
    broken["prices"][0]["currencyCode"] = "euro".into();
    let path = std::env::temp_dir().join(format!("{table}-broken.json"));
    std::fs::write(&path, broken.to_string()).unwrap();
    let path = path.to_str().unwrap();
    let e = refused(None, &["catalog", "validate", path]);
    assert!(
        e.contains("is not a valid catalog (1 problem)") && e.contains("/prices/0/currencyCode"),
        "{e}"
    );
    broken["prices"][0]["currencyCode"] = "EUR".into();
    std::fs::write(path, broken.to_string()).unwrap();
    for cmd in ["validate", "import"] {
        let e = refused(t, &["catalog", cmd, path]);
        assert!(
            e.contains(
                "sizes[3].provider: 6548a383e2442d14b6bf0000 is not a provider of the catalog"
            ),
            "{cmd}: {e}"
        );
    }
    assert!(
        repo.catalog().await.unwrap().is_empty(),
        "a refused import wrote something"
    );

    let out = ok(t, &["catalog", "import", "data/demo.json"]);
    assert!(out.contains("imported 16 catalog entries"), "{out}");
    assert!(
        out.contains("not imported: 2 teams and 2 projects"),
        "{out}"
    );
    let stored = repo.catalog().await.unwrap();
    let demo: vmapi_models::Seed = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored.sizes.len(), 5);
    assert_eq!(stored.providers.len(), demo.providers.len());
    assert!(
        stored_team(&repo, DEMO_TEAM).await.is_none(),
        "teams are not imported"
    );

    let listed = ok(t, &["catalog", "list"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 6, "{listed}");
    assert!(
        lines[0].starts_with("CLOUD") && lines[0].contains("PRICE"),
        "{listed}"
    );
    let col = lines[0].find("SIZE").unwrap();
    let row = lines.iter().find(|l| l.contains("m6a.xlarge")).unwrap();
    assert_eq!(
        row.find("m6a.xlarge"),
        Some(col),
        "columns line up:\n{listed}"
    );
    assert!(
        row.starts_with("AWS") && row.contains("sev-snp") && row.contains("0.1728 EUR/h"),
        "{row}"
    );
    let json: vmapi_models::Catalog =
        serde_json::from_str(&ok(t, &["catalog", "list", "--json"])).unwrap();
    assert_eq!(json, stored);
}
