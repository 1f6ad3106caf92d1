//! The HTTP API (`api/vuelos.py`): the tutorial's contract on port 5001, plus the approve, cancel
//! and pay commands and the list queries.

mod cuerpo;
pub mod errores;
pub mod spec;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use seedwork::application::Bus;

use crate::cliente::ObtenerReservasCliente;
use crate::vuelos::aplicacion::dto::{ReservaDto, ReservaEntradaDto};
use crate::vuelos::aplicacion::{
    AprobarReserva, CancelarReserva, CrearReserva, ObtenerReserva, ObtenerReservasCanceladas,
    ObtenerReservasNoPagadas, ObtenerTodasReservas, PagarReserva, SolicitarReserva,
};
use cuerpo::Cuerpo;
use errores::ApiError;

/// Largest request body accepted (413 above it).
pub const BODY_LIMIT: usize = 64 * 1024;
/// Longest a request may take (408 after it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The router, over the application's bus.
pub fn router(bus: Bus) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/spec", get(|| async { Json(spec::openapi()) }))
        .route("/vuelos/reserva", post(crear_sincrono))
        .route("/vuelos/reserva-comando", post(crear_asincrono))
        .route("/vuelos/reserva-commando", post(crear_asincrono))
        .route("/vuelos/reserva/{id}", get(obtener))
        .route("/vuelos/reserva-query/{id}", get(obtener))
        .route("/vuelos/reserva/{id}/aprobar", post(aprobar))
        .route("/vuelos/reserva/{id}/cancelar", post(cancelar))
        .route("/vuelos/reserva/{id}/pagar", post(pagar))
        .route("/vuelos/reservas", get(todas))
        .route("/vuelos/reservas/canceladas", get(canceladas))
        .route("/vuelos/reservas/no-pagadas", get(no_pagadas))
        .route("/clientes/{id}/reservas", get(reservas_cliente))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(bus)
}

type Answer<T> = Result<T, ApiError>;

/// The request's correlation id (`x-correlation-id`), or a new one.
fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn id_de(entrada: &ReservaEntradaDto) -> Answer<String> {
    match &entrada.id {
        Some(id) if id.trim().is_empty() => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid id: the reservation id cannot be blank",
        )),
        Some(id) => Ok(id.clone()),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

fn aceptado(location: Option<String>) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(json!({}))).into_response();
    if let Some(location) = location.and_then(|l| l.parse().ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "up"}))
}

async fn crear_sincrono(
    State(bus): State<Bus>,
    headers: HeaderMap,
    Cuerpo(entrada): Cuerpo<ReservaEntradaDto>,
) -> Answer<Json<ReservaDto>> {
    let id = id_de(&entrada)?;
    let comando = CrearReserva { id, datos: entrada };
    let id = bus
        .dispatch_correlated(comando, correlation_id(&headers))
        .await?;
    Ok(Json(bus.query(ObtenerReserva { id }).await?))
}

async fn crear_asincrono(
    State(bus): State<Bus>,
    headers: HeaderMap,
    Cuerpo(entrada): Cuerpo<ReservaEntradaDto>,
) -> Answer<Response> {
    let id = id_de(&entrada)?;
    let solicitud = SolicitarReserva { id, datos: entrada };
    let id = bus
        .dispatch_correlated(solicitud, correlation_id(&headers))
        .await?;
    Ok(aceptado(Some(format!("/vuelos/reserva-query/{id}"))))
}

async fn obtener(State(bus): State<Bus>, Path(id): Path<String>) -> Answer<Json<ReservaDto>> {
    Ok(Json(bus.query(ObtenerReserva { id }).await?))
}

async fn aprobar(
    State(bus): State<Bus>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer<Response> {
    bus.dispatch_correlated(AprobarReserva { id }, correlation_id(&headers))
        .await?;
    Ok(aceptado(None))
}

async fn cancelar(
    State(bus): State<Bus>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer<Response> {
    bus.dispatch_correlated(CancelarReserva { id }, correlation_id(&headers))
        .await?;
    Ok(aceptado(None))
}

async fn pagar(
    State(bus): State<Bus>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer<Response> {
    bus.dispatch_correlated(PagarReserva { id }, correlation_id(&headers))
        .await?;
    Ok(aceptado(None))
}

async fn todas(State(bus): State<Bus>) -> Answer<Json<Vec<ReservaDto>>> {
    Ok(Json(bus.query(ObtenerTodasReservas).await?))
}

async fn canceladas(State(bus): State<Bus>) -> Answer<Json<Vec<ReservaDto>>> {
    Ok(Json(bus.query(ObtenerReservasCanceladas).await?))
}

async fn no_pagadas(State(bus): State<Bus>) -> Answer<Json<Vec<ReservaDto>>> {
    Ok(Json(bus.query(ObtenerReservasNoPagadas).await?))
}

async fn reservas_cliente(
    State(bus): State<Bus>,
    Path(id): Path<String>,
) -> Answer<Json<Vec<String>>> {
    Ok(Json(
        bus.query(ObtenerReservasCliente { id_cliente: id }).await?,
    ))
}
