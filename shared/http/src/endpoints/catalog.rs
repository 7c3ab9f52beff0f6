//! Catalog discovery: the platform's selection flow, cloud provider → provider → location →
//! image → price (which names the size).

use super::spec::{Auth, Param, Spec, Success, Tag, Verb};

/// A read of the catalog: any signed-in user, cacheable.
const READ: Spec = Spec {
    verb: Verb::Get,
    path: "",
    function: "",
    auth: Auth::User,
    tag: Tag::Catalog,
    summary: "",
    description: "",
    params: &[],
    request: None,
    success: Success::plain(200, "", ""),
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    notes: &[],
    conditional: false,
    idempotent: false,
    logins: false,
};

const fn answer(schema: &'static str, description: &'static str) -> Success {
    Success {
        cacheable: true,
        ..Success::plain(200, schema, description)
    }
}

pub(super) const LIST_CLOUD_PROVIDERS: Spec = Spec {
    path: "/api/cloud-providers",
    function: "list-cloud-providers",
    summary: "The cloud providers",
    description: "Every cloud provider of the catalog, disabled ones too (`isDisabled`: create \
        refuses them). The first step of the selection flow: cloud provider, provider, location, \
        image, price (which names the size).",
    success: answer("CloudProviderList", "The cloud providers, in id order"),
    errors: &["UNAUTHORIZED", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE"],
    ..READ
};

pub(super) const LIST_PROVIDERS: Spec = Spec {
    path: "/api/cloud-providers/{id}/providers",
    function: "list-providers",
    summary: "A cloud provider's providers",
    description: "The providers (VM offerings) of the cloud provider, with `cloudProvider` \
        populated; disabled ones too (`isDisabled`).",
    params: &[Param::CloudProvider],
    success: answer("ProviderList", "The providers, in id order"),
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "CLOUD_PROVIDER_NOT_FOUND",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    ..READ
};

pub(super) const LIST_LOCATIONS: Spec = Spec {
    path: "/api/providers/{id}/locations",
    function: "list-locations",
    summary: "A provider's locations",
    description: "The locations the provider offers, each with its `_id`; a create's `region` is \
        a location without its `_id`.",
    params: &[Param::Provider],
    success: answer("LocationList", "The locations"),
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "PROVIDER_NOT_FOUND",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    ..READ
};

pub(super) const LIST_IMAGES: Spec = Spec {
    path: "/api/providers/{id}/locations/{location}/images",
    function: "list-images",
    summary: "The images of a provider's location",
    description: "The images the provider offers at the location (those a price of the \
        location names); `{location}` is the location's `_id` or its datacenter name (e.g. \
        `berlin`). A create's `image` is one of them.",
    params: &[Param::Provider, Param::Location],
    success: answer("ImageList", "The images"),
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "PROVIDER_NOT_FOUND",
        "LOCATION_NOT_FOUND",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    ..READ
};

pub(super) const LIST_PRICES: Spec = Spec {
    path: "/api/providers/{id}/locations/{location}/images/{imageName}/prices",
    function: "list-prices",
    summary: "The prices of an image at a provider's location",
    description: "The platform's configuration lookup: every price of the provider for the image \
        (its distribution, e.g. `Ubuntu`) at the location (`_id` or datacenter name), each with \
        its `size` populated. A create names a price's `_id` as `price` and its size's `_id` as \
        `size`.",
    params: &[Param::Provider, Param::Location, Param::ImageName],
    success: answer(
        "PriceOfferList",
        "The prices, in id order, each with its size",
    ),
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "PROVIDER_NOT_FOUND",
        "LOCATION_NOT_FOUND",
        "IMAGE_NOT_FOUND",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    ..READ
};
