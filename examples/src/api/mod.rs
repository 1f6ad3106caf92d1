//! The HTTP API (`api/vuelos.py`): the tutorial's contract on port 5001, plus the approve, cancel
//! and pay commands and the list queries.

mod consulta;
pub mod contexto;
mod cuerpo;
pub mod errores;
pub mod health;
pub mod outbox;
pub mod proyecciones;
pub(crate) mod ruta;
pub mod sagas;
pub mod spec;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use seedwork::application::Bus;

use crate::cliente::ObtenerReservasCliente;
use crate::notificaciones::{NotificacionEnviada, ObtenerNotificaciones};
use crate::vuelos::aplicacion::dto::{ReservaDto, ReservaEntradaDto};
use crate::vuelos::aplicacion::{
    AprobarReserva, CancelarReserva, CrearReserva, ObtenerReserva, ObtenerReservasCanceladas,
    ObtenerReservasNoPagadas, ObtenerTodasReservas, ObtenerTotalesReservas, PagarReserva,
    SolicitarReserva, TotalReservasDto,
};
use consulta::{page_response, percent_encode, Consulta, PageParams};
use contexto::contexto;
use cuerpo::Cuerpo;
use errores::{ApiError, ErrorBody};
use health::HealthCheck;
use ruta::Id;

/// Largest request body accepted (413 above it).
pub const BODY_LIMIT: usize = 64 * 1024;
/// Longest a request may take (408 after it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Every route of the API, each declared together with its OpenAPI operation: a handler is
/// routed only through `routes!`, which reads its path and method from the handler's
/// `#[utoipa::path]`, so a route cannot exist without its entry in `/spec`. (Plain
/// `Router::route`/`OpenApiRouter::route` are refused by the crate's `clippy.toml`.)
pub fn openapi_router() -> OpenApiRouter<Bus> {
    OpenApiRouter::with_openapi(spec::base())
        .routes(routes!(health::health))
        .routes(routes!(spec::spec))
        .routes(routes!(outbox::parked))
        .routes(routes!(outbox::redrive))
        .routes(routes!(outbox::discard))
        .routes(routes!(crear_sincrono))
        .routes(routes!(crear_asincrono))
        .routes(routes!(crear_asincrono_commando))
        .routes(routes!(obtener))
        .routes(routes!(obtener_query))
        .routes(routes!(aprobar))
        .routes(routes!(cancelar))
        .routes(routes!(pagar))
        .routes(routes!(todas))
        .routes(routes!(canceladas))
        .routes(routes!(no_pagadas))
        .routes(routes!(totales))
        .routes(routes!(proyecciones::estado))
        .routes(routes!(proyecciones::reconstruir))
        .routes(routes!(reservas_cliente))
        .routes(routes!(notificaciones))
        .routes(routes!(sagas::saga_log))
}

/// The router, over the application's bus, with a `/health` that reports no parts (always
/// `up` while the process serves requests). See [`router_with_health`].
pub fn router(bus: Bus) -> Router {
    router_with_health(bus, HealthCheck::default())
}

/// The router, over the application's bus: [`openapi_router`], `/spec` serving their
/// document, `/health` answering from `health`, a JSON 404 for anything else, and the limits
/// of the edge.
pub fn router_with_health(bus: Bus, health: HealthCheck) -> Router {
    let (router, openapi) = openapi_router().split_for_parts();
    router
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(Extension(Arc::new(openapi)))
        .layer(Extension(outbox::ParkedOutbox(health.outbox_store())))
        .layer(Extension(proyecciones::Proyecciones(health.projections())))
        .layer(Extension(health))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(contexto::correlacion))
        .layer(TraceLayer::new_for_http())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(bus)
}

pub(crate) type Answer<T> = Result<T, ApiError>;

/// The reservation's id: the body's (checked as an id), or a new one.
fn id_de(entrada: &ReservaEntradaDto) -> Answer<String> {
    match &entrada.id {
        Some(id) => {
            crate::texto::identificador("id", id)?;
            Ok(id.clone())
        }
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

/// The body of a 202: the tutorial's `{}`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Aceptado {}

fn aceptado(location: Option<String>) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(Aceptado {})).into_response();
    if let Some(location) = location.and_then(|l| l.parse().ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Create a reservation synchronously (`CrearReserva`).
#[utoipa::path(post, path = "/vuelos/reserva", tag = "vuelos",
    params(("x-correlation-id" = Option<String>, Header, description = "Correlation id carried to the events (generated when absent)")),
    request_body = ReservaEntradaDto,
    responses(
        (status = 200, description = "The stored reservation", body = ReservaDto),
        (status = 400, description = "Malformed JSON, a bad value or a broken business rule", body = ErrorBody),
        (status = 409, description = "A reservation with that id exists", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Missing or mistyped field", body = ErrorBody),
    ))]
async fn crear_sincrono(
    State(bus): State<Bus>,
    headers: HeaderMap,
    Cuerpo(entrada): Cuerpo<ReservaEntradaDto>,
) -> Answer<Json<ReservaDto>> {
    let id = id_de(&entrada)?;
    let comando = CrearReserva { id, datos: entrada };
    let id = bus.dispatch_with(comando, contexto(&headers)?).await?;
    Ok(Json(bus.query(ObtenerReserva { id }).await?))
}

async fn solicitar(bus: &Bus, headers: &HeaderMap, entrada: ReservaEntradaDto) -> Answer<Response> {
    let id = id_de(&entrada)?;
    let solicitud = SolicitarReserva { id, datos: entrada };
    let id = bus.dispatch_with(solicitud, contexto(headers)?).await?;
    // Percent-encoded, any id makes a valid URL and header value.
    Ok(aceptado(Some(format!(
        "/vuelos/reserva-query/{}",
        percent_encode(&id)
    ))))
}

/// Create a reservation asynchronously (`SolicitarReserva`): checked now, then sent as
/// `ComandoCrearReserva` through the broker (`comandos-reserva`), whose consumer creates it.
#[utoipa::path(post, path = "/vuelos/reserva-comando", tag = "vuelos",
    params(("x-correlation-id" = Option<String>, Header, description = "Correlation id carried through the broker to the events (generated when absent)")),
    request_body = ReservaEntradaDto,
    responses(
        (status = 202, description = "Accepted", body = Aceptado,
            headers(("location" = String, description = "The query URL of the reservation, /vuelos/reserva-query/{id}"))),
        (status = 400, description = "Malformed JSON, a bad value or a broken business rule", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Missing or mistyped field", body = ErrorBody),
    ))]
async fn crear_asincrono(
    State(bus): State<Bus>,
    headers: HeaderMap,
    Cuerpo(entrada): Cuerpo<ReservaEntradaDto>,
) -> Answer<Response> {
    solicitar(&bus, &headers, entrada).await
}

/// The tutorial README's spelling of `/vuelos/reserva-comando`; the same operation.
#[utoipa::path(post, path = "/vuelos/reserva-commando", tag = "vuelos",
    params(("x-correlation-id" = Option<String>, Header, description = "Correlation id carried through the broker to the events (generated when absent)")),
    request_body = ReservaEntradaDto,
    responses(
        (status = 202, description = "Accepted", body = Aceptado,
            headers(("location" = String, description = "The query URL of the reservation, /vuelos/reserva-query/{id}"))),
        (status = 400, description = "Malformed JSON, a bad value or a broken business rule", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Missing or mistyped field", body = ErrorBody),
    ))]
async fn crear_asincrono_commando(
    State(bus): State<Bus>,
    headers: HeaderMap,
    Cuerpo(entrada): Cuerpo<ReservaEntradaDto>,
) -> Answer<Response> {
    solicitar(&bus, &headers, entrada).await
}

/// A reservation (the tutorial's service path).
#[utoipa::path(get, path = "/vuelos/reserva/{id}", tag = "vuelos",
    params(("id" = String, Path, description = "The reservation")),
    responses(
        (status = 200, description = "The reservation", body = ReservaDto),
        (status = 400, description = "An id that cannot be one: blank, a control character such as NUL, over 128 characters, or not UTF-8", body = ErrorBody),
        (status = 404, description = "No such reservation", body = ErrorBody),
    ))]
async fn obtener(State(bus): State<Bus>, Id(id): Id) -> Answer<Json<ReservaDto>> {
    Ok(Json(bus.query(ObtenerReserva { id }).await?))
}

/// A reservation (the CQRS query `ObtenerReserva`).
#[utoipa::path(get, path = "/vuelos/reserva-query/{id}", tag = "vuelos",
    params(("id" = String, Path, description = "The reservation")),
    responses(
        (status = 200, description = "The reservation", body = ReservaDto),
        (status = 400, description = "An id that cannot be one: blank, a control character such as NUL, over 128 characters, or not UTF-8", body = ErrorBody),
        (status = 404, description = "No such reservation", body = ErrorBody),
    ))]
async fn obtener_query(State(bus): State<Bus>, Id(id): Id) -> Answer<Json<ReservaDto>> {
    Ok(Json(bus.query(ObtenerReserva { id }).await?))
}

/// Approve a pending reservation (`AprobarReserva`).
#[utoipa::path(post, path = "/vuelos/reserva/{id}/aprobar", tag = "vuelos",
    params(("id" = String, Path, description = "The reservation")),
    responses(
        (status = 202, description = "Done", body = Aceptado),
        (status = 400, description = "An id that cannot be one: blank, a control character such as NUL, over 128 characters, or not UTF-8", body = ErrorBody),
        (status = 404, description = "No such reservation", body = ErrorBody),
        (status = 409, description = "Not allowed in the reservation's state, or changed concurrently", body = ErrorBody),
    ))]
async fn aprobar(State(bus): State<Bus>, headers: HeaderMap, Id(id): Id) -> Answer<Response> {
    bus.dispatch_with(AprobarReserva { id }, contexto(&headers)?)
        .await?;
    Ok(aceptado(None))
}

/// Cancel a pending or approved reservation (`CancelarReserva`).
#[utoipa::path(post, path = "/vuelos/reserva/{id}/cancelar", tag = "vuelos",
    params(("id" = String, Path, description = "The reservation")),
    responses(
        (status = 202, description = "Done", body = Aceptado),
        (status = 400, description = "An id that cannot be one: blank, a control character such as NUL, over 128 characters, or not UTF-8", body = ErrorBody),
        (status = 404, description = "No such reservation", body = ErrorBody),
        (status = 409, description = "Not allowed in the reservation's state, or changed concurrently", body = ErrorBody),
    ))]
async fn cancelar(State(bus): State<Bus>, headers: HeaderMap, Id(id): Id) -> Answer<Response> {
    bus.dispatch_with(CancelarReserva { id }, contexto(&headers)?)
        .await?;
    Ok(aceptado(None))
}

/// Pay an approved reservation (`PagarReserva`).
#[utoipa::path(post, path = "/vuelos/reserva/{id}/pagar", tag = "vuelos",
    params(("id" = String, Path, description = "The reservation")),
    responses(
        (status = 202, description = "Done", body = Aceptado),
        (status = 400, description = "An id that cannot be one: blank, a control character such as NUL, over 128 characters, or not UTF-8", body = ErrorBody),
        (status = 404, description = "No such reservation", body = ErrorBody),
        (status = 409, description = "Not allowed in the reservation's state, or changed concurrently", body = ErrorBody),
    ))]
async fn pagar(State(bus): State<Bus>, headers: HeaderMap, Id(id): Id) -> Answer<Response> {
    bus.dispatch_with(PagarReserva { id }, contexto(&headers)?)
        .await?;
    Ok(aceptado(None))
}

/// Every reservation, a page at a time in ascending order of id (`ObtenerTodasReservas`), from
/// the read model `ProyeccionReservasLista` keeps (it trails the writes by at most its poll
/// interval; `GET /proyecciones` says whether it is up to date).
#[utoipa::path(get, path = "/vuelos/reservas", tag = "vuelos",
    params(PageParams),
    responses(
        (status = 200, description = "One page of reservations", body = [ReservaDto],
            headers(("x-next-cursor" = String, description = "Present when there is a next page: pass it as `after` to read it"))),
        (status = 400, description = "A bad `limit` (not a number, 0, or above 500), or an `after` with a control character", body = ErrorBody),
    ))]
async fn todas(State(bus): State<Bus>, Consulta(p): Consulta<PageParams>) -> Answer<Response> {
    let pagina = p.page()?;
    Ok(page_response(
        bus.query(ObtenerTodasReservas { pagina }).await?,
    ))
}

/// Cancelled reservations, a page at a time in ascending order of id
/// (`ObtenerReservasCanceladas`).
#[utoipa::path(get, path = "/vuelos/reservas/canceladas", tag = "vuelos",
    params(PageParams),
    responses(
        (status = 200, description = "One page of reservations", body = [ReservaDto],
            headers(("x-next-cursor" = String, description = "Present when there is a next page: pass it as `after` to read it"))),
        (status = 400, description = "A bad `limit` (not a number, 0, or above 500), or an `after` with a control character", body = ErrorBody),
    ))]
async fn canceladas(State(bus): State<Bus>, Consulta(p): Consulta<PageParams>) -> Answer<Response> {
    let pagina = p.page()?;
    Ok(page_response(
        bus.query(ObtenerReservasCanceladas { pagina }).await?,
    ))
}

/// Reservations not paid yet (pending or approved), a page at a time in ascending order of id
/// (`ObtenerReservasNoPagadas`).
#[utoipa::path(get, path = "/vuelos/reservas/no-pagadas", tag = "vuelos",
    params(PageParams),
    responses(
        (status = 200, description = "One page of reservations", body = [ReservaDto],
            headers(("x-next-cursor" = String, description = "Present when there is a next page: pass it as `after` to read it"))),
        (status = 400, description = "A bad `limit` (not a number, 0, or above 500), or an `after` with a control character", body = ErrorBody),
    ))]
async fn no_pagadas(State(bus): State<Bus>, Consulta(p): Consulta<PageParams>) -> Answer<Response> {
    let pagina = p.page()?;
    Ok(page_response(
        bus.query(ObtenerReservasNoPagadas { pagina }).await?,
    ))
}

/// Reservations created per day, a page of days at a time in ascending order
/// (`ObtenerTotalesReservas`, tutorial 7's `ProyeccionReservasTotales`). The projection trails
/// the writes by at most its poll interval.
#[utoipa::path(get, path = "/vuelos/reservas/totales", tag = "vuelos",
    params(PageParams),
    responses(
        (status = 200, description = "One page of days", body = [TotalReservasDto],
            headers(("x-next-cursor" = String, description = "Present when there is a next page: pass it as `after` to read it"))),
        (status = 400, description = "A bad `limit` (not a number, 0, or above 500), or an `after` with a control character", body = ErrorBody),
    ))]
async fn totales(State(bus): State<Bus>, Consulta(p): Consulta<PageParams>) -> Answer<Response> {
    let pagina = p.page()?;
    Ok(page_response(
        bus.query(ObtenerTotalesReservas { pagina }).await?,
    ))
}

/// The reservation ids of a client, oldest first, a page at a time (the `cliente` module's
/// read model); empty for a client without reservations.
#[utoipa::path(get, path = "/clientes/{id}/reservas", tag = "cliente",
    params(("id" = String, Path, description = "The client"), PageParams),
    responses(
        (status = 200, description = "One page of reservation ids", body = [String],
            headers(("x-next-cursor" = String, description = "Present when there is a next page: pass it as `after` to read it"))),
        (status = 400, description = "A client id that cannot be one (blank, a control character such as NUL, over 128 characters), a bad `limit` (not a number, 0, or above 500), or an `after` that is not a cursor of this client's listing", body = ErrorBody),
    ))]
async fn reservas_cliente(
    State(bus): State<Bus>,
    Id(id): Id,
    Consulta(p): Consulta<PageParams>,
) -> Answer<Response> {
    let pagina = p.page()?;
    Ok(page_response(
        bus.query(ObtenerReservasCliente {
            id_cliente: id,
            pagina,
        })
        .await?,
    ))
}

/// Which reservation's notifications to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificacionesParams {
    /// The reservation.
    pub id_reserva: String,
}

/// The notifications recorded for a reservation, in the order they were handled
/// (`ObtenerNotificaciones`); empty when none was. The record is exactly once per event (it
/// commits with the notifier's inbox entry), while the email itself is at least once: see
/// the `notificaciones` module.
#[utoipa::path(get, path = "/notificaciones", tag = "notificaciones",
    params(NotificacionesParams),
    responses(
        (status = 200, description = "The notifications, oldest first", body = [NotificacionEnviada]),
        (status = 400, description = "No `id_reserva`", body = ErrorBody),
    ))]
async fn notificaciones(
    State(bus): State<Bus>,
    Consulta(p): Consulta<NotificacionesParams>,
) -> Answer<Json<Vec<NotificacionEnviada>>> {
    Ok(Json(
        bus.query(ObtenerNotificaciones {
            id_reserva: p.id_reserva,
        })
        .await?,
    ))
}
