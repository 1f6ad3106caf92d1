//! `#[derive(AvroSchema)]`: the Avro schema of a struct or unit enum, from its fields and its
//! serde attributes (the schema describes the serde form, so `rename`, `rename_all` and `skip`
//! are honoured, and what the derive cannot describe is refused at compile time).

use proc_macro2::TokenStream;
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{parse_quote, Attribute, Data, DeriveInput, Fields, LitStr, Token, Type};

/// `#[avro(...)]` on the type.
#[derive(Default)]
struct Container {
    name: Option<LitStr>,
    namespace: Option<LitStr>,
    /// Every field that is not an `Option` is written `["null", T]` too, as the Python client
    /// renders a field that is not `required`.
    nullable: bool,
}

/// What serde does to a name or a field.
#[derive(Default)]
struct SerdeField {
    rename: Option<String>,
    skip: bool,
    custom: Option<proc_macro2::Span>,
    flatten: Option<proc_macro2::Span>,
}

#[derive(Default)]
struct SerdeContainer {
    rename_all: Option<(String, proc_macro2::Span)>,
    transparent: bool,
    tagged: Option<proc_macro2::Span>,
}

/// The derive itself.
pub(crate) fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    let body = schema_body(&input)?;
    Ok(implementation(&input, body))
}

/// The `AvroSchema` impl for an integration payload (used by the integration derives), or
/// `None` for what it cannot describe (an enum with data, a generic type), which then travels
/// without a derived schema.
pub(crate) fn for_integration(input: &DeriveInput) -> syn::Result<Option<TokenStream>> {
    if !matches!(input.data, Data::Struct(_)) {
        return Ok(None);
    }
    let body = schema_body(input)?;
    Ok(Some(implementation(input, body)))
}

fn implementation(input: &DeriveInput, body: TokenStream) -> TokenStream {
    let ident = &input.ident;
    let mut generics = input.generics.clone();
    let params: Vec<_> = generics.type_params().map(|p| p.ident.clone()).collect();
    if !params.is_empty() {
        let clause = generics.make_where_clause();
        for param in params {
            clause
                .predicates
                .push(parse_quote!(#param: ::seedwork::messaging::schema::AvroSchema));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        impl #impl_generics ::seedwork::messaging::schema::AvroSchema for #ident #ty_generics #where_clause {
            fn avro_schema() -> ::seedwork::messaging::schema::Schema {
                #body
            }
        }
    }
}

fn schema_body(input: &DeriveInput) -> syn::Result<TokenStream> {
    let container = container(&input.attrs)?;
    let serde = serde_container(&input.attrs)?;
    let name = container
        .name
        .as_ref()
        .map(LitStr::value)
        .unwrap_or_else(|| input.ident.to_string());
    let namespace = container
        .namespace
        .as_ref()
        .map(|ns| quote!(.namespace(#ns)));
    let rename_all = serde.rename_all.as_ref();
    match &input.data {
        Data::Struct(data) => {
            if let Some(span) = serde.tagged {
                return Err(syn::Error::new(
                    span,
                    "#[derive(AvroSchema)]: serde tagging only applies to enums",
                ));
            }
            if serde.transparent {
                let Some(field) = data.fields.iter().next() else {
                    return Err(syn::Error::new(
                        input.ident.span(),
                        "a transparent struct needs a field",
                    ));
                };
                let ty = &field.ty;
                return Ok(
                    quote!(<#ty as ::seedwork::messaging::schema::AvroSchema>::avro_schema()),
                );
            }
            let Fields::Named(named) = &data.fields else {
                return Err(syn::Error::new(
                    input.ident.span(),
                    "#[derive(AvroSchema)] needs named fields (an Avro record); \
                     a tuple struct has no field names, use #[serde(transparent)] for a newtype",
                ));
            };
            let mut fields = Vec::new();
            for field in &named.named {
                reject_avro_on(&field.attrs, "field")?;
                let serde = serde_field(&field.attrs)?;
                if serde.skip {
                    continue;
                }
                if let Some(span) = serde.flatten {
                    return Err(syn::Error::new(span, "#[derive(AvroSchema)] cannot describe #[serde(flatten)]; nest the record instead"));
                }
                if let Some(span) = serde.custom {
                    return Err(syn::Error::new(
                        span,
                        "#[derive(AvroSchema)] cannot see through a custom serde function; \
                         implement AvroSchema by hand for this type",
                    ));
                }
                let ident = field.ident.as_ref().expect("named field");
                let field_name = match serde.rename {
                    Some(rename) => rename,
                    None => apply_rename(&unraw(ident), rename_all)?,
                };
                let ty: &Type = &field.ty;
                let schema = if container.nullable {
                    quote!(<#ty as ::seedwork::messaging::schema::AvroSchema>::avro_schema().nullable())
                } else {
                    quote!(<#ty as ::seedwork::messaging::schema::AvroSchema>::avro_schema())
                };
                fields.push(quote! {
                    .field(::seedwork::messaging::schema::Field::new(#field_name, #schema))
                });
            }
            Ok(quote! {
                ::seedwork::messaging::schema::Schema::Record(
                    ::seedwork::messaging::schema::Record::new(#name) #namespace #(#fields)*
                )
            })
        }
        Data::Enum(data) => {
            if let Some(span) = serde.tagged {
                return Err(syn::Error::new(span, "#[derive(AvroSchema)] describes unit enums as Avro enums; a tagged enum has no Avro form here"));
            }
            let mut symbols = Vec::new();
            for variant in &data.variants {
                reject_avro_on(&variant.attrs, "variant")?;
                if !matches!(variant.fields, Fields::Unit) {
                    return Err(syn::Error::new(
                        variant.span(),
                        "#[derive(AvroSchema)] supports enums of unit variants (an Avro enum); \
                         this variant carries data",
                    ));
                }
                let serde = serde_field(&variant.attrs)?;
                if serde.skip {
                    continue;
                }
                symbols.push(match serde.rename {
                    Some(rename) => rename,
                    None => apply_rename(&variant.ident.to_string(), rename_all)?,
                });
            }
            Ok(quote! {
                ::seedwork::messaging::schema::Schema::Enum(
                    ::seedwork::messaging::schema::Enum::new(#name, [#(#symbols),*]) #namespace
                )
            })
        }
        Data::Union(union) => Err(syn::Error::new(
            union.union_token.span,
            "#[derive(AvroSchema)] does not support unions; use a struct or an enum",
        )),
    }
}

fn unraw(ident: &syn::Ident) -> String {
    let text = ident.to_string();
    text.strip_prefix("r#").map(str::to_string).unwrap_or(text)
}

/// `#[avro(...)]` belongs on the type only.
fn reject_avro_on(attrs: &[Attribute], what: &str) -> syn::Result<()> {
    match attrs.iter().find(|a| a.path().is_ident("avro")) {
        Some(found) => Err(syn::Error::new_spanned(
            found,
            format!("#[avro(...)] goes on the type, not on a {what}; rename with #[serde(rename = \"...\")]"),
        )),
        None => Ok(()),
    }
}

fn container(attrs: &[Attribute]) -> syn::Result<Container> {
    let mut out = Container::default();
    for attribute in attrs.iter().filter(|a| a.path().is_ident("avro")) {
        attribute.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") || meta.path.is_ident("namespace") {
                let lit: LitStr = meta.value()?.parse()?;
                check_name(&lit, meta.path.is_ident("namespace"))?;
                let slot = if meta.path.is_ident("name") {
                    &mut out.name
                } else {
                    &mut out.namespace
                };
                if slot.replace(lit).is_some() {
                    return Err(meta.error("given twice"));
                }
                Ok(())
            } else if meta.path.is_ident("nullable") {
                out.nullable = true;
                Ok(())
            } else {
                Err(meta.error(
                    "unknown key in #[avro(...)]; expected one of: name, namespace, nullable",
                ))
            }
        })?;
    }
    Ok(out)
}

/// An Avro name: `[A-Za-z_][A-Za-z0-9_]*` (dot-separated for a namespace).
fn check_name(lit: &LitStr, namespace: bool) -> syn::Result<()> {
    let text = lit.value();
    let valid_part = |part: &str| {
        let mut chars = part.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let valid = if namespace {
        text.split('.').all(valid_part)
    } else {
        valid_part(&text)
    };
    if valid {
        Ok(())
    } else {
        Err(syn::Error::new(
            lit.span(),
            format!("`{text}` is not a valid Avro name"),
        ))
    }
}

fn serde_container(attrs: &[Attribute]) -> syn::Result<SerdeContainer> {
    let mut out = SerdeContainer::default();
    for attribute in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attribute.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename_all") {
                if let Some(lit) = serialized(&meta)? {
                    out.rename_all = Some((lit.value(), lit.span()));
                }
                Ok(())
            } else if meta.path.is_ident("transparent") {
                out.transparent = true;
                Ok(())
            } else if ["tag", "content", "untagged"]
                .iter()
                .any(|k| meta.path.is_ident(k))
            {
                out.tagged = Some(meta.path.span());
                skip_value(&meta)
            } else {
                skip_value(&meta)
            }
        })?;
    }
    Ok(out)
}

fn serde_field(attrs: &[Attribute]) -> syn::Result<SerdeField> {
    let mut out = SerdeField::default();
    for attribute in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attribute.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                if let Some(lit) = serialized(&meta)? {
                    out.rename = Some(lit.value());
                }
                Ok(())
            } else if meta.path.is_ident("skip") || meta.path.is_ident("skip_serializing") {
                out.skip = true;
                Ok(())
            } else if meta.path.is_ident("flatten") {
                out.flatten = Some(meta.path.span());
                Ok(())
            } else if ["with", "serialize_with", "deserialize_with"]
                .iter()
                .any(|k| meta.path.is_ident(k))
            {
                out.custom = Some(meta.path.span());
                skip_value(&meta)
            } else {
                skip_value(&meta)
            }
        })?;
    }
    Ok(out)
}

/// The serialized side of `key = "x"` or `key(serialize = "x", deserialize = "y")` (serde's
/// `rename` and `rename_all`): the schema describes what is written.
fn serialized(meta: &ParseNestedMeta<'_>) -> syn::Result<Option<LitStr>> {
    if meta.input.peek(Token![=]) {
        return meta.value()?.parse().map(Some);
    }
    let mut found = None;
    meta.parse_nested_meta(|inner| {
        let lit: LitStr = inner.value()?.parse()?;
        if inner.path.is_ident("serialize") {
            found = Some(lit);
        }
        Ok(())
    })?;
    Ok(found)
}

/// Consumes the value of a serde key this derive does not care about (`default = "f"`,
/// `bound(...)`, `alias = "x"`…).
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_value(&inner))?;
    }
    Ok(())
}

/// serde's `rename_all` rules that give a valid Avro name.
fn apply_rename(name: &str, rule: Option<&(String, proc_macro2::Span)>) -> syn::Result<String> {
    let Some((rule, span)) = rule else {
        return Ok(name.to_string());
    };
    let words = words(name);
    let capitalised = |w: &String| {
        let mut chars = w.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
            None => String::new(),
        }
    };
    Ok(match rule.as_str() {
        "lowercase" => name.to_lowercase(),
        "UPPERCASE" => name.to_uppercase(),
        "snake_case" => words.join("_"),
        "SCREAMING_SNAKE_CASE" => words.join("_").to_uppercase(),
        "PascalCase" => words.iter().map(capitalised).collect(),
        "camelCase" => {
            let pascal: String = words.iter().map(capitalised).collect();
            let mut chars = pascal.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().collect::<String>() + chars.as_str(),
                None => pascal,
            }
        }
        other => {
            return Err(syn::Error::new(
                *span,
                format!("#[derive(AvroSchema)]: rename_all = \"{other}\" does not give Avro names"),
            ))
        }
    })
}

/// The lower-case words of a snake_case or PascalCase identifier.
fn words(name: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for part in name.split('_').filter(|p| !p.is_empty()) {
        let mut current = String::new();
        for c in part.chars() {
            if c.is_uppercase() && !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            current.extend(c.to_lowercase());
        }
        if !current.is_empty() {
            words.push(current);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(input: DeriveInput) -> String {
        derive(input)
            .map(|t| t.to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn fields_follow_serde_renames_and_skips() {
        let out = expand(parse_quote! {
            #[serde(rename_all = "camelCase")]
            #[avro(name = "Payload", namespace = "vuelos.v1")]
            struct P {
                id_reserva: String,
                #[serde(rename = "otro")]
                campo: i64,
                #[serde(skip)]
                interno: u8,
            }
        });
        assert!(out.contains("\"idReserva\""), "{out}");
        assert!(out.contains("\"otro\""), "{out}");
        assert!(!out.contains("interno"), "{out}");
        assert!(out.contains("\"Payload\""), "{out}");
        assert!(out.contains("\"vuelos.v1\""), "{out}");
    }

    #[test]
    fn what_cannot_be_described_is_refused() {
        for (input, expected) in [
            (parse_quote! { enum E { A(u8) } }, "carries data"),
            (parse_quote! { struct T(u8); }, "named fields"),
            (
                parse_quote! { struct F { #[serde(flatten)] a: X } },
                "flatten",
            ),
            (
                parse_quote! { struct W { #[serde(with = "m")] a: X } },
                "custom serde",
            ),
            (
                parse_quote! { #[avro(name = "no-valid")] struct N { a: u8 } },
                "valid Avro name",
            ),
            (
                parse_quote! { #[avro(bogus)] struct B { a: u8 } },
                "unknown key",
            ),
            (
                parse_quote! { struct A { #[avro(name = "x")] a: u8 } },
                "goes on the type",
            ),
            (
                parse_quote! { #[serde(rename_all = "kebab-case")] struct K { a_b: u8 } },
                "Avro names",
            ),
            (parse_quote! { #[serde(tag = "t")] enum G { A } }, "tagged"),
        ] {
            let out = expand(input);
            assert!(out.contains(expected), "expected `{expected}` in: {out}");
        }
    }

    #[test]
    fn rename_all_rules() {
        let span = proc_macro2::Span::call_site();
        let rule = |r: &str| Some((r.to_string(), span));
        assert_eq!(
            apply_rename("fecha_creacion", rule("camelCase").as_ref()).unwrap(),
            "fechaCreacion"
        );
        assert_eq!(
            apply_rename("Pendiente", rule("SCREAMING_SNAKE_CASE").as_ref()).unwrap(),
            "PENDIENTE"
        );
        assert_eq!(
            apply_rename("EnCurso", rule("snake_case").as_ref()).unwrap(),
            "en_curso"
        );
        assert_eq!(
            apply_rename("en_curso", rule("PascalCase").as_ref()).unwrap(),
            "EnCurso"
        );
    }
}
