//! `#[derive(IntegrationEvent)]` on an enum of payloads: several message types on one topic.
//!
//! Each variant wraps one payload type and stands for one message type (its
//! `#[integration(name = "...")]`, else the payload type's name). The enum reads and writes
//! each variant's payload as that type's own data, picks the variant by the message type when
//! decoding (never by the shape of the data: two payloads may look alike), registers every
//! variant's schema under the topic (a broker adapter derives the topic's union from them), and
//! is handled by one handler for all its types.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{DataEnum, DeriveInput, Fields, Ident, LitStr, Type};

use crate::attrs;

/// The enum's `#[integration(...)]` values and the derive's kind.
pub(crate) struct Contract<'a> {
    pub(crate) topic: &'a LitStr,
    pub(crate) version: &'a LitStr,
    pub(crate) name: &'a LitStr,
    pub(crate) key: Option<&'a Ident>,
    pub(crate) kind: &'a TokenStream,
    pub(crate) marker: &'a TokenStream,
}

struct Variant<'a> {
    ident: &'a Ident,
    payload: &'a Type,
    message_type: LitStr,
}

pub(crate) fn integration_enum(
    input: &DeriveInput,
    data: &DataEnum,
    contract: Contract<'_>,
) -> syn::Result<TokenStream> {
    if let Some(avro) = input.attrs.iter().find(|a| a.path().is_ident("avro")) {
        return Err(syn::Error::new_spanned(
            avro,
            "#[avro(...)] names a payload record; on an enum of payloads, put it on each \
             payload type",
        ));
    }
    let mut variants = Vec::new();
    for variant in &data.variants {
        let payload = match &variant.fields {
            Fields::Unnamed(fields) if fields.unnamed.len() == 1 => &fields.unnamed[0].ty,
            _ => return Err(syn::Error::new(
                variant.span(),
                "each variant of an integration enum wraps one payload type: `Variant(Payload)`",
            )),
        };
        let options = attrs::parse(&variant.attrs, "integration", &["name"])?;
        let message_type = match options.name {
            Some(name) => name,
            None => LitStr::new(&type_name(payload)?, payload.span()),
        };
        if let Some(earlier) = variants
            .iter()
            .find(|v: &&Variant<'_>| v.message_type.value() == message_type.value())
        {
            return Err(syn::Error::new(
                message_type.span(),
                format!(
                    "variants `{}` and `{}` both stand for message type `{}`; name one with \
                     #[integration(name = \"...\")]",
                    earlier.ident,
                    variant.ident,
                    message_type.value()
                ),
            ));
        }
        variants.push(Variant {
            ident: &variant.ident,
            payload,
            message_type,
        });
    }

    let Contract {
        topic,
        version,
        name,
        key,
        kind,
        marker,
    } = contract;
    let ident = &input.ident;
    let idents: Vec<&Ident> = variants.iter().map(|v| v.ident).collect();
    let types: Vec<&LitStr> = variants.iter().map(|v| &v.message_type).collect();
    let payloads: Vec<&Type> = variants.iter().map(|v| v.payload).collect();
    let key = key.map(|field| {
        quote! {
            fn key(&self) -> ::core::option::Option<::std::string::String> {
                ::core::option::Option::Some(match self {
                    #(Self::#idents(payload) => ::std::string::ToString::to_string(&payload.#field),)*
                })
            }
        }
    });
    Ok(quote! {
        impl ::seedwork::messaging::schema::AvroSchema for #ident {
            fn avro_schema() -> ::seedwork::messaging::schema::Schema {
                ::seedwork::messaging::schema::Schema::Union(::std::vec![
                    #(<#payloads as ::seedwork::messaging::schema::AvroSchema>::avro_schema(),)*
                ])
            }
        }
        #(
            ::seedwork::__private::inventory::submit! {
                ::seedwork::messaging::schema::MessageSchema::new(
                    #topic,
                    #types,
                    #version,
                    #kind,
                    <#payloads as ::seedwork::messaging::schema::AvroSchema>::avro_schema,
                )
            }
        )*
        impl ::seedwork::messaging::IntegrationMessage for #ident {
            const TOPIC: &'static str = #topic;
            const TYPE: &'static str = #name;
            const VERSION: &'static str = #version;
            const KIND: ::seedwork::messaging::MessageKind = #kind;
            const TYPES: &'static [&'static str] = &[#(#types),*];
            #key
            fn message_type(&self) -> &'static str {
                match self {
                    #(Self::#idents(_) => #types,)*
                }
            }
            fn to_data(&self) -> ::seedwork::__private::serde_json::Result<::seedwork::__private::serde_json::Value> {
                match self {
                    #(Self::#idents(payload) => ::seedwork::__private::serde_json::to_value(payload),)*
                }
            }
            fn from_data(
                message_type: &str,
                data: &::seedwork::__private::serde_json::Value,
            ) -> ::seedwork::__private::serde_json::Result<Self> {
                match message_type {
                    #(#types => <#payloads as ::seedwork::__private::serde::Deserialize>::deserialize(data).map(Self::#idents),)*
                    other => ::core::result::Result::Err(
                        <::seedwork::__private::serde_json::Error as ::seedwork::__private::serde::de::Error>::custom(
                            ::std::format!("`{other}` is not one of the types of `{}`", #name),
                        ),
                    ),
                }
            }
        }
        impl #marker for #ident {}
    })
}

/// The last segment of a payload's type path (`vuelos::ReservaCreada` → `ReservaCreada`).
fn type_name(ty: &Type) -> syn::Result<String> {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .map(|segment| segment.ident.to_string())
            .ok_or_else(|| syn::Error::new(ty.span(), "a payload type path")),
        _ => Err(syn::Error::new(
            ty.span(),
            "name this variant's message type: #[integration(name = \"...\")]",
        )),
    }
}
