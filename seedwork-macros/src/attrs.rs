//! Parsing of the `key = value` lists inside the derive attributes.

use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitStr, Type};

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
                    let ty: Type = meta.value()?.parse()?;
                    if options.output.replace(ty).is_some() {
                        return Err(duplicate());
                    }
                }
                "name" | "topic" | "version" => {
                    let lit: LitStr = meta.value()?.parse()?;
                    if lit.value().trim().is_empty() {
                        return Err(syn::Error::new(
                            lit.span(),
                            format!("`{key}` cannot be empty"),
                        ));
                    }
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
                    let ident: Ident = meta.value()?.parse()?;
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

/// An error when an attribute that takes no arguments got some.
pub(crate) fn no_arguments(args: proc_macro2::TokenStream, macro_name: &str) -> syn::Result<()> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(syn::Error::new(
            args.span(),
            format!("#[{macro_name}] takes no arguments"),
        ))
    }
}
