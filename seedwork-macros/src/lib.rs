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
//! Misuse — a handler that is not `async`, a method, a generic function, a missing return type,
//! a unit of work in a query handler, a derive on a union, an unknown attribute key — is a
//! compile error pointing at the offending tokens.

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput, ItemFn};

mod attrs;
mod derives;
mod handlers;

use handlers::Kind;

fn expand(result: syn::Result<proc_macro2::TokenStream>) -> TokenStream {
    result.unwrap_or_else(syn::Error::into_compile_error).into()
}

fn attribute(args: TokenStream, item: TokenStream, name: &str) -> syn::Result<ItemFn> {
    attrs::no_arguments(args.into(), name)?;
    syn::parse(item)
}

/// Implements `seedwork::application::Command`; see the crate docs.
#[proc_macro_derive(Command, attributes(command))]
pub fn derive_command(input: TokenStream) -> TokenStream {
    expand(derives::command(parse_macro_input!(input as DeriveInput)))
}

/// Implements `seedwork::application::Query`; see the crate docs.
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

/// Implements `seedwork::domain::DomainEvent`; see the crate docs.
#[proc_macro_derive(DomainEvent, attributes(event))]
pub fn derive_domain_event(input: TokenStream) -> TokenStream {
    expand(derives::domain_event(parse_macro_input!(
        input as DeriveInput
    )))
}

/// Implements `seedwork::messaging::IntegrationMessage` and `IntegrationEvent`.
#[proc_macro_derive(IntegrationEvent, attributes(integration))]
pub fn derive_integration_event(input: TokenStream) -> TokenStream {
    expand(derives::integration(
        parse_macro_input!(input as DeriveInput),
        false,
    ))
}

/// Implements `seedwork::messaging::IntegrationMessage` and `IntegrationCommand`.
#[proc_macro_derive(IntegrationCommand, attributes(integration))]
pub fn derive_integration_command(input: TokenStream) -> TokenStream {
    expand(derives::integration(
        parse_macro_input!(input as DeriveInput),
        true,
    ))
}

/// Registers an `async fn` as the handler of its first parameter's command type.
#[proc_macro_attribute]
pub fn command_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(
        attribute(args, item, "command_handler").and_then(|f| handlers::handler(f, Kind::Command)),
    )
}

/// Registers an `async fn` as the handler of its first parameter's query type.
#[proc_macro_attribute]
pub fn query_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(attribute(args, item, "query_handler").and_then(|f| handlers::handler(f, Kind::Query)))
}

/// Registers an `async fn` as a handler of the domain event its first parameter references.
#[proc_macro_attribute]
pub fn domain_event_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(
        attribute(args, item, "domain_event_handler")
            .and_then(|f| handlers::handler(f, Kind::DomainEvent)),
    )
}

/// Registers an `async fn` as the handler of an integration message (`Envelope<M>` first).
#[proc_macro_attribute]
pub fn message_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(
        attribute(args, item, "message_handler").and_then(|f| handlers::handler(f, Kind::Message)),
    )
}

/// Registers a `fn(&DomainEvent) -> IntegrationMessage` that publishes the event through the
/// outbox.
#[proc_macro_attribute]
pub fn integration_mapper(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(attribute(args, item, "integration_mapper").and_then(handlers::mapper))
}
