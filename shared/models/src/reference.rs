//! A reference: a bare id, or the object it names ("populated").

use serde::{Deserialize, Serialize};

/// A reference: a bare id, or the object it names ("populated").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ref<I, T> {
    /// Only the id.
    Id(I),
    /// The whole object.
    Populated(T),
}

/// The OpenAPI schema of [`Ref`] (feature `openapi`).
#[cfg(feature = "openapi")]
mod schema {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{OneOfBuilder, Schema};
    use utoipa::openapi::RefOr;
    use utoipa::ToSchema;

    use super::Ref;

    /// `Ref<I, T>` is `oneOf: [I, T]`, both by reference. Derived schemas compose generic
    /// field types through `utoipa::__dev::ComposeSchema` (what `derive(ToSchema)` would
    /// implement), so that is the trait to implement by hand; the generics it is handed (the
    /// inlined schemas of `I` and `T`) are replaced by references to their components.
    impl<I: ToSchema, T: ToSchema> utoipa::__dev::ComposeSchema for Ref<I, T> {
        fn compose(_generics: Vec<RefOr<Schema>>) -> RefOr<Schema> {
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
            Cow::Borrowed("Ref")
        }

        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((I::name().into_owned(), I::schema()));
            I::schemas(schemas);
            schemas.push((T::name().into_owned(), T::schema()));
            T::schemas(schemas);
        }
    }
}
