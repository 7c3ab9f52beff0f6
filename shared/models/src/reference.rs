//! A reference: a bare id, or the object it names ("populated").

use serde::{Deserialize, Serialize};

/// A reference: a bare id, or the object it names ("populated").
///
/// Wire types name a reference by a type alias (`ProviderRef`, `TeamRef`, ...): utoipa's
/// `derive(ToSchema)` composes a field type written with generic arguments through a hidden
/// trait of its own, and takes an alias for the plain type it is, whose schema is the public
/// `ToSchema` below.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ref<I, T> {
    /// Only the id.
    Id(I),
    /// The whole object.
    Populated(T),
}

/// The OpenAPI schema of [`Ref`] (feature `openapi`): the component `Ref_{I}_{T}`,
/// `oneOf: [I, T]`, both by reference.
#[cfg(feature = "openapi")]
mod schema {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{OneOfBuilder, Schema};
    use utoipa::openapi::RefOr;
    use utoipa::{PartialSchema, ToSchema};

    use super::Ref;

    impl<I: ToSchema, T: ToSchema> PartialSchema for Ref<I, T> {
        fn schema() -> RefOr<Schema> {
            OneOfBuilder::new()
                .item(utoipa::openapi::Ref::from_schema_name(I::name()))
                .item(utoipa::openapi::Ref::from_schema_name(T::name()))
                .description(Some(format!(
                    "A reference: the {} id, or the {} it names (\"populated\")",
                    T::name(),
                    T::name()
                )))
                .into()
        }
    }

    impl<I: ToSchema, T: ToSchema> ToSchema for Ref<I, T> {
        fn name() -> Cow<'static, str> {
            Cow::Owned(format!("Ref_{}_{}", I::name(), T::name()))
        }

        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((I::name().into_owned(), I::schema()));
            I::schemas(schemas);
            schemas.push((T::name().into_owned(), T::schema()));
            T::schemas(schemas);
        }
    }
}
