//! Paged lists: the query (`limit`, `cursor`, filters) and the next page's link.

use axum::http::{header, HeaderValue};
use axum::response::Response;
use vmapi_core::{FieldError, VmFilter};
use vmapi_models::{Tag, VmStatus};

use crate::error::ApiError;

/// Default page size of the list.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page size of the list.
pub const MAX_LIMIT: usize = 200;

/// The query of a paged list: `limit`, `cursor` and, on the VM list, the filters.
pub(super) struct PageParams {
    pub(super) limit: usize,
    pub(super) cursor: Option<String>,
    pub(super) filter: VmFilter,
}

/// Parses a paged list's query; an unknown, repeated or malformed parameter is a 400 naming it.
/// `status` takes codes or names, several separated by commas or repeated (`status=3,7`,
/// `status=running&status=stopped`); `tag` one tag; `name` a host-name prefix.
pub(super) fn page_params(query: Option<&str>, filters: bool) -> Result<PageParams, ApiError> {
    let bad =
        |field: &str, message: String| ApiError::BadParameter(FieldError::new(field, message));
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).map_err(|e| bad("query", e.to_string()))?;
    let mut p = PageParams {
        limit: DEFAULT_LIMIT,
        cursor: None,
        filter: VmFilter::default(),
    };
    let mut limit_seen = false;
    for (key, value) in pairs {
        let twice = || bad(&key, "is given twice".into());
        match key.as_str() {
            "limit" => {
                if std::mem::replace(&mut limit_seen, true) {
                    return Err(twice());
                }
                p.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        bad(
                            "limit",
                            format!("must be a whole number from 1 to {MAX_LIMIT}, got '{value}'"),
                        )
                    })?;
            }
            "cursor" if p.cursor.is_some() => return Err(twice()),
            "cursor" => p.cursor = Some(value),
            "status" if filters => {
                for part in value.split(',').map(str::trim) {
                    let status = part
                        .parse::<u64>()
                        .ok()
                        .and_then(VmStatus::from_code)
                        .or_else(|| VmStatus::ALL.iter().copied().find(|s| s.name() == part))
                        .ok_or_else(|| {
                            bad(
                                "status",
                                format!("'{part}' is not a status code (0-8) or name"),
                            )
                        })?;
                    if !status.is_active() {
                        return Err(bad(
                            "status",
                            format!(
                                "the list holds active VMs only; status {} ({}) is never in it",
                                status.code(),
                                status.name()
                            ),
                        ));
                    }
                    if !p.filter.statuses.contains(&status) {
                        p.filter.statuses.push(status);
                    }
                }
            }
            "tag" if filters && p.filter.tag.is_some() => return Err(twice()),
            "tag" if filters => {
                p.filter.tag = Some(Tag::parse(&value).map_err(|e| bad("tag", e.to_string()))?);
            }
            "name" if filters && p.filter.name_prefix.is_some() => return Err(twice()),
            "name" if filters => {
                let ok = (1..=63).contains(&value.len())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !ok {
                    return Err(bad(
                        "name",
                        "a host-name prefix is 1-63 lowercase letters, digits or hyphens".into(),
                    ));
                }
                p.filter.name_prefix = Some(value);
            }
            _ => {
                let known = if filters {
                    "`limit`, `cursor`, `status`, `tag` and `name`"
                } else {
                    "`limit` and `cursor`"
                };
                return Err(bad(
                    &key,
                    format!("is not a parameter of this list ({known})"),
                ));
            }
        }
    }
    Ok(p)
}

/// The filters as query parameters, for the next page's link.
pub(super) fn filter_query(filter: &VmFilter) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if !filter.statuses.is_empty() {
        let codes: Vec<String> = filter
            .statuses
            .iter()
            .map(|s| s.code().to_string())
            .collect();
        pairs.push(("status", codes.join(",")));
    }
    if let Some(tag) = &filter.tag {
        pairs.push(("tag", tag.as_str().to_string()));
    }
    if let Some(name) = &filter.name_prefix {
        pairs.push(("name", name.clone()));
    }
    match serde_urlencoded::to_string(&pairs) {
        Ok(q) if !q.is_empty() => format!("&{q}"),
        _ => String::new(),
    }
}

/// Adds the next page's `Link` and `X-Next-Cursor` to a list answer.
pub(super) fn link_next(
    resp: &mut Response,
    uri: &axum::http::Uri,
    limit: usize,
    cursor: &str,
    rest: &str,
) {
    let link = format!(
        "<{}?limit={limit}&cursor={cursor}{rest}>; rel=\"next\"",
        uri.path()
    );
    if let (Ok(link), Ok(cursor)) = (HeaderValue::from_str(&link), HeaderValue::from_str(cursor)) {
        resp.headers_mut().insert(header::LINK, link);
        resp.headers_mut().insert("x-next-cursor", cursor);
    }
}
