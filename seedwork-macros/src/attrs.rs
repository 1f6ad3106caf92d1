//! Parsing of the `key = value` lists inside the derive attributes.

use syn::meta::ParseNestedMeta;
use syn::{Attribute, Data, DeriveInput, Ident, LitStr, Type};

/// The values a derive attribute may carry; which keys are allowed is up to the caller.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) output: Option<Type>,
    pub(crate) name: Option<LitStr>,
    pub(crate) topic: Option<LitStr>,
    pub(crate) version: Option<LitStr>,
    pub(crate) key: Option<Ident>,
}

/// Reads every `#[<attr>(...)]` on the item, accepting only `allowed` keys.
pub(crate) fn parse(attrs: &[Attribute], attr: &str, allowed: &[&str]) -> syn::Result<Options> {
    let mut options = Options::default();
    for attribute in attrs.iter().filter(|a| a.path().is_ident(attr)) {
        attribute.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(Ident::to_string)
                .unwrap_or_default();
            if !allowed.contains(&key.as_str()) {
                return Err(meta.error(format!(
                    "unknown key in #[{attr}(...)]; expected one of: {}",
                    allowed.join(", ")
                )));
            }
            let duplicate = || meta.error(format!("`{key}` is given twice"));
            match key.as_str() {
                "output" => {
                    let ty = output_type(&meta, attr)?;
                    if options.output.replace(ty).is_some() {
                        return Err(duplicate());
                    }
                }
                "name" | "topic" | "version" => {
                    let lit = string_value(&meta, &key)?;
                    let slot = match key.as_str() {
                        "name" => &mut options.name,
                        "topic" => &mut options.topic,
                        _ => &mut options.version,
                    };
                    if slot.replace(lit).is_some() {
                        return Err(duplicate());
                    }
                }
                "key" => {
                    let ident = field_name(&meta)?;
                    if options.key.replace(ident).is_some() {
                        return Err(duplicate());
                    }
                }
                _ => return Err(meta.error("unsupported key")),
            }
            Ok(())
        })?;
    }
    Ok(options)
}

/// `output = SomeType`; a string literal gets a hint instead of syn's generic message.
fn output_type(meta: &ParseNestedMeta<'_>, attr: &str) -> syn::Result<Type> {
    let value = meta.value()?;
    refuse_string(value, |text| {
        format!("`output` takes a type, not a string: #[{attr}(output = {text})]")
    })?;
    value.parse()
}

/// Fails with `hint(the string's text)` when the next token is a string literal where a type
/// or a name belongs (a common slip, which syn would report less helpfully).
fn refuse_string(
    value: syn::parse::ParseStream<'_>,
    hint: impl FnOnce(String) -> String,
) -> syn::Result<()> {
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        return Err(syn::Error::new(lit.span(), hint(lit.value())));
    }
    Ok(())
}

/// `name = "..."`, `topic = "..."`, `version = "..."`: a non-empty string literal.
fn string_value(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<LitStr> {
    let value = meta.value()?;
    if !value.peek(LitStr) {
        return Err(value.error(format!("`{key}` takes a string literal: {key} = \"...\"")));
    }
    let lit: LitStr = value.parse()?;
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{key}` cannot be empty"),
        ));
    }
    Ok(lit)
}

/// `key = field_name`; a string literal gets a hint.
fn field_name(meta: &ParseNestedMeta<'_>) -> syn::Result<Ident> {
    let value = meta.value()?;
    refuse_string(value, |text| {
        format!("`key` takes a field name, not a string: key = {text}")
    })?;
    if !value.peek(Ident) {
        return Err(value.error("`key` takes the name of a field: key = my_field"));
    }
    value.parse()
}

/// An error when a type-level helper attribute (`#[command(...)]`…) is put on a field or a
/// variant, where it would otherwise be silently ignored.
pub(crate) fn reject_inner(input: &DeriveInput, attr: &str) -> syn::Result<()> {
    let misplaced = |attrs: &[Attribute]| -> syn::Result<()> {
        match attrs.iter().find(|a| a.path().is_ident(attr)) {
            Some(found) => Err(syn::Error::new_spanned(
                found,
                format!("#[{attr}(...)] goes on the type itself, not on a field or a variant"),
            )),
            None => Ok(()),
        }
    };
    match &input.data {
        Data::Struct(data) => data.fields.iter().try_for_each(|f| misplaced(&f.attrs)),
        Data::Enum(data) => data.variants.iter().try_for_each(|v| {
            misplaced(&v.attrs)?;
            v.fields.iter().try_for_each(|f| misplaced(&f.attrs))
        }),
        Data::Union(data) => data
            .fields
            .named
            .iter()
            .try_for_each(|f| misplaced(&f.attrs)),
    }
}

/// An error when an attribute that takes no arguments got some.
pub(crate) fn no_arguments(args: proc_macro2::TokenStream, macro_name: &str) -> syn::Result<()> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            args,
            format!("#[{macro_name}] takes no arguments"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens;
    use syn::parse_quote;

    fn parse_command(input: DeriveInput) -> syn::Result<Options> {
        parse(&input.attrs, "command", &["output", "name"])
    }

    #[test]
    fn reads_every_allowed_key_across_attributes() {
        let input: DeriveInput = parse_quote! {
            #[derive(Command)]
            #[command(output = Option<String>)]
            #[command(name = "Crear")]
            #[doc = "ignored"]
            struct Crear;
        };
        let options = parse_command(input).unwrap();
        assert_eq!(
            options.output.unwrap().to_token_stream().to_string(),
            "Option < String >"
        );
        assert_eq!(options.name.unwrap().value(), "Crear");
        assert!(options.topic.is_none());
    }

    #[test]
    fn integration_keys() {
        let input: DeriveInput = parse_quote! {
            #[integration(topic = "eventos", version = "v2", name = "E", key = id)]
            struct E { id: String }
        };
        let options = parse(
            &input.attrs,
            "integration",
            &["topic", "version", "name", "key"],
        )
        .unwrap();
        assert_eq!(options.topic.unwrap().value(), "eventos");
        assert_eq!(options.version.unwrap().value(), "v2");
        assert_eq!(options.name.unwrap().value(), "E");
        assert_eq!(options.key.unwrap(), "id");
    }

    fn error_of(input: DeriveInput) -> String {
        match parse_command(input) {
            Ok(_) => panic!("expected an error"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn unknown_key_lists_the_allowed_ones() {
        let message = error_of(parse_quote! { #[command(ouput = u32)] struct C; });
        assert_eq!(
            message,
            "unknown key in #[command(...)]; expected one of: output, name"
        );
        let message = error_of(parse_quote! { #[command(topic = "t")] struct C; });
        assert!(message.starts_with("unknown key"), "{message}");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let message = error_of(parse_quote! {
            #[command(name = "A")]
            #[command(name = "B")]
            struct C;
        });
        assert_eq!(message, "`name` is given twice");
    }

    #[test]
    fn wrong_value_kinds_are_explained() {
        let message = error_of(parse_quote! { #[command(output = "String")] struct C; });
        assert_eq!(
            message,
            "`output` takes a type, not a string: #[command(output = String)]"
        );
        let message = error_of(parse_quote! { #[command(name = Crear)] struct C; });
        assert_eq!(message, "`name` takes a string literal: name = \"...\"");
        let message = error_of(parse_quote! { #[command(name = "  ")] struct C; });
        assert_eq!(message, "`name` cannot be empty");
        let message = error_of(parse_quote! { #[command(output)] struct C; });
        assert!(message.contains('='), "{message}");
    }

    #[test]
    fn key_takes_a_field_name() {
        let input: DeriveInput = parse_quote! {
            #[integration(topic = "t", key = "id")]
            struct E { id: String }
        };
        let message = match parse(&input.attrs, "integration", &["topic", "key"]) {
            Ok(_) => panic!("expected an error"),
            Err(error) => error.to_string(),
        };
        assert_eq!(message, "`key` takes a field name, not a string: key = id");
    }

    #[test]
    fn helper_attributes_on_fields_are_rejected() {
        let input: DeriveInput = parse_quote! {
            struct C { #[command(output = u32)] x: u32 }
        };
        let message = reject_inner(&input, "command").unwrap_err().to_string();
        assert_eq!(
            message,
            "#[command(...)] goes on the type itself, not on a field or a variant"
        );
        let input: DeriveInput = parse_quote! {
            enum C { #[command(name = "A")] A, B }
        };
        assert!(reject_inner(&input, "command").is_err());
        let input: DeriveInput = parse_quote! {
            #[command(name = "C")]
            struct C { #[serde(default)] x: u32 }
        };
        assert!(reject_inner(&input, "command").is_ok());
    }

    #[test]
    fn arguments_to_argument_free_attributes_are_rejected() {
        assert!(no_arguments(proc_macro2::TokenStream::new(), "command_handler").is_ok());
        let error = no_arguments(quote::quote!(topic = "x"), "command_handler").unwrap_err();
        assert_eq!(error.to_string(), "#[command_handler] takes no arguments");
    }
}
