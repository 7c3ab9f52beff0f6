//! What a create or update request must satisfy before anything is read or written.

use std::collections::HashSet;

use vmapi_models::{AuthMethod, CreateVmRequest, HostName};

use crate::error::{ConflictCode, Error, FieldError, Result};
use crate::ports::Found;

/// Most VMs one create request may make.
pub const MAX_VMS_PER_REQUEST: usize = 10;

/// Checks what can be checked without the database.
pub(super) fn check_request_shape(req: &CreateVmRequest) -> Result<()> {
    let mut details = Vec::new();
    let n = req.host_names.len();
    if n == 0 || n > MAX_VMS_PER_REQUEST {
        details.push(FieldError::new(
            "hostNames",
            format!("give 1 to {MAX_VMS_PER_REQUEST} host names, got {n}"),
        ));
    }
    if let Some(q) = req.quantity {
        if q as usize != n {
            details.push(FieldError::new(
                "quantity",
                format!("quantity {q} does not match the {n} host names given"),
            ));
        }
    }
    if req.access.is_some() && req.auth_method != AuthMethod::SshKey {
        details.push(FieldError::new(
            "access",
            "an SSH public key can only be given with authMethod 1 (SSH key)",
        ));
    }
    if !details.is_empty() {
        return Err(Error::invalid_fields(details));
    }
    let mut seen: HashSet<&HostName> = HashSet::new();
    for name in &req.host_names {
        if !seen.insert(name) {
            return Err(Error::conflict(
                ConflictCode::DuplicateHostName,
                format!("host name '{name}' appears more than once in the request"),
            ));
        }
    }
    Ok(())
}

/// Checks that the catalog references fit together.
pub(super) fn check_catalog(req: &CreateVmRequest, found: &Found) -> Result<()> {
    let missing = |field: &str, what: &str, id: &dyn std::fmt::Display| {
        Error::invalid_field(field, format!("{what} {id} does not exist"))
    };
    let cloud = found
        .cloud_providers
        .get(&req.cloud_provider)
        .ok_or_else(|| missing("cloudProvider", "cloud provider", &req.cloud_provider))?;
    let provider = found
        .providers
        .get(&req.provider)
        .ok_or_else(|| missing("provider", "provider", &req.provider))?;
    let size = found
        .sizes
        .get(&req.size)
        .ok_or_else(|| missing("size", "size", &req.size))?;
    let price = found
        .prices
        .get(&req.price)
        .ok_or_else(|| missing("price", "price", &req.price))?;

    let mut details = Vec::new();
    if cloud.is_disabled {
        details.push(FieldError::new(
            "cloudProvider",
            format!("cloud provider {} is disabled", cloud.name),
        ));
    }
    if provider.is_disabled {
        details.push(FieldError::new(
            "provider",
            format!("provider {} is disabled", provider.id),
        ));
    }
    if provider.cloud_provider != req.cloud_provider {
        details.push(FieldError::new(
            "provider",
            format!(
                "provider {} does not belong to cloud provider {}",
                provider.id, req.cloud_provider
            ),
        ));
    }
    if size.provider != req.provider {
        details.push(FieldError::new(
            "size",
            format!(
                "size {} does not belong to provider {}",
                size.id, req.provider
            ),
        ));
    }
    if price.provider != req.provider {
        details.push(FieldError::new(
            "price",
            format!(
                "price {} does not belong to provider {}",
                price.id, req.provider
            ),
        ));
    }
    if price.size_name != size.name || price.location_name != size.location {
        details.push(FieldError::new(
            "price",
            format!(
                "price {} is not a price of size {} ({} in {})",
                price.id, size.id, size.name, size.location
            ),
        ));
    }
    if req.region.datacenter.name != price.location_name || !provider.offers_region(&req.region) {
        details.push(FieldError::new(
            "region",
            format!(
                "region must be the catalog location '{}' of the chosen price",
                price.location_name
            ),
        ));
    }
    if req.image.distribution != price.image_name || !provider.images.contains(&req.image) {
        details.push(FieldError::new(
            "image",
            format!(
                "image must be a catalog image of distribution '{}' of the chosen price",
                price.image_name
            ),
        ));
    }
    if details.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid_fields(details))
    }
}

/// An expiry must lie in the future.
pub(super) fn check_expiry(
    at: vmapi_models::Timestamp,
    now: vmapi_models::Timestamp,
) -> Result<()> {
    if at <= now {
        return Err(Error::invalid_field(
            "expiresAt",
            format!("must be in the future, got {at}"),
        ));
    }
    Ok(())
}
