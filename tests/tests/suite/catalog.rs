//! Catalog discovery: the selection flow from the first call to a create, caching, disabled
//! providers, unknown ids, and one DynamoDB round trip per call.

use serde_json::{json, Value};
use vmapi_core::AccountStore;
use vmapi_models::{Catalog, CloudProvider, CloudProviderId, ProviderId, ProviderRecord};
use vmapi_tests::*;

/// The first element of `list` whose `key` is `value`.
fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|x| x[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value} in {list}"))
}

#[tokio::test]
async fn following_the_chain_yields_the_spec_request_and_a_create_from_it_succeeds() {
    let app = TestApp::spawn().await;
    let spec = spec_create_request();

    let clouds = app
        .get("/api/cloud-providers", OWNER)
        .await
        .expect(200)
        .json;
    assert_eq!(clouds.as_array().unwrap().len(), 3, "{clouds}");
    let kraud = find(&clouds, "name", "Kraud.Cloud");
    assert_eq!(kraud["_id"], spec["cloudProvider"]);
    assert_eq!(kraud["isDisabled"], false);

    let cloud = kraud["_id"].as_str().unwrap();
    let providers = app
        .get(&format!("/api/cloud-providers/{cloud}/providers"), OWNER)
        .await
        .expect(200)
        .json;
    let provider = &providers[0];
    assert_eq!(providers.as_array().unwrap().len(), 1, "{providers}");
    assert_eq!(provider["_id"], spec["provider"]);
    assert_eq!(provider["type"], "vm");
    assert_eq!(provider["cloudProvider"], *kraud, "populated");

    let p = provider["_id"].as_str().unwrap();
    let locations = app
        .get(&format!("/api/providers/{p}/locations"), OWNER)
        .await
        .expect(200)
        .json;
    let berlin = find(&locations, "physicalLocation", "Germany");
    let location_id = berlin["_id"].as_str().unwrap();
    assert_eq!(location_id.len(), 24, "a 24-hex id: {berlin}");
    let mut region = berlin.clone();
    region.as_object_mut().unwrap().remove("_id");
    assert_eq!(region, spec["region"]);

    // `{location}` is the `_id` or the datacenter name: the same answer.
    let images = app
        .get(
            &format!("/api/providers/{p}/locations/{location_id}/images"),
            OWNER,
        )
        .await
        .expect(200)
        .json;
    let by_name = app
        .get(
            &format!("/api/providers/{p}/locations/berlin/images"),
            OWNER,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(images, by_name);
    let ubuntu_20 = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| **i == spec["image"])
        .unwrap_or_else(|| panic!("the spec's image is offered: {images}"));

    let distribution = ubuntu_20["distribution"].as_str().unwrap();
    let prices = app
        .get(
            &format!("/api/providers/{p}/locations/{location_id}/images/{distribution}/prices"),
            OWNER,
        )
        .await
        .expect(200)
        .json;
    let price = find(&prices, "_id", spec["price"].as_str().unwrap());
    assert_eq!(
        price["size"]["_id"], spec["size"],
        "size populated: {price}"
    );
    assert_eq!(price["locationName"], "berlin");
    assert_eq!(price["imageName"], "Ubuntu");

    // A create made only of what the chain answered.
    let create = json!({
        "cloudProvider": kraud["_id"], "provider": provider["_id"],
        "size": price["size"]["_id"], "price": price["_id"],
        "region": region, "image": ubuntu_20,
        "team": TEAM, "project": PROJECT, "hostNames": ["from-the-chain"],
        "authMethod": 1,
    });
    app.create_vm_as(OWNER, &create).await;
}

#[tokio::test]
async fn answers_are_cacheable_and_revalidated_with_if_none_match() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/cloud-providers".to_string(),
        format!("/api/cloud-providers/{CLOUD}/providers"),
        format!("/api/providers/{PROVIDER}/locations"),
        format!("/api/providers/{PROVIDER}/locations/berlin/images"),
        format!("/api/providers/{PROVIDER}/locations/berlin/images/Ubuntu/prices"),
    ] {
        let first = app.get(&path, OWNER).await.expect(200);
        assert_eq!(first.headers["cache-control"], "max-age=300", "{path}");
        let etag = first.headers["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.len() > 10, "{path}: {etag}");
        let again = app.get(&path, OWNER).await.expect(200);
        assert_eq!(again.headers["etag"], etag.as_str(), "{path}: stable");
        let revalidated = app
            .call_with(
                reqwest::Method::GET,
                &path,
                Some(OWNER),
                None,
                &[("if-none-match", etag.as_bytes())],
            )
            .await
            .expect(304);
        assert_eq!(revalidated.json, Value::Null, "{path}: no body");
        assert_eq!(revalidated.headers["etag"], etag.as_str());
        app.call_with(
            reqwest::Method::GET,
            &path,
            Some(OWNER),
            None,
            &[("if-none-match", b"\"other\"")],
        )
        .await
        .expect(200);
    }
}

#[tokio::test]
async fn disabled_providers_are_listed_and_create_still_refuses_them() {
    let app = TestApp::spawn().await;
    let cloud = CloudProviderId::new();
    let provider = ProviderId::new();
    let mut catalog = Catalog {
        cloud_providers: vec![CloudProvider {
            id: cloud,
            name: "Retired Cloud".into(),
            is_disabled: true,
        }],
        ..Catalog::default()
    };
    let template = demo_seed().providers[0].clone();
    catalog.providers.push(ProviderRecord {
        id: provider,
        cloud_provider: cloud,
        is_disabled: true,
        ..template
    });
    app.repo.put_catalog(&catalog).await.unwrap();

    let clouds = app
        .get("/api/cloud-providers", OWNER)
        .await
        .expect(200)
        .json;
    assert_eq!(find(&clouds, "_id", &cloud.to_string())["isDisabled"], true);
    let providers = app
        .get(&format!("/api/cloud-providers/{cloud}/providers"), OWNER)
        .await
        .expect(200)
        .json;
    assert_eq!(providers[0]["_id"], provider.to_string());
    assert_eq!(providers[0]["isDisabled"], true);
    assert_eq!(providers[0]["cloudProvider"]["isDisabled"], true);

    let mut create = spec_create_request();
    create["cloudProvider"] = json!(cloud.to_string());
    create["provider"] = json!(provider.to_string());
    create["hostNames"] = json!(["on-a-retired-cloud"]);
    app.call(
        reqwest::Method::POST,
        "/api/virtual-machines",
        Some(OWNER),
        Some(&create),
    )
    .await
    .expect_error(400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn unknown_or_malformed_names_are_404_or_400() {
    let app = TestApp::spawn().await;
    let nobody = "6548a383e2442d14b6bf0000";
    for (path, status, code) in [
        (
            format!("/api/cloud-providers/{nobody}/providers"),
            404,
            "CLOUD_PROVIDER_NOT_FOUND",
        ),
        (
            "/api/cloud-providers/xyz/providers".to_string(),
            400,
            "INVALID_PARAMETER",
        ),
        (
            format!("/api/providers/{nobody}/locations"),
            404,
            "PROVIDER_NOT_FOUND",
        ),
        (
            "/api/providers/12/locations".to_string(),
            400,
            "INVALID_PARAMETER",
        ),
        (
            format!("/api/providers/{PROVIDER}/locations/paris/images"),
            404,
            "LOCATION_NOT_FOUND",
        ),
        (
            format!("/api/providers/{PROVIDER}/locations/berlin/images/Windows/prices"),
            404,
            "IMAGE_NOT_FOUND",
        ),
        (
            format!("/api/providers/{PROVIDER}/locations/{nobody}/images/Ubuntu/prices"),
            404,
            "LOCATION_NOT_FOUND",
        ),
    ] {
        let r = app.get(&path, OWNER).await;
        assert_eq!(r.status.as_u16(), status, "{path}: {}", r.json);
        assert_eq!(r.json["code"], code, "{path}");
    }
    // Without a token: 401, as everywhere.
    app.call(reqwest::Method::GET, "/api/cloud-providers", None, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn each_call_is_one_dynamodb_round_trip() {
    let counter = RequestCounter::default();
    let app = TestApp::spawn_with(counter.client().await).await;
    counter.take();
    for (path, op) in [
        ("/api/cloud-providers".to_string(), "Query"),
        (format!("/api/cloud-providers/{CLOUD}/providers"), "Query"),
        (format!("/api/providers/{PROVIDER}/locations"), "Query"),
        (
            format!("/api/providers/{PROVIDER}/locations/berlin/images"),
            "Query",
        ),
        (
            format!("/api/providers/{PROVIDER}/locations/berlin/images/Ubuntu/prices"),
            "Query",
        ),
    ] {
        app.get(&path, OWNER).await.expect(200);
        assert_eq!(counter.take(), [op], "{path}");
    }
}
