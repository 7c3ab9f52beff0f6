//! The handlers of catalog discovery: read-only, cacheable for five minutes, with a strong
//! `ETag` of the body so `If-None-Match` gets a 304.

use std::future::Future;

use aws_lc_rs::digest;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use serde::Serialize;
use vmapi_core::FieldError;
use vmapi_models::{
    CloudProvider, CloudProviderId, Image, Location, PriceOffer, Provider, ProviderId,
};

use crate::error::ApiError;
use crate::extract::{parse_id, Caller};
use crate::state::AppState;

/// How long a client or cache may reuse an answer.
pub(crate) const CACHE_CONTROL: &str = "max-age=300";

/// `value` as JSON with `Cache-Control` and an `ETag` of the body, or a 304 when `If-None-Match`
/// names that tag (or `*`).
fn cacheable<T: Serialize>(headers: &HeaderMap, value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value)
        .map_err(|e| vmapi_core::Error::internal("serializing a catalog answer", e))?;
    let hash = digest::digest(&digest::SHA256, &body);
    let tag: String = hash.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let etag = HeaderValue::from_str(&format!("\"{tag}\"")).expect("hex is a valid header");
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t.as_bytes() == etag.as_bytes());
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    };
    resp.headers_mut().insert(header::ETAG, etag);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    Ok(resp)
}

/// The route's path variables, in order; a malformed path is a 400.
type PathParts = Result<Path<Vec<String>>, axum::extract::rejection::PathRejection>;

/// The path's `{id}` as an id of type `T`, and the variables after it; a 400 names a bad one.
fn path_id<T>(
    path: PathParts,
    parse: fn(&str) -> Result<T, vmapi_models::ParseError>,
) -> Result<(T, Vec<String>), ApiError> {
    let Path(mut parts) = path.map_err(|_| {
        ApiError::BadParameter(FieldError::new("path", "malformed path parameters"))
    })?;
    if parts.is_empty() {
        return Err(ApiError::BadParameter(FieldError::new("id", "missing")));
    }
    let id = parse_id("id", &parts.remove(0), parse)?;
    Ok((id, parts))
}

/// The handler of a catalog endpoint: any signed-in caller, `answer` over the path's variables
/// (`P`), served by [`cacheable`].
pub(super) fn catalog<P, T, F, Fut>(filter: MethodFilter, answer: F) -> MethodRouter<AppState>
where
    P: FromRequestParts<AppState> + Send + 'static,
    T: Serialize,
    F: Fn(AppState, P) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, ApiError>> + Send,
{
    on(
        filter,
        move |State(state): State<AppState>, Caller(_): Caller, headers: HeaderMap, path: P| {
            let answer = answer.clone();
            async move { cacheable(&headers, &answer(state, path).await?) }
        },
    )
}

pub(super) async fn cloud_providers(
    state: AppState,
    _: (),
) -> Result<Vec<CloudProvider>, ApiError> {
    Ok(state.service.cloud_providers().await?)
}

pub(super) async fn providers(state: AppState, path: PathParts) -> Result<Vec<Provider>, ApiError> {
    let (cloud, _) = path_id(path, CloudProviderId::parse)?;
    Ok(state.service.providers_of(cloud).await?)
}

pub(super) async fn locations(state: AppState, path: PathParts) -> Result<Vec<Location>, ApiError> {
    let (provider, _) = path_id(path, ProviderId::parse)?;
    Ok(state.service.locations(provider).await?)
}

pub(super) async fn images(state: AppState, path: PathParts) -> Result<Vec<Image>, ApiError> {
    let (provider, rest) = path_id(path, ProviderId::parse)?;
    let location = rest.first().map(String::as_str).unwrap_or_default();
    Ok(state.service.images(provider, location).await?)
}

pub(super) async fn prices(state: AppState, path: PathParts) -> Result<Vec<PriceOffer>, ApiError> {
    let (provider, rest) = path_id(path, ProviderId::parse)?;
    let [location, image] = rest.as_slice() else {
        return Err(ApiError::BadParameter(FieldError::new(
            "path",
            "location and imageName are required",
        )));
    };
    Ok(state.service.prices(provider, location, image).await?)
}
