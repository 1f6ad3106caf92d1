//! `#[upcaster]`: registers `fn(Old) -> New` as the step from `Old`'s schema version to `New`'s.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::handlers::check_signature;

pub(crate) fn upcaster(item: ItemFn) -> syn::Result<TokenStream> {
    let attribute = "upcaster";
    let sig = &item.sig;
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span,
            "#[upcaster] must be a plain `fn`, not `async`: it converts data while decoding",
        ));
    }
    check_signature(sig, attribute)?;
    let old: Type =
        match sig.inputs.iter().collect::<Vec<_>>().as_slice() {
            [FnArg::Typed(typed)] => match &*typed.ty {
                Type::Reference(reference) => {
                    return Err(syn::Error::new_spanned(
                        reference,
                        "#[upcaster] takes the old version by value: `fn up(old: V1) -> V2`",
                    ))
                }
                ty => ty.clone(),
            },
            _ => return Err(syn::Error::new(
                sig.paren_token.span.join(),
                "#[upcaster] takes exactly one parameter, the old version: `fn up(old: V1) -> V2`",
            )),
        };
    let new: Type = match &sig.output {
        ReturnType::Type(_, ty) if !matches!(**ty, Type::ImplTrait(_) | Type::Infer(_)) => {
            (**ty).clone()
        }
        _ => {
            return Err(syn::Error::new_spanned(
                &sig.ident,
                "#[upcaster] returns the new version: `fn up(old: V1) -> V2`",
            ))
        }
    };
    let function = &sig.ident;
    // Checked at the user's tokens: both sides must be integration messages.
    let old_check = quote_spanned! {old.span()=>
        __seedwork_integration_message::<#old>();
    };
    let new_check = quote_spanned! {new.span()=>
        __seedwork_integration_message::<#new>();
    };
    Ok(quote! {
        #item

        const _: () = {
            #[allow(dead_code)]
            fn __seedwork_integration_message<M: ::seedwork::messaging::IntegrationMessage>() {}
            #[allow(dead_code)]
            fn __seedwork_check() {
                #old_check
                #new_check
            }
            ::seedwork::__private::inventory::submit! {
                ::seedwork::messaging::Upcaster::new(
                    <#old as ::seedwork::messaging::IntegrationMessage>::TYPE,
                    <#old as ::seedwork::messaging::IntegrationMessage>::VERSION,
                    <#new as ::seedwork::messaging::IntegrationMessage>::TYPE,
                    <#new as ::seedwork::messaging::IntegrationMessage>::VERSION,
                    |data| ::seedwork::messaging::Upcaster::typed::<#old, #new>(
                        <#old as ::seedwork::messaging::IntegrationMessage>::TYPE,
                        data,
                        #function,
                    ),
                )
            }
        };
    })
}
