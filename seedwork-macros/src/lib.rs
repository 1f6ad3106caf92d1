//! Derive and registration macros for [`seedwork`](https://docs.rs/seedwork). Use them through
//! `seedwork` (feature `macros`, on by default), which re-exports every one; the generated code
//! refers to `::seedwork` only.
//!
//! ## Derives
//! ```text
//! #[derive(Command)]                       // impl seedwork::application::Command
//! #[command(output = String)]              // Output type, `()` when omitted; name = "..." optional
//! struct CrearReserva { id: String }
//!
//! #[derive(Query)]                         // impl seedwork::application::Query
//! #[query(output = Option<ReservaDto>)]    // required
//! struct ObtenerReserva { id: String }
//!
//! #[derive(AggregateRoot)]                 // impl Entity + AggregateRoot
//! #[aggregate(name = "Reserva")]           // TYPE; the struct's name when omitted
//! struct Reserva {
//!     id: String,                          // or any field marked #[aggregate(id)]
//!     estado: EstadoReserva,
//!     state: AggregateState,               // or any field marked #[aggregate(state)]
//! }
//!
//! #[derive(DomainEvent, Debug)]            // impl seedwork::domain::DomainEvent
//! struct ReservaCreada {                   // #[event(name = "...")] optional
//!     id_reserva: String,
//!     metadata: EventMetadata,             // or any field marked #[event(metadata)]
//! }
//!
//! #[derive(IntegrationEvent, Serialize, Deserialize)]   // or IntegrationCommand
//! #[integration(topic = "eventos-reserva", version = "v1", name = "EventoReservaCreada", key = id_reserva)]
//! struct EventoReservaCreada { id_reserva: String }     // topic required; version "v1" by default
//! ```
//!
//! ## Registration
//! Each attribute keeps the function as written and submits a registration to `inventory`;
//! `Bus::builder().registered()` picks up every handler linked into the binary. The first
//! parameter is the message; `&mut UnitOfWork` (where allowed) receives the unit of work; every
//! other parameter is a dependency resolved from the bus's resources when the bus is built
//! (`Dep<T>`, `Option<Dep<T>>`, anything implementing `FromResources`). The error type of the
//! returned `Result` must convert into `seedwork::Error`.
//! ```text
//! #[command_handler]
//! async fn crear_reserva(cmd: CrearReserva, uow: &mut UnitOfWork, repo: Dep<Reservas>) -> Result<String> { … }
//!
//! #[query_handler]                         // no unit of work: queries read committed state
//! async fn obtener_reserva(q: ObtenerReserva, repo: Dep<Reservas>) -> Result<Option<ReservaDto>> { … }
//!
//! #[domain_event_handler]                  // any number per event; runs inside the commit
//! async fn registrar(e: &ReservaCreada, uow: &mut UnitOfWork, clientes: Dep<Clientes>) -> Result<()> { … }
//!
//! #[message_handler]                       // one per message type; runs with the inbox
//! async fn notificar(m: Envelope<EventoReservaCreada>, uow: &mut UnitOfWork) -> Result<()> { … }
//!
//! #[integration_mapper]                    // plain fn: domain event → integration message (outbox)
//! fn publicar(e: &ReservaCreada) -> EventoReservaCreada { … }
//! ```
//!
//! Parameters may use any pattern (`_`, `mut cmd`, `Crear { id }`); the macro binds the values
//! under its own names and calls the function as written. The function stays callable
//! directly (in unit tests, for example).
//!
//! ## Generics
//! The derives accept generic types: `#[derive(Command)]` on `struct Eco<T>` implements the trait
//! for every `Eco<T>` that is `Send + 'static` (the bounds the trait needs are added to the
//! impl). Handlers and mappers cannot be generic: register one function per concrete type.
//!
//! ## Errors
//! Misuse — a handler that is not `async` (or a mapper that is), a method, a function without
//! parameters, a generic function, a missing return type, `&mut UnitOfWork` in a query handler,
//! an event handler taking its event by value, a message handler without `Envelope<…>`, a
//! dependency taken by reference, a derive on a union, a domain event without metadata, a
//! missing topic or query output, an unknown attribute key or a value of the wrong kind — is a
//! compile error pointing at the offending tokens. Type errors in the generated code (a first
//! parameter that is not a command, a dependency that is not `FromResources`, a wrong `Ok`
//! type, an error type that does not convert into `seedwork::Error`) are reported at the
//! user's types as well.

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput, ItemFn};

mod attrs;
mod avro;
mod derives;
mod handlers;
mod union;
mod upcaster;

use handlers::Kind;

fn expand(result: syn::Result<proc_macro2::TokenStream>) -> TokenStream {
    result.unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Expands a registration attribute. On error the function is still emitted as written, so the
/// only error is the macro's own (no follow-up "cannot find function" or unused-import noise).
fn attribute(
    args: TokenStream,
    item: TokenStream,
    name: &str,
    expand: impl FnOnce(ItemFn) -> syn::Result<proc_macro2::TokenStream>,
) -> TokenStream {
    let original = proc_macro2::TokenStream::from(item.clone());
    let result = attrs::no_arguments(args.into(), name)
        .and_then(|()| syn::parse::<ItemFn>(item))
        .and_then(expand);
    match result {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let mut tokens = error.into_compile_error();
            tokens.extend(original);
            tokens.into()
        }
    }
}

/// Implements `seedwork::application::Command` for a struct or an enum.
///
/// `#[command(output = T)]` sets `Output` (`()` when omitted); `#[command(name = "X")]` sets
/// `NAME` (the type's name when omitted).
#[proc_macro_derive(Command, attributes(command))]
pub fn derive_command(input: TokenStream) -> TokenStream {
    expand(derives::command(parse_macro_input!(input as DeriveInput)))
}

/// Implements `seedwork::application::Query` for a struct or an enum.
///
/// `#[query(output = T)]` is required; `#[query(name = "X")]` sets `NAME` (the type's name when
/// omitted).
#[proc_macro_derive(Query, attributes(query))]
pub fn derive_query(input: TokenStream) -> TokenStream {
    expand(derives::query(parse_macro_input!(input as DeriveInput)))
}

/// Implements `seedwork::domain::Entity` and `seedwork::domain::AggregateRoot`; see the crate
/// docs.
#[proc_macro_derive(AggregateRoot, attributes(aggregate))]
pub fn derive_aggregate_root(input: TokenStream) -> TokenStream {
    expand(derives::aggregate_root(parse_macro_input!(
        input as DeriveInput
    )))
}

/// Implements `seedwork::domain::DomainEvent` for a struct, or for an enum of events.
///
/// On a struct, `metadata()` returns the field marked `#[event(metadata)]`, or else the field
/// named `metadata`; `#[event(name = "X")]` sets `event_name()` (the type's name when omitted).
///
/// On an enum whose every variant wraps one domain event (`Creada(ReservaCreada)`), the name
/// and metadata are the wrapped event's, and `routed()` answers it, so handlers and mappers of
/// `ReservaCreada` run for `Evento::Creada` too: the shape of an event-sourced aggregate's
/// `Event`.
#[proc_macro_derive(DomainEvent, attributes(event))]
pub fn derive_domain_event(input: TokenStream) -> TokenStream {
    expand(derives::domain_event(parse_macro_input!(
        input as DeriveInput
    )))
}

/// Implements `seedwork::messaging::IntegrationMessage` (kind `Event`) and `IntegrationEvent`.
///
/// `#[integration(topic = "...", version = "v1", name = "X", key = field)]`: `topic` is
/// required, `version` defaults to `"v1"`, `name` to the type's name; `key` names a field whose
/// `to_string()` becomes the message's ordering key. Serialize and Deserialize come from serde.
///
/// For a struct it also derives `AvroSchema` (as [`macro@AvroSchema`] does, reading the same
/// `#[avro(...)]` attribute) and registers the payload's schema under the topic
/// (`seedwork::messaging::schema::registered`), so a broker adapter announces it without a
/// declaration. Every field's type must implement `AvroSchema`.
#[proc_macro_derive(IntegrationEvent, attributes(integration, avro))]
pub fn derive_integration_event(input: TokenStream) -> TokenStream {
    expand(derives::integration(
        parse_macro_input!(input as DeriveInput),
        false,
    ))
}

/// Implements `seedwork::messaging::IntegrationMessage` (kind `Command`) and
/// `IntegrationCommand`; the attributes and the derived schema are the same as for
/// [`macro@IntegrationEvent`].
#[proc_macro_derive(IntegrationCommand, attributes(integration, avro))]
pub fn derive_integration_command(input: TokenStream) -> TokenStream {
    expand(derives::integration(
        parse_macro_input!(input as DeriveInput),
        true,
    ))
}

/// Implements `seedwork::messaging::schema::AvroSchema` for a struct with named fields (an Avro
/// record) or an enum of unit variants (an Avro enum).
///
/// The schema describes the type's serde form: `#[serde(rename)]`, `rename_all` and `skip`
/// are honoured; `flatten`, custom `with` functions and tagged enums are refused, since the
/// derive cannot see what they produce (implement the trait by hand then). On the type,
/// `#[avro(name = "X", namespace = "a.b")]` sets the record's name (the type's name when
/// omitted) and namespace, and `#[avro(nullable)]` writes every field as `["null", T]`, as the
/// Python client renders a field that is not `required`.
#[proc_macro_derive(AvroSchema, attributes(avro))]
pub fn derive_avro_schema(input: TokenStream) -> TokenStream {
    expand(avro::derive(parse_macro_input!(input as DeriveInput)))
}

/// Registers a plain `fn(old: V1) -> V2` as the upcaster of a message type from `V1`'s schema
/// version to `V2`'s: `Message::decode::<V2>()` applies it to a `V1` message before a handler
/// sees it (see `seedwork::messaging::upcast`). Both types are integration messages.
#[proc_macro_attribute]
pub fn upcaster(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute(args, item, "upcaster", upcaster::upcaster)
}

/// Registers an `async fn` as the handler of its first parameter's command type.
///
/// `async fn f(command: C, uow: &mut UnitOfWork, dep: Dep<T>, …) -> Result<C::Output>`; the
/// unit of work and the dependencies are optional and may come in any order.
#[proc_macro_attribute]
pub fn command_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute(args, item, "command_handler", |f| {
        handlers::handler(f, Kind::Command)
    })
}

/// Registers an `async fn` as the handler of its first parameter's query type.
///
/// `async fn f(query: Q, dep: Dep<T>, …) -> Result<Q::Output>`; a query handler gets no unit of
/// work.
#[proc_macro_attribute]
pub fn query_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute(args, item, "query_handler", |f| {
        handlers::handler(f, Kind::Query)
    })
}

/// Registers an `async fn` as a handler of the domain event its first parameter references.
///
/// `async fn f(event: &E, uow: &mut UnitOfWork, dep: Dep<T>, …) -> Result<()>`; it runs inside
/// the unit of work that recorded the event.
#[proc_macro_attribute]
pub fn domain_event_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute(args, item, "domain_event_handler", |f| {
        handlers::handler(f, Kind::DomainEvent)
    })
}

/// Registers an `async fn` as the handler of an integration message.
///
/// `async fn f(message: Envelope<M>, uow: &mut UnitOfWork, dep: Dep<T>, …) -> Result<()>`.
#[proc_macro_attribute]
pub fn message_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute(args, item, "message_handler", |f| {
        handlers::handler(f, Kind::Message)
    })
}

/// Registers a plain (not `async`) `fn(&E) -> M` mapping a domain event to the integration
/// message written to the outbox in the same transaction.
#[proc_macro_attribute]
pub fn integration_mapper(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute(args, item, "integration_mapper", handlers::mapper)
}
