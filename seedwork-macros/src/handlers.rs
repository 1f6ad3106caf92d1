//! The registration attributes on handler functions.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, PathArguments, ReturnType, Type};

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

    fn first_parameter(self) -> &'static str {
        match self {
            Kind::Command => "the command, by value",
            Kind::Query => "the query, by value",
            Kind::DomainEvent => "the event, by reference (`event: &MyEvent`)",
            Kind::Message => "the message, as `Envelope<MyMessage>`",
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

fn typed_params(item: &ItemFn, kind: Kind) -> syn::Result<Vec<&syn::PatType>> {
    let attribute = kind.attribute();
    let sig = &item.sig;
    if let Some(constness) = &sig.constness {
        return Err(syn::Error::new(
            constness.span,
            format!("#[{attribute}] cannot be a const fn"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!("#[{attribute}] cannot be generic: register one handler per concrete type"),
        ));
    }
    if let ReturnType::Default = sig.output {
        return Err(syn::Error::new(
            sig.ident.span(),
            format!("#[{attribute}] must return `seedwork::Result<…>` (or a Result whose error converts into `seedwork::Error`)"),
        ));
    }
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                return Err(syn::Error::new(
                    receiver.span(),
                    format!("#[{attribute}] goes on a free function, not a method"),
                ))
            }
            FnArg::Typed(typed) => params.push(typed),
        }
    }
    if params.is_empty() {
        return Err(syn::Error::new(
            sig.ident.span(),
            format!(
                "#[{attribute}] takes {} as its first parameter",
                kind.first_parameter()
            ),
        ));
    }
    Ok(params)
}

fn classify(params: &[&syn::PatType], kind: Kind) -> syn::Result<Vec<Param>> {
    let attribute = kind.attribute();
    let mut seen_uow = false;
    let mut out = Vec::new();
    for param in params.iter().skip(1) {
        let ty = &*param.ty;
        if is_unit_of_work(ty) {
            if kind == Kind::Query {
                return Err(syn::Error::new(
                    ty.span(),
                    "a query handler reads committed state and gets no unit of work",
                ));
            }
            if seen_uow {
                return Err(syn::Error::new(
                    ty.span(),
                    "the unit of work can be taken only once",
                ));
            }
            seen_uow = true;
            out.push(Param::UnitOfWork);
        } else if let Type::Reference(_) = ty {
            return Err(syn::Error::new(
                ty.span(),
                format!(
                    "#[{attribute}] parameters after the first are `&mut UnitOfWork` or \
                     dependencies taken by value, such as `Dep<T>`"
                ),
            ));
        } else {
            out.push(Param::Extractor(Box::new(ty.clone())));
        }
    }
    Ok(out)
}

/// The message type of the first parameter, checked for the handler kind.
fn message_type(first: &syn::PatType, kind: Kind) -> syn::Result<Type> {
    let ty = &*first.ty;
    let wrong = || {
        syn::Error::new(
            ty.span(),
            format!(
                "#[{}] takes {} first",
                kind.attribute(),
                kind.first_parameter()
            ),
        )
    };
    match kind {
        Kind::Command | Kind::Query => match ty {
            Type::Reference(_) => Err(wrong()),
            _ if is_unit_of_work(ty) => Err(wrong()),
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
    let params = typed_params(&item, kind)?;
    let message = message_type(params[0], kind)?;
    let rest = classify(&params, kind)?;

    let function = &item.sig.ident;
    let function_name = function.to_string();
    let fields: Vec<_> = rest
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Param::Extractor(ty) => Some((format_ident!("__dep{}", i), ty)),
            Param::UnitOfWork => None,
        })
        .collect();
    let field_decls = fields.iter().map(|(name, ty)| quote!(#name: #ty));
    let field_inits = fields.iter().map(|(name, ty)| {
        quote_spanned! {ty.span()=>
            #name: builder.extract::<#ty>(NAME)?
        }
    });
    let arguments = rest.iter().enumerate().map(|(i, p)| match p {
        Param::UnitOfWork => quote!(__uow),
        Param::Extractor(_) => {
            let name = format_ident!("__dep{}", i);
            quote!(::core::clone::Clone::clone(&self.#name))
        }
    });
    let call_span = item.sig.output.span();
    let (handler_trait, signature, first_argument, add) = match kind {
        Kind::Command => (
            quote!(::seedwork::application::CommandHandler<#message>),
            quote! {
                async fn handle(
                    &self,
                    __message: #message,
                    __uow: &mut ::seedwork::uow::UnitOfWork,
                ) -> ::seedwork::Result<<#message as ::seedwork::application::Command>::Output>
            },
            quote!(__message),
            quote!(builder.add_command_handler::<#message>(NAME, ::std::sync::Arc::new(handler));),
        ),
        Kind::Query => (
            quote!(::seedwork::application::QueryHandler<#message>),
            quote! {
                async fn handle(
                    &self,
                    __message: #message,
                ) -> ::seedwork::Result<<#message as ::seedwork::application::Query>::Output>
            },
            quote!(__message),
            quote!(builder.add_query_handler::<#message>(NAME, ::std::sync::Arc::new(handler));),
        ),
        Kind::DomainEvent => (
            quote!(::seedwork::application::DomainEventHandler<#message>),
            quote! {
                async fn handle(
                    &self,
                    __message: &#message,
                    __uow: &mut ::seedwork::uow::UnitOfWork,
                ) -> ::seedwork::Result<()>
            },
            quote!(__message),
            quote!(builder.add_domain_event_handler::<#message>(handler);),
        ),
        Kind::Message => (
            quote!(::seedwork::application::MessageHandler<#message>),
            quote! {
                async fn handle(
                    &self,
                    __message: ::seedwork::messaging::Envelope<#message>,
                    __uow: &mut ::seedwork::uow::UnitOfWork,
                ) -> ::seedwork::Result<()>
            },
            quote!(__message),
            quote!(builder.add_message_handler::<#message>(NAME, handler);),
        ),
    };
    // Queries have no unit of work in their signature: silence the unused binding.
    let uow_unused = if kind == Kind::Query {
        quote!()
    } else {
        quote!(let _ = &__uow;)
    };
    let call = quote_spanned! {call_span=>
        ::seedwork::application::__into_result(
            #function(#first_argument, #(#arguments),*).await
        )
    };
    Ok(quote! {
        #item

        const _: () = {
            #[allow(non_camel_case_types)]
            struct __SeedworkHandler { #(#field_decls,)* }

            #[::seedwork::async_trait]
            impl #handler_trait for __SeedworkHandler {
                #[allow(unused_variables)]
                #signature {
                    #uow_unused
                    #call
                }
            }

            fn __seedwork_register(
                builder: &mut ::seedwork::application::BusBuilder,
            ) -> ::core::result::Result<(), ::seedwork::BuildError> {
                const NAME: &str = ::core::concat!(::core::module_path!(), "::", #function_name);
                let handler = __SeedworkHandler { #(#field_inits,)* };
                #add
                ::core::result::Result::Ok(())
            }

            ::seedwork::inventory::submit! {
                ::seedwork::application::Registration::new(
                    ::core::concat!(::core::module_path!(), "::", #function_name),
                    __seedwork_register,
                )
            }
        };
    })
}

/// Expands `#[integration_mapper]` on `fn(&DomainEvent) -> IntegrationMessage`.
pub(crate) fn mapper(item: ItemFn) -> syn::Result<TokenStream> {
    let sig = &item.sig;
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span,
            "#[integration_mapper] must be a plain `fn`: it runs inside the commit and does no I/O",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "#[integration_mapper] cannot be generic",
        ));
    }
    let inputs: Vec<_> = sig.inputs.iter().collect();
    let event =
        match inputs.as_slice() {
            [FnArg::Typed(typed)] => match &*typed.ty {
                Type::Reference(reference) if reference.mutability.is_none() => {
                    (*reference.elem).clone()
                }
                other => return Err(syn::Error::new(
                    other.span(),
                    "#[integration_mapper] takes the domain event by reference: `event: &MyEvent`",
                )),
            },
            [FnArg::Receiver(receiver)] => {
                return Err(syn::Error::new(
                    receiver.span(),
                    "#[integration_mapper] goes on a free function",
                ))
            }
            _ => return Err(syn::Error::new(
                sig.paren_token.span.join(),
                "#[integration_mapper] takes exactly one parameter, the domain event by reference",
            )),
        };
    let message = match &sig.output {
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => {
            return Err(syn::Error::new(
                sig.ident.span(),
                "#[integration_mapper] returns the integration message",
            ))
        }
    };
    let function = &sig.ident;
    let function_name = function.to_string();
    Ok(quote! {
        #item

        const _: () = {
            fn __seedwork_register(
                builder: &mut ::seedwork::application::BusBuilder,
            ) -> ::core::result::Result<(), ::seedwork::BuildError> {
                builder.add_integration_mapper::<#event, #message, _>(#function);
                ::core::result::Result::Ok(())
            }

            ::seedwork::inventory::submit! {
                ::seedwork::application::Registration::new(
                    ::core::concat!(::core::module_path!(), "::", #function_name),
                    __seedwork_register,
                )
            }
        };
    })
}
