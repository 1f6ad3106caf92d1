//! The derives: `Command`, `Query`, `DomainEvent`, `IntegrationEvent`, `IntegrationCommand`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

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

fn name_of(input: &DeriveInput, given: Option<LitStr>) -> LitStr {
    given.unwrap_or_else(|| LitStr::new(&input.ident.to_string(), input.ident.span()))
}

/// `#[derive(Command)]` with `#[command(output = T, name = "X")]`.
pub(crate) fn command(input: DeriveInput) -> syn::Result<TokenStream> {
    reject_unions(&input, "Command")?;
    let options = attrs::parse(&input.attrs, "command", &["output", "name"])?;
    let output = options
        .output
        .map(|ty| quote!(#ty))
        .unwrap_or_else(|| quote!(()));
    let name = name_of(&input, options.name);
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
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
    let options = attrs::parse(&input.attrs, "query", &["output", "name"])?;
    let Some(output) = options.output else {
        return Err(syn::Error::new(
            input.ident.span(),
            "a query must declare its result type with #[query(output = T)]",
        ));
    };
    let name = name_of(&input, options.name);
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
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
        Data::Enum(data) => {
            return Err(syn::Error::new(
                data.enum_token.span,
                "#[derive(DomainEvent)] needs a struct with an `EventMetadata` field; \
                 make each variant its own event struct",
            ))
        }
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span,
                "#[derive(DomainEvent)] does not support unions",
            ))
        }
    };
    let struct_attrs: Vec<_> = input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("event"))
        .cloned()
        .collect();
    let options = attrs::parse(&struct_attrs, "event", &["name"])?;
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
    let Some(index) = index else {
        return Err(syn::Error::new(
            input.ident.span(),
            "a domain event needs an `EventMetadata` field: name it `metadata` \
             or mark it #[event(metadata)]",
        ));
    };
    let accessor = match &fields {
        Fields::Named(_) => {
            let ident = fields.iter().nth(index).and_then(|f| f.ident.clone());
            quote!(#ident)
        }
        _ => {
            let index = syn::Index::from(index);
            quote!(#index)
        }
    };
    let field_span = fields
        .iter()
        .nth(index)
        .map(|f| f.ty.span())
        .unwrap_or_else(|| input.ident.span());
    let metadata = quote_spanned! {field_span=> &self.#accessor };
    let name = name_of(&input, options.name);
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
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

/// `#[derive(IntegrationEvent)]` / `#[derive(IntegrationCommand)]` with
/// `#[integration(topic = "...", version = "v1", name = "X", key = field)]`.
pub(crate) fn integration(input: DeriveInput, command: bool) -> syn::Result<TokenStream> {
    let derive = if command {
        "IntegrationCommand"
    } else {
        "IntegrationEvent"
    };
    reject_unions(&input, derive)?;
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
            quote! {
                fn key(&self) -> ::core::option::Option<::std::string::String> {
                    ::core::option::Option::Some(::std::string::ToString::to_string(&self.#field))
                }
            }
        }
        None => quote!(),
    };
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
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
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
