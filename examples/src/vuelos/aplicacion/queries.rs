//! Queries of `vuelos` and their handlers (`queries/*.py`).

use seedwork::prelude::*;

use super::comandos::Reservas;
use super::dto::ReservaDto;
use crate::vuelos::dominio::EstadoReserva;

/// One reservation by id; `NotFound` when there is none.
#[derive(Debug, Clone, Query)]
#[query(output = ReservaDto)]
pub struct ObtenerReserva {
    /// The reservation.
    pub id: String,
}

/// Every reservation.
#[derive(Debug, Clone, Query)]
#[query(output = Vec<ReservaDto>)]
pub struct ObtenerTodasReservas;

/// Cancelled reservations.
#[derive(Debug, Clone, Query)]
#[query(output = Vec<ReservaDto>)]
pub struct ObtenerReservasCanceladas;

/// Reservations still to be paid (pending or approved).
#[derive(Debug, Clone, Query)]
#[query(output = Vec<ReservaDto>)]
pub struct ObtenerReservasNoPagadas;

async fn filtradas(
    reservas: &Reservas,
    keep: impl Fn(EstadoReserva) -> bool,
) -> Result<Vec<ReservaDto>> {
    let mut todas = Vec::new();
    let mut pagina = PageRequest::first(PageRequest::MAX_LIMIT)?;
    loop {
        let leidas = reservas.list(&pagina).await?;
        todas.extend(
            leidas
                .items
                .iter()
                .filter(|r| keep(r.estado()))
                .map(ReservaDto::from),
        );
        match leidas.next {
            Some(cursor) => pagina = pagina.after(cursor),
            None => return Ok(todas),
        }
    }
}

#[seedwork::query_handler]
async fn obtener_reserva(query: ObtenerReserva, reservas: Reservas) -> Result<ReservaDto> {
    reservas
        .get(&query.id)
        .await?
        .map(|r| ReservaDto::from(&r))
        .ok_or_else(|| Error::not_found("Reserva", &query.id))
}

#[seedwork::query_handler]
async fn obtener_todas(_: ObtenerTodasReservas, reservas: Reservas) -> Result<Vec<ReservaDto>> {
    filtradas(&reservas, |_| true).await
}

#[seedwork::query_handler]
async fn obtener_canceladas(
    _: ObtenerReservasCanceladas,
    reservas: Reservas,
) -> Result<Vec<ReservaDto>> {
    filtradas(&reservas, |e| e == EstadoReserva::Cancelada).await
}

#[seedwork::query_handler]
async fn obtener_no_pagadas(
    _: ObtenerReservasNoPagadas,
    reservas: Reservas,
) -> Result<Vec<ReservaDto>> {
    filtradas(&reservas, |e| {
        matches!(e, EstadoReserva::Pendiente | EstadoReserva::Aprobada)
    })
    .await
}
