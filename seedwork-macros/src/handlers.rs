//! The registration attributes on handler functions.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, PatType, PathArguments, ReturnType, Signature, Type};

/// Which attribute is being expanded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Command,
    Query,
    DomainEvent,
    Message,
}

impl Kind {
    fn attribute(self) -> &'static str {
        match self {
            Kind::Command => "command_handler",
            Kind::Query => "query_handler",
            Kind::DomainEvent => "domain_event_handler",
            Kind::Message => "message_handler",
        }
    }

    /// What the first parameter must be, with an example.
    fn first_parameter(self) -> &'static str {
        match self {
            Kind::Command => "the command, by value: `command: MyCommand`",
            Kind::Query => "the query, by value: `query: MyQuery`",
            Kind::DomainEvent => "a reference to the event: `event: &MyEvent`",
            Kind::Message => "the message in its envelope: `message: Envelope<MyMessage>`",
        }
    }
}

enum Param {
    UnitOfWork,
    Extractor(Box<Type>),
}

fn is_unit_of_work(ty: &Type) -> bool {
    if let Type::Reference(reference) = ty {
        if reference.mutability.is_some() {
            if let Type::Path(path) = &*reference.elem {
                return path
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "UnitOfWork");
            }
        }
    }
    false
}

/// The checks every registered function shares: a plain, free, non-generic function with a
/// return type.
pub(crate) fn check_signature(sig: &Signature, attribute: &str) -> syn::Result<()> {
    if let Some(constness) = &sig.constness {
        return Err(syn::Error::new(
            constness.span,
            format!("#[{attribute}] cannot be a `const fn`"),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        return Err(syn::Error::new(
            unsafety.span,
            format!("#[{attribute}] cannot be an `unsafe fn`"),
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new_spanned(
            abi,
            format!("#[{attribute}] must be a Rust function, without `extern`"),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            format!("#[{attribute}] cannot be variadic"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        let error =
            format!("#[{attribute}] cannot be generic: register one function per concrete type");
        return Err(match &sig.generics.where_clause {
            Some(clause) if sig.generics.params.is_empty() => {
                syn::Error::new_spanned(clause, error)
            }
            _ => syn::Error::new_spanned(&sig.generics, error),
        });
    }
    if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
        return Err(syn::Error::new_spanned(
            receiver,
            format!("#[{attribute}] goes on a free function, not on a method"),
        ));
    }
    Ok(())
}

fn typed_params(sig: &Signature, kind: Kind) -> syn::Result<Vec<&PatType>> {
    let attribute = kind.attribute();
    check_signature(sig, attribute)?;
    if let ReturnType::Default = sig.output {
        return Err(syn::Error::new_spanned(
            &sig.ident,
            format!(
                "#[{attribute}] must return `seedwork::Result<…>` \
                 (or a `Result` whose error converts into `seedwork::Error`)"
            ),
        ));
    }
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                return Err(syn::Error::new_spanned(
                    receiver,
                    format!("#[{attribute}] goes on a free function, not on a method"),
                ))
            }
            FnArg::Typed(typed) => params.push(typed),
        }
    }
    if params.is_empty() {
        return Err(syn::Error::new(
            sig.paren_token.span.join(),
            format!(
                "#[{attribute}] needs a first parameter: {}",
                kind.first_parameter()
            ),
        ));
    }
    Ok(params)
}

fn classify(params: &[&PatType], kind: Kind) -> syn::Result<Vec<Param>> {
    let attribute = kind.attribute();
    let mut seen_uow = false;
    let mut out = Vec::new();
    for param in params.iter().skip(1) {
        let ty = &*param.ty;
        if is_unit_of_work(ty) {
            if kind == Kind::Query {
                return Err(syn::Error::new_spanned(
                    ty,
                    "a query handler gets no unit of work: queries read committed state; \
                     remove this parameter",
                ));
            }
            if seen_uow {
                return Err(syn::Error::new_spanned(
                    ty,
                    "the unit of work can be taken only once",
                ));
            }
            seen_uow = true;
            out.push(Param::UnitOfWork);
        } else if let Type::Reference(_) = ty {
            let uow = if kind == Kind::Query {
                ""
            } else {
                "`&mut UnitOfWork` or "
            };
            return Err(syn::Error::new_spanned(
                ty,
                format!(
                    "#[{attribute}]: the parameters after the first are {uow}dependencies \
                     taken by value, such as `Dep<T>`"
                ),
            ));
        } else if let Type::ImplTrait(_) | Type::Infer(_) = ty {
            return Err(syn::Error::new_spanned(
                ty,
                format!("#[{attribute}]: a dependency needs a concrete type, such as `Dep<T>`"),
            ));
        } else {
            out.push(Param::Extractor(Box::new(ty.clone())));
        }
    }
    Ok(out)
}

/// The message type of the first parameter, checked for the handler kind.
fn message_type(first: &PatType, kind: Kind) -> syn::Result<Type> {
    let ty = &*first.ty;
    let wrong = || {
        syn::Error::new_spanned(
            ty,
            format!(
                "#[{}] takes as its first parameter {}",
                kind.attribute(),
                kind.first_parameter()
            ),
        )
    };
    match kind {
        Kind::Command | Kind::Query => match ty {
            Type::Reference(_) | Type::ImplTrait(_) | Type::Infer(_) => Err(wrong()),
            _ => Ok(ty.clone()),
        },
        Kind::DomainEvent => match ty {
            Type::Reference(reference) if reference.mutability.is_none() => {
                Ok((*reference.elem).clone())
            }
            _ => Err(wrong()),
        },
        Kind::Message => {
            let Type::Path(path) = ty else {
                return Err(wrong());
            };
            let Some(segment) = path.path.segments.last() else {
                return Err(wrong());
            };
            if segment.ident != "Envelope" {
                return Err(wrong());
            }
            let PathArguments::AngleBracketed(arguments) = &segment.arguments else {
                return Err(wrong());
            };
            match arguments.args.first() {
                Some(GenericArgument::Type(inner)) if arguments.args.len() == 1 => {
                    Ok(inner.clone())
                }
                _ => Err(wrong()),
            }
        }
    }
}

/// Expands `#[command_handler]`, `#[query_handler]`, `#[domain_event_handler]`,
/// `#[message_handler]`.
pub(crate) fn handler(item: ItemFn, kind: Kind) -> syn::Result<TokenStream> {
    let attribute = kind.attribute();
    if item.sig.asyncness.is_none() {
        return Err(syn::Error::new(
            item.sig.fn_token.span,
            format!("#[{attribute}] must be an `async fn`"),
        ));
    }
    let params = typed_params(&item.sig, kind)?;
    let first = params[0];
    let message = message_type(first, kind)?;
    let rest = classify(&params, kind)?;

    let function = &item.sig.ident;
    let function_name = function.unraw().to_string();
    let fields: Vec<_> = rest
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Param::Extractor(ty) => Some((format_ident!("__dep{}", i, span = ty.span()), ty)),
            Param::UnitOfWork => None,
        })
        .collect();
    let field_decls = fields.iter().map(|(name, ty)| quote!(#name: #ty));
    // Spanned at each dependency's type: a type that is not `FromResources` is reported there.
    let field_inits = fields.iter().map(|(name, ty)| {
        quote_spanned! {ty.span()=>
            #name: builder.extract::<#ty>(NAME)?
        }
    });
    let arguments = rest.iter().enumerate().map(|(i, p)| match p {
        Param::UnitOfWork => quote!(__uow),
        Param::Extractor(ty) => {
            let name = format_ident!("__dep{}", i, span = ty.span());
            quote_spanned!(ty.span()=> ::core::clone::Clone::clone(&self.#name))
        }
    });
    // The message type's tokens carry the user's span, so "`X: Command` is not satisfied"
    // points at the first parameter's type.
    let message_span = first.ty.span();
    let (handler_trait, signature, add) = match kind {
        Kind::Command => (
            quote_spanned!(message_span=> ::seedwork::application::CommandHandler<#message>),
            quote_spanned! {message_span=>
                async fn handle(
                    &self,
                    __message: #message,
                    __uow: &mut ::seedwork::uow::UnitOfWork,
                ) -> ::seedwork::Result<<#message as ::seedwork::application::Command>::Output>
            },
            quote_spanned! {message_span=>
                builder.add_command_handler::<#message>(NAME, ::std::sync::Arc::new(handler));
            },
        ),
        Kind::Query => (
            quote_spanned!(message_span=> ::seedwork::application::QueryHandler<#message>),
            quote_spanned! {message_span=>
                async fn handle(
                    &self,
                    __message: #message,
                ) -> ::seedwork::Result<<#message as ::seedwork::application::Query>::Output>
            },
            quote_spanned! {message_span=>
                builder.add_query_handler::<#message>(NAME, ::std::sync::Arc::new(handler));
            },
        ),
        Kind::DomainEvent => (
            quote_spanned!(message_span=> ::seedwork::application::DomainEventHandler<#message>),
            quote_spanned! {message_span=>
                async fn handle(
                    &self,
                    __message: &#message,
                    __uow: &mut ::seedwork::uow::UnitOfWork,
                ) -> ::seedwork::Result<()>
            },
            quote_spanned! {message_span=>
                builder.add_domain_event_handler::<#message>(handler);
            },
        ),
        Kind::Message => (
            quote_spanned!(message_span=> ::seedwork::application::MessageHandler<#message>),
            quote_spanned! {message_span=>
                async fn handle(
                    &self,
                    __message: ::seedwork::messaging::Envelope<#message>,
                    __uow: &mut ::seedwork::uow::UnitOfWork,
                ) -> ::seedwork::Result<()>
            },
            quote_spanned! {message_span=>
                builder.add_message_handler::<#message>(NAME, handler);
            },
        ),
    };
    // A handler that does not take the unit of work leaves `__uow` unused.
    let uow_unused = if kind == Kind::Query {
        quote!()
    } else {
        quote!(let _ = &__uow;)
    };
    // Spanned at the return type: a wrong `Ok` type, or an error type that does not convert
    // into `seedwork::Error`, is reported there.
    let output_span = match &item.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => item.sig.ident.span(),
    };
    let mut function = function.clone();
    function.set_span(output_span);
    let call = quote_spanned! {output_span=>
        ::seedwork::__private::__into_result(
            #function(__message, #(#arguments),*).await
        )
    };
    // The whole impl carries the message type's span, so a first parameter of the wrong kind
    // is reported there rather than at the attribute.
    let handler_impl = quote_spanned! {message_span=>
        #[::seedwork::async_trait]
        impl #handler_trait for __SeedworkHandler {
            #signature {
                #uow_unused
                #call
            }
        }
    };
    Ok(quote! {
        #item

        const _: () = {
            const NAME: &::core::primitive::str =
                ::core::concat!(::core::module_path!(), "::", #function_name);

            #[allow(non_camel_case_types)]
            struct __SeedworkHandler { #(#field_decls,)* }

            #handler_impl

            fn __seedwork_register(
                builder: &mut ::seedwork::application::BusBuilder,
            ) -> ::core::result::Result<(), ::seedwork::application::BuildProblem> {
                let handler = __SeedworkHandler { #(#field_inits,)* };
                #add
                ::core::result::Result::Ok(())
            }

            ::seedwork::__private::inventory::submit! {
                ::seedwork::__private::Registration::new(NAME, __seedwork_register)
            }
        };
    })
}

/// Expands `#[integration_mapper]` on `fn(&DomainEvent) -> IntegrationMessage`.
pub(crate) fn mapper(item: ItemFn) -> syn::Result<TokenStream> {
    let attribute = "integration_mapper";
    let sig = &item.sig;
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span,
            "#[integration_mapper] must be a plain `fn`, not `async`: \
             it runs inside the commit and does no I/O",
        ));
    }
    check_signature(sig, attribute)?;
    let inputs: Vec<_> = sig.inputs.iter().collect();
    let (event_span, event) =
        match inputs.as_slice() {
            [FnArg::Typed(typed)] => match &*typed.ty {
                Type::Reference(reference) if reference.mutability.is_none() => {
                    (typed.ty.span(), (*reference.elem).clone())
                }
                other => return Err(syn::Error::new_spanned(
                    other,
                    "#[integration_mapper] takes the domain event by reference: `event: &MyEvent`",
                )),
            },
            _ => {
                return Err(syn::Error::new(
                    sig.paren_token.span.join(),
                    "#[integration_mapper] takes exactly one parameter, the domain event by \
                 reference: `fn map(event: &MyEvent) -> MyMessage`",
                ))
            }
        };
    let message = match &sig.output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::ImplTrait(_) | Type::Infer(_) => {
                return Err(syn::Error::new_spanned(
                    ty,
                    "#[integration_mapper] must name the integration message type it returns",
                ))
            }
            ty => ty.clone(),
        },
        ReturnType::Default => {
            return Err(syn::Error::new_spanned(
                &sig.ident,
                "#[integration_mapper] returns the integration message: \
                 `fn map(event: &MyEvent) -> MyMessage`",
            ))
        }
    };
    let function = &sig.ident;
    let function_name = function.unraw().to_string();
    // Each type is checked at its own span before the registration uses it, so a parameter
    // that is not a domain event, or a return type that is not an integration message, is
    // reported at the user's tokens.
    let event_check = quote_spanned! {event_span=>
        __seedwork_domain_event::<#event>();
    };
    let message_check = quote_spanned! {sig.output.span()=>
        __seedwork_integration_message::<#message>();
    };
    Ok(quote! {
        #item

        const _: () = {
            fn __seedwork_domain_event<T: ::seedwork::domain::DomainEvent>() {}
            fn __seedwork_integration_message<T: ::seedwork::messaging::IntegrationMessage>() {}

            fn __seedwork_register(
                builder: &mut ::seedwork::application::BusBuilder,
            ) -> ::core::result::Result<(), ::seedwork::application::BuildProblem> {
                #event_check
                #message_check
                builder.add_integration_mapper::<#event, #message, _>(#function);
                ::core::result::Result::Ok(())
            }

            ::seedwork::__private::inventory::submit! {
                ::seedwork::__private::Registration::new(
                    ::core::concat!(::core::module_path!(), "::", #function_name),
                    __seedwork_register,
                )
            }
        };
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn error(item: ItemFn, kind: Kind) -> String {
        match handler(item, kind) {
            Ok(_) => panic!("expected an error"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_well_formed_handler_expands_with_its_registration() {
        let item: ItemFn = parse_quote! {
            async fn r#crear(mut cmd: Crear, _: &mut UnitOfWork, repo: Dep<Repo>) -> Result<u32> {
                Ok(0)
            }
        };
        let expanded = handler(item, Kind::Command).unwrap().to_string();
        assert!(expanded.contains("CommandHandler < Crear >"), "{expanded}");
        assert!(
            expanded.contains("extract :: < Dep < Repo > >"),
            "{expanded}"
        );
        assert!(
            expanded.contains("\"crear\""),
            "the raw prefix is dropped: {expanded}"
        );
        assert!(expanded.contains("inventory :: submit !"), "{expanded}");
    }

    #[test]
    fn the_first_parameter_is_checked_per_kind() {
        let by_value: ItemFn = parse_quote! { async fn f(e: Creada) -> Result<()> { Ok(()) } };
        assert!(error(by_value, Kind::DomainEvent).contains("a reference to the event"));
        let by_ref: ItemFn = parse_quote! { async fn f(c: &Crear) -> Result<()> { Ok(()) } };
        assert!(error(by_ref, Kind::Command).contains("the command, by value"));
        let bare: ItemFn = parse_quote! { async fn f(m: Evento) -> Result<()> { Ok(()) } };
        assert!(error(bare, Kind::Message).contains("Envelope<MyMessage>"));
        let envelope: ItemFn = parse_quote! { async fn f(m: seedwork::messaging::Envelope<Evento>) -> Result<()> { Ok(()) } };
        assert!(handler(envelope, Kind::Message).is_ok());
    }

    #[test]
    fn signature_misuse_is_an_error() {
        let cases: Vec<(ItemFn, &str)> = vec![
            (
                parse_quote! { fn f(c: C) -> Result<()> { Ok(()) } },
                "must be an `async fn`",
            ),
            (
                parse_quote! { async fn f(&self, c: C) -> Result<()> { Ok(()) } },
                "free function",
            ),
            (
                parse_quote! { async fn f() -> Result<()> { Ok(()) } },
                "needs a first parameter",
            ),
            (
                parse_quote! { async fn f<T>(c: T) -> Result<()> { Ok(()) } },
                "cannot be generic",
            ),
            (parse_quote! { async fn f(c: C) { } }, "must return"),
            (
                parse_quote! { async unsafe fn f(c: C) -> Result<()> { Ok(()) } },
                "unsafe",
            ),
            (
                parse_quote! { async fn f(c: C, a: &mut UnitOfWork, b: &mut UnitOfWork) -> Result<()> { Ok(()) } },
                "only once",
            ),
            (
                parse_quote! { async fn f(c: C, r: &Repo) -> Result<()> { Ok(()) } },
                "by value",
            ),
            (
                parse_quote! { async fn f(c: C, r: impl Clone) -> Result<()> { Ok(()) } },
                "concrete type",
            ),
        ];
        for (item, expected) in cases {
            let message = error(item, Kind::Command);
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }

    #[test]
    fn a_query_handler_gets_no_unit_of_work() {
        let item: ItemFn =
            parse_quote! { async fn f(q: Q, uow: &mut UnitOfWork) -> Result<u32> { Ok(0) } };
        assert!(error(item, Kind::Query).contains("no unit of work"));
    }

    #[test]
    fn mapper_checks() {
        let ok: ItemFn = parse_quote! { fn map(e: &Creada) -> Publicada { todo!() } };
        assert!(mapper(ok).is_ok());
        let cases: Vec<(ItemFn, &str)> = vec![
            (
                parse_quote! { async fn map(e: &Creada) -> Publicada { todo!() } },
                "not `async`",
            ),
            (
                parse_quote! { fn map(e: Creada) -> Publicada { todo!() } },
                "by reference",
            ),
            (
                parse_quote! { fn map(e: &Creada, x: u8) -> Publicada { todo!() } },
                "exactly one",
            ),
            (
                parse_quote! { fn map(e: &Creada) { } },
                "returns the integration message",
            ),
            (
                parse_quote! { fn map<E>(e: &E) -> Publicada { todo!() } },
                "cannot be generic",
            ),
        ];
        for (item, expected) in cases {
            let message = match mapper(item) {
                Ok(_) => panic!("expected an error for {expected:?}"),
                Err(error) => error.to_string(),
            };
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }
}
