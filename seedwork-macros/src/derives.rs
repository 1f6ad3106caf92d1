//! The derives: `Command`, `Query`, `DomainEvent`, `IntegrationEvent`, `IntegrationCommand`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_quote, Data, DeriveInput, Fields, Generics, LitStr};

use crate::attrs;

fn reject_unions(input: &DeriveInput, derive: &str) -> syn::Result<()> {
    if let Data::Union(union) = &input.data {
        return Err(syn::Error::new(
            union.union_token.span,
            format!("#[derive({derive})] does not support unions; use a struct or an enum"),
        ));
    }
    Ok(())
}

/// The item's generics, plus `Self: <bounds>` (and `extra`) when it has type or lifetime
/// parameters, so that `impl<T> Trait for Item<T>` meets the trait's supertraits without the
/// user having to repeat them on the struct.
fn bounded(input: &DeriveInput, bounds: TokenStream, extra: Option<TokenStream>) -> Generics {
    let mut generics = input.generics.clone();
    if !generics.params.is_empty() {
        let clause = generics.make_where_clause();
        clause.predicates.push(parse_quote!(Self: #bounds));
        if let Some(extra) = extra {
            clause.predicates.push(parse_quote!(#extra));
        }
    }
    generics
}

fn name_of(input: &DeriveInput, given: Option<LitStr>) -> LitStr {
    given.unwrap_or_else(|| LitStr::new(&input.ident.to_string(), input.ident.span()))
}

/// `#[derive(Command)]` with `#[command(output = T, name = "X")]`.
pub(crate) fn command(input: DeriveInput) -> syn::Result<TokenStream> {
    reject_unions(&input, "Command")?;
    attrs::reject_inner(&input, "command")?;
    let options = attrs::parse(&input.attrs, "command", &["output", "name"])?;
    let output = options
        .output
        .map(|ty| quote!(#ty))
        .unwrap_or_else(|| quote!(()));
    let name = name_of(&input, options.name);
    let ident = &input.ident;
    let generics = bounded(
        &input,
        quote!(::core::marker::Send + 'static),
        Some(quote!(#output: ::core::marker::Send + 'static)),
    );
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::seedwork::application::Command for #ident #ty_generics #where_clause {
            type Output = #output;
            const NAME: &'static str = #name;
        }
    })
}

/// `#[derive(Query)]` with `#[query(output = T, name = "X")]` (output required).
pub(crate) fn query(input: DeriveInput) -> syn::Result<TokenStream> {
    reject_unions(&input, "Query")?;
    attrs::reject_inner(&input, "query")?;
    let options = attrs::parse(&input.attrs, "query", &["output", "name"])?;
    let Some(output) = options.output else {
        return Err(syn::Error::new(
            input.ident.span(),
            "a query must declare its result type with `#[query(output = T)]`",
        ));
    };
    let name = name_of(&input, options.name);
    let ident = &input.ident;
    let generics = bounded(
        &input,
        quote!(::core::marker::Send + 'static),
        Some(quote!(#output: ::core::marker::Send + 'static)),
    );
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::seedwork::application::Query for #ident #ty_generics #where_clause {
            type Output = #output;
            const NAME: &'static str = #name;
        }
    })
}

/// `#[derive(DomainEvent)]` on a struct with an `EventMetadata` field (`metadata`, or marked
/// `#[event(metadata)]`), and `#[event(name = "X")]` on the struct.
pub(crate) fn domain_event(input: DeriveInput) -> syn::Result<TokenStream> {
    let fields = match &input.data {
        Data::Struct(data) => &data.fields,
        Data::Enum(data) => return domain_event_enum(&input, data),
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span,
                "#[derive(DomainEvent)] does not support unions",
            ))
        }
    };
    let options = attrs::parse(&input.attrs, "event", &["name"])?;
    let mut marked = None;
    for (index, field) in fields.iter().enumerate() {
        for attribute in field.attrs.iter().filter(|a| a.path().is_ident("event")) {
            attribute.parse_nested_meta(|meta| {
                if meta.path.is_ident("metadata") {
                    if marked.is_some() {
                        return Err(meta.error("only one field can be #[event(metadata)]"));
                    }
                    marked = Some(index);
                    Ok(())
                } else {
                    Err(meta.error("on a field, the only key is #[event(metadata)]"))
                }
            })?;
        }
    }
    let index = marked.or_else(|| {
        fields
            .iter()
            .position(|f| f.ident.as_ref().is_some_and(|i| i == "metadata"))
    });
    let field = index.and_then(|index| fields.iter().nth(index).map(|field| (index, field)));
    let Some((index, field)) = field else {
        let message = match fields {
            Fields::Named(_) => {
                "a domain event needs an `EventMetadata` field: name it `metadata` \
                 or mark it #[event(metadata)]"
            }
            Fields::Unnamed(_) => {
                "a domain event needs an `EventMetadata` field: in a tuple struct, \
                 mark it #[event(metadata)]"
            }
            Fields::Unit => {
                "a domain event needs an `EventMetadata` field; a unit struct has none: \
                 add `metadata: EventMetadata`"
            }
        };
        return Err(syn::Error::new(input.ident.span(), message));
    };
    let accessor = match &field.ident {
        Some(ident) => quote!(#ident),
        None => {
            let index = syn::Index::from(index);
            quote!(#index)
        }
    };
    // Spanned at the field's type: a field of the wrong type is reported there.
    let metadata = quote_spanned! {field.ty.span()=> &self.#accessor };
    let name = name_of(&input, options.name);
    let ident = &input.ident;
    let generics = bounded(
        &input,
        quote!(::core::fmt::Debug + ::core::marker::Send + ::core::marker::Sync + 'static),
        None,
    );
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::seedwork::domain::DomainEvent for #ident #ty_generics #where_clause {
            fn event_name(&self) -> &'static str {
                #name
            }
            fn metadata(&self) -> &::seedwork::domain::EventMetadata {
                #metadata
            }
            fn as_any(&self) -> &dyn ::core::any::Any {
                self
            }
        }
    })
}

/// `#[derive(DomainEvent)]` on an enum whose every variant wraps one domain event
/// (`Creada(ReservaCreada)`): name and metadata are the variant's, and `routed` hands handlers
/// and mappers the variant's event, so they subscribe to `ReservaCreada` as when it is recorded
/// alone. This is the shape of an event-sourced aggregate's `Event`.
fn domain_event_enum(input: &DeriveInput, data: &syn::DataEnum) -> syn::Result<TokenStream> {
    const SHAPE: &str = "#[derive(DomainEvent)] on an enum needs each variant to wrap one \
                         domain event, `Creada(ReservaCreada)`; an event with its own fields is \
                         a struct with an `EventMetadata` field";
    if data.variants.is_empty() {
        return Err(syn::Error::new(input.ident.span(), SHAPE));
    }
    if let Some(attribute) = input.attrs.iter().find(|a| a.path().is_ident("event")) {
        return Err(syn::Error::new_spanned(
            attribute,
            "on an enum, the event name is each variant's own: #[event(...)] does not apply",
        ));
    }
    let mut variants = Vec::new();
    for variant in &data.variants {
        match &variant.fields {
            Fields::Unnamed(fields) if fields.unnamed.len() == 1 => variants.push(&variant.ident),
            _ => return Err(syn::Error::new(variant.ident.span(), SHAPE)),
        }
    }
    let ident = &input.ident;
    let generics = bounded(
        input,
        quote!(::core::fmt::Debug + ::core::marker::Send + ::core::marker::Sync + 'static),
        None,
    );
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let each = |call: TokenStream| {
        quote! { match self { #( #ident::#variants(event) => ::seedwork::domain::DomainEvent::#call, )* } }
    };
    let name = each(quote!(event_name(event)));
    let metadata = each(quote!(metadata(event)));
    let routed = each(quote!(as_any(event)));
    Ok(quote! {
        impl #impl_generics ::seedwork::domain::DomainEvent for #ident #ty_generics #where_clause {
            fn event_name(&self) -> &'static str {
                #name
            }
            fn metadata(&self) -> &::seedwork::domain::EventMetadata {
                #metadata
            }
            fn as_any(&self) -> &dyn ::core::any::Any {
                self
            }
            fn routed(&self) -> &dyn ::core::any::Any {
                #routed
            }
        }
    })
}

/// `#[derive(IntegrationEvent)]` / `#[derive(IntegrationCommand)]` with
/// `#[integration(topic = "...", version = "v1", name = "X", key = field)]`.
pub(crate) fn integration(input: DeriveInput, command: bool) -> syn::Result<TokenStream> {
    let derive = if command {
        "IntegrationCommand"
    } else {
        "IntegrationEvent"
    };
    reject_unions(&input, derive)?;
    if let Data::Enum(data) = &input.data {
        // `#[integration(name = "...")]` may name a variant's message type.
        for variant in &data.variants {
            for field in &variant.fields {
                if let Some(found) = field
                    .attrs
                    .iter()
                    .find(|a| a.path().is_ident("integration"))
                {
                    return Err(syn::Error::new_spanned(
                        found,
                        "#[integration(...)] goes on the type or on a variant, not on a field",
                    ));
                }
            }
        }
    } else {
        attrs::reject_inner(&input, "integration")?;
    }
    let options = attrs::parse(
        &input.attrs,
        "integration",
        &["topic", "version", "name", "key"],
    )?;
    let Some(topic) = options.topic else {
        return Err(syn::Error::new(
            input.ident.span(),
            format!("#[derive({derive})] needs its topic: #[integration(topic = \"...\")]"),
        ));
    };
    let version = options
        .version
        .unwrap_or_else(|| LitStr::new("v1", input.ident.span()));
    let name = name_of(&input, options.name);
    let (kind, marker) = if command {
        (
            quote!(::seedwork::messaging::MessageKind::Command),
            quote!(::seedwork::messaging::IntegrationCommand),
        )
    } else {
        (
            quote!(::seedwork::messaging::MessageKind::Event),
            quote!(::seedwork::messaging::IntegrationEvent),
        )
    };
    if let Data::Enum(data) = &input.data {
        if !data.variants.is_empty() && input.generics.params.is_empty() {
            return crate::union::integration_enum(
                &input,
                data,
                crate::union::Contract {
                    topic: &topic,
                    version: &version,
                    name: &name,
                    key: options.key.as_ref(),
                    kind: &kind,
                    marker: &marker,
                },
            );
        }
    }
    let key = match options.key {
        Some(field) => {
            if let Data::Struct(data) = &input.data {
                let exists = data.fields.iter().any(|f| f.ident.as_ref() == Some(&field));
                if !exists {
                    return Err(syn::Error::new(
                        field.span(),
                        format!("`key` names `{field}`, which is not a field of this struct"),
                    ));
                }
            } else {
                return Err(syn::Error::new(
                    field.span(),
                    "`key` is only supported on structs",
                ));
            }
            // Spanned at the `key = field` tokens: a field without `Display` is reported there.
            let value = quote_spanned! {field.span()=>
                ::std::string::ToString::to_string(&self.#field)
            };
            quote! {
                fn key(&self) -> ::core::option::Option<::std::string::String> {
                    ::core::option::Option::Some(#value)
                }
            }
        }
        None => quote!(),
    };
    let ident = &input.ident;
    let schema = crate::avro::for_integration(&input)?;
    // A generic type has no single schema to register; it still implements AvroSchema.
    let registration = match &schema {
        Some(_) if input.generics.params.is_empty() => quote! {
            ::seedwork::__private::inventory::submit! {
                ::seedwork::messaging::schema::MessageSchema::new(
                    #topic,
                    #name,
                    #version,
                    #kind,
                    <#ident as ::seedwork::messaging::schema::AvroSchema>::avro_schema,
                )
            }
        },
        _ => quote!(),
    };
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        #schema
        #registration
        impl #impl_generics ::seedwork::messaging::IntegrationMessage for #ident #ty_generics #where_clause {
            const TOPIC: &'static str = #topic;
            const TYPE: &'static str = #name;
            const VERSION: &'static str = #version;
            const KIND: ::seedwork::messaging::MessageKind = #kind;
            #key
        }
        impl #impl_generics #marker for #ident #ty_generics #where_clause {}
    })
}

/// Finds the field marked `#[aggregate(<marker>)]`, or else the one named `fallback`.
fn aggregate_field<'a>(
    fields: &'a syn::FieldsNamed,
    marker: &str,
    fallback: &str,
) -> syn::Result<Option<&'a syn::Field>> {
    let mut marked = None;
    for field in &fields.named {
        for attribute in field
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("aggregate"))
        {
            attribute.parse_nested_meta(|meta| {
                if meta.path.is_ident("id") || meta.path.is_ident("state") {
                    if meta.path.is_ident(marker) {
                        if marked.is_some() {
                            return Err(
                                meta.error(format!("only one field can be #[aggregate({marker})]"))
                            );
                        }
                        marked = Some(field);
                    }
                    Ok(())
                } else {
                    Err(meta
                        .error("on a field, the keys are #[aggregate(id)] and #[aggregate(state)]"))
                }
            })?;
        }
    }
    Ok(marked.or_else(|| {
        fields
            .named
            .iter()
            .find(|f| f.ident.as_ref().is_some_and(|i| i == fallback))
    }))
}

/// `#[derive(AggregateRoot)]`: `Entity` and `AggregateRoot` from an id field (`id`, or marked
/// `#[aggregate(id)]`) and an `AggregateState` field (`state`, or marked
/// `#[aggregate(state)]`); `#[aggregate(name = "X")]` on the struct sets `TYPE`.
pub(crate) fn aggregate_root(input: DeriveInput) -> syn::Result<TokenStream> {
    let fields = match &input.data {
        Data::Struct(syn::DataStruct {
            fields: Fields::Named(named),
            ..
        }) => named,
        _ => {
            return Err(syn::Error::new(
                input.ident.span(),
                "#[derive(AggregateRoot)] needs a struct with named fields",
            ))
        }
    };
    let struct_attrs: Vec<_> = input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("aggregate"))
        .cloned()
        .collect();
    let options = attrs::parse(&struct_attrs, "aggregate", &["name"])?;
    let Some(id) = aggregate_field(fields, "id", "id")? else {
        return Err(syn::Error::new(
            input.ident.span(),
            "an aggregate needs an id field: name it `id` or mark it #[aggregate(id)]",
        ));
    };
    let Some(state) = aggregate_field(fields, "state", "state")? else {
        return Err(syn::Error::new(
            input.ident.span(),
            "an aggregate needs a `seedwork::domain::AggregateState` field: name it `state` \
             or mark it #[aggregate(state)]",
        ));
    };
    let (id_name, id_type) = (&id.ident, &id.ty);
    let state_name = &state.ident;
    let state_type = &state.ty;
    let state_check = quote_spanned! {state_type.span()=>
        fn state(&self) -> &::seedwork::domain::AggregateState {
            &self.#state_name
        }
        fn state_mut(&mut self) -> &mut ::seedwork::domain::AggregateState {
            &mut self.#state_name
        }
    };
    let name = name_of(&input, options.name);
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::seedwork::domain::Entity for #ident #ty_generics #where_clause {
            type Id = #id_type;
            fn id(&self) -> &Self::Id {
                &self.#id_name
            }
        }
        impl #impl_generics ::seedwork::domain::AggregateRoot for #ident #ty_generics #where_clause {
            const TYPE: &'static str = #name;
            #state_check
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(result: syn::Result<TokenStream>) -> String {
        match result {
            Ok(tokens) => panic!("expected an error, got {tokens}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn command_defaults_and_generics() {
        let plain = command(parse_quote! { struct Crear { id: String } })
            .unwrap()
            .to_string();
        assert!(plain.contains("type Output = ()"), "{plain}");
        assert!(plain.contains("\"Crear\""), "{plain}");
        let generic = command(parse_quote! {
            #[command(output = T, name = "Eco")]
            struct Eco<T> { value: T }
        })
        .unwrap()
        .to_string();
        assert!(
            generic.contains("Self : :: core :: marker :: Send"),
            "{generic}"
        );
        assert!(generic.contains("\"Eco\""), "{generic}");
    }

    #[test]
    fn query_needs_an_output() {
        let message = error(query(parse_quote! { struct Q; }));
        assert!(message.contains("#[query(output = T)]"), "{message}");
    }

    #[test]
    fn domain_event_finds_its_metadata() {
        let named = domain_event(parse_quote! {
            struct E { #[event(metadata)] meta: EventMetadata, metadata: u8 }
        })
        .unwrap()
        .to_string();
        assert!(named.contains("& self . meta"), "{named}");
        let tuple = domain_event(parse_quote! {
            #[event(name = "Otro")]
            struct E(String, #[event(metadata)] EventMetadata);
        })
        .unwrap()
        .to_string();
        assert!(tuple.contains("& self . 1"), "{tuple}");
        assert!(tuple.contains("\"Otro\""), "{tuple}");
        let message = error(domain_event(parse_quote! { enum E { A } }));
        assert!(message.contains("each variant to wrap one"), "{message}");
        let message = error(domain_event(parse_quote! { enum E {} }));
        assert!(message.contains("each variant to wrap one"), "{message}");
        let message = error(domain_event(parse_quote! {
            #[event(name = "X")]
            enum E { A(Creada) }
        }));
        assert!(message.contains("each variant's own"), "{message}");
        let wrapped = domain_event(parse_quote! { enum E { A(Creada), B(Cancelada) } })
            .unwrap()
            .to_string();
        assert!(
            wrapped.contains("fn routed") && wrapped.contains("E :: B (event)"),
            "{wrapped}"
        );
        let message = error(domain_event(parse_quote! { struct E; }));
        assert!(message.contains("unit struct"), "{message}");
        let message = error(domain_event(parse_quote! {
            struct E { #[event(metadata)] a: EventMetadata, #[event(metadata)] b: EventMetadata }
        }));
        assert!(message.contains("only one field"), "{message}");
    }

    #[test]
    fn integration_defaults_and_errors() {
        let expanded = integration(
            parse_quote! {
                #[integration(topic = "eventos", key = id)]
                struct E { id: String }
            },
            false,
        )
        .unwrap()
        .to_string();
        assert!(
            expanded.contains("VERSION : & 'static str = \"v1\""),
            "{expanded}"
        );
        assert!(
            expanded.contains("TYPE : & 'static str = \"E\""),
            "{expanded}"
        );
        assert!(expanded.contains("MessageKind :: Event"), "{expanded}");
        assert!(expanded.contains("fn key"), "{expanded}");
        let command = integration(
            parse_quote! { #[integration(topic = "c")] struct C { id: String } },
            true,
        )
        .unwrap()
        .to_string();
        assert!(command.contains("MessageKind :: Command"), "{command}");
        assert!(!command.contains("fn key"), "{command}");
        let message = error(integration(parse_quote! { struct E { id: String } }, false));
        assert!(message.contains("needs its topic"), "{message}");
        let message = error(integration(
            parse_quote! { #[integration(topic = "t", key = nope)] struct E { id: String } },
            false,
        ));
        assert!(message.contains("not a field"), "{message}");
        let message = error(integration(parse_quote! { union U { a: u8 } }, true));
        assert!(message.contains("unions"), "{message}");
    }

    #[test]
    fn integration_enums_and_their_errors() {
        let expanded = integration(
            parse_quote! {
                #[integration(topic = "ciclo", key = id)]
                enum Ciclo { Creada(Creada), #[integration(name = "Otra")] Aprobada(Aprobada) }
            },
            false,
        )
        .unwrap()
        .to_string();
        assert!(expanded.contains("\"Creada\""), "{expanded}");
        assert!(expanded.contains("\"Otra\""), "{expanded}");
        assert!(expanded.contains("const TYPES"), "{expanded}");
        for (input, expected) in [
            (
                parse_quote! { #[integration(topic = "t")] enum E { A { x: u8 } } },
                "wraps one payload type",
            ),
            (
                parse_quote! { #[integration(topic = "t")] enum E { A(P), B(P) } },
                "both stand for message type `P`",
            ),
            (
                parse_quote! { #[integration(topic = "t")] #[avro(name = "X")] enum E { A(P) } },
                "on each payload type",
            ),
            (
                parse_quote! { #[integration(topic = "t")] enum E { A(#[integration(name = "x")] P) } },
                "not on a field",
            ),
        ] {
            let message = error(integration(input, false));
            assert!(
                message.contains(expected),
                "expected `{expected}` in: {message}"
            );
        }
    }
}
