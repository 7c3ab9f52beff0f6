//! Request bodies and the named schemas of every body that is not a wire type of its own (the
//! flat-or-wrapped request bodies, the lists), so that generated clients name them.

use utoipa::openapi::request_body::{RequestBody, RequestBodyBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::{ContentBuilder, RefOr, Required};
use utoipa::ToSchema;
use vmapi_models::{
    CloudProvider, CreateRuleRequest, CreateVmRequest, Image, Location, PriceOffer, Provider,
    SecurityRuleView, VirtualMachine, VmEvent,
};

use super::common::{schema_ref, JSON};
use super::examples;

/// The body of `POST /api/virtual-machines`: `CreateVmRequest`, flat or wrapped.
pub(super) const CREATE_VM_BODY: &str = "CreateVmBody";
/// The body of `POST /api/security-rules`: `CreateRuleRequest`, flat or wrapped.
pub(super) const CREATE_RULE_BODY: &str = "CreateRuleBody";
pub(super) const VIRTUAL_MACHINE_LIST: &str = "VirtualMachineList";
pub(super) const VM_EVENT_LIST: &str = "VmEventList";
pub(super) const SECURITY_RULE_LIST: &str = "SecurityRuleList";
pub(super) const OPENAPI_DOCUMENT: &str = "OpenApiDocument";

/// The request body an endpoint takes, with its examples.
pub(super) fn request_body(body: &crate::endpoints::RequestBody) -> RequestBody {
    let examples = match body.schema {
        CREATE_VM_BODY => examples::create_vm(),
        CREATE_RULE_BODY => examples::create_rule(),
        "UpdateVmRequest" => examples::update_vm(),
        "ResizeVmRequest" => examples::resize_vm(),
        other => panic!("request body {other} has no examples"),
    };
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .description(Some(body.description))
        .content(
            JSON,
            ContentBuilder::new()
                .schema(Some(schema_ref(body.schema)))
                .examples_from_iter(examples)
                .build(),
        )
        .build()
}

/// `request` or `{"data": request}`.
fn flat_or_wrapped(request: &str, wrapped: &str, what: &str) -> [(String, RefOr<Schema>); 2] {
    [
        (
            wrapped.to_string(),
            ObjectBuilder::new()
                .property("data", schema_ref(request))
                .required("data")
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                .description(Some(format!("{what}, wrapped as `data`")))
                .into(),
        ),
        (
            format!("{}Body", request.trim_end_matches("Request")),
            OneOfBuilder::new()
                .item(schema_ref(request))
                .item(schema_ref(wrapped))
                .description(Some(format!(
                    "{what}, flat or wrapped as `{{\"data\": {{...}}}}`"
                )))
                .into(),
        ),
    ]
}

fn list(item: &str, description: &str) -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(schema_ref(item))
        .description(Some(description))
        .into()
}

/// The request bodies' and lists' schemas.
pub(super) fn schemas() -> Vec<(String, RefOr<Schema>)> {
    let mut out = Vec::new();
    out.extend(flat_or_wrapped(
        &CreateVmRequest::name(),
        "WrappedCreateVmRequest",
        "The create request",
    ));
    out.extend(flat_or_wrapped(
        &CreateRuleRequest::name(),
        "WrappedCreateRuleRequest",
        "The security-rule request",
    ));
    out.push((
        VIRTUAL_MACHINE_LIST.into(),
        list(
            &VirtualMachine::name(),
            "VMs: the new ones of a create (one per host name, in request order; references as ids), or a page of a list (at most `limit`, newest first)",
        ),
    ));
    out.push((
        VM_EVENT_LIST.into(),
        list(
            &VmEvent::name(),
            "A page of a VM's history (at most `limit` events, newest first)",
        ),
    ));
    out.push((
        SECURITY_RULE_LIST.into(),
        list(
            &SecurityRuleView::name(),
            "Every rule of a VM (at most 50), inbound first, then by priority",
        ),
    ));
    for (name, item, description) in [
        (
            "CloudProviderList",
            CloudProvider::name(),
            "The cloud providers",
        ),
        (
            "ProviderList",
            Provider::name(),
            "A cloud provider's providers",
        ),
        ("LocationList", Location::name(), "A provider's locations"),
        (
            "ImageList",
            Image::name(),
            "The images of a provider's location",
        ),
        (
            "PriceOfferList",
            PriceOffer::name(),
            "The prices of an image at a provider's location, each with its size",
        ),
    ] {
        out.push((name.into(), list(&item, description)));
    }
    out.push((
        OPENAPI_DOCUMENT.into(),
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("An OpenAPI 3.1 document"))
            .into(),
    ));
    out
}
