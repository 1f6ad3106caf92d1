//! Queries of `vuelos` and their handlers (`queries/*.py`).

use seedwork::prelude::*;

use super::comandos::Reservas;
use super::dto::ReservaDto;
use super::vistas::Listado;
use crate::vuelos::dominio::EstadoReserva;

/// One reservation by id; `NotFound` when there is none.
#[derive(Debug, Clone, Query)]
#[query(output = ReservaDto)]
pub struct ObtenerReserva {
    /// The reservation.
    pub id: String,
}

/// Every reservation, one page at a time in ascending order of id.
#[derive(Debug, Clone, Default, Query)]
#[query(output = Page<ReservaDto>)]
pub struct ObtenerTodasReservas {
    /// Which page.
    pub pagina: PageRequest,
}

/// Cancelled reservations, one page at a time in ascending order of id.
#[derive(Debug, Clone, Default, Query)]
#[query(output = Page<ReservaDto>)]
pub struct ObtenerReservasCanceladas {
    /// Which page.
    pub pagina: PageRequest,
}

/// Reservations still to be paid (pending or approved), one page at a time in ascending order
/// of id.
#[derive(Debug, Clone, Default, Query)]
#[query(output = Page<ReservaDto>)]
pub struct ObtenerReservasNoPagadas {
    /// Which page.
    pub pagina: PageRequest,
}

/// One page of the reservations `keep` accepts, in ascending order of id.
///
/// The reservations are event-sourced, so the list reads the read model
/// ([`ReservaListada`](super::vistas::ReservaListada)) its projection keeps, paged by id; a
/// filtered page reads its pages from the request's cursor on until it holds `limit + 1`
/// accepted rows (the extra one only says a next page exists) or the listing ends. The next
/// cursor is the last accepted id, so the following request resumes right after it.
async fn filtradas(
    listado: &Listado,
    pagina: &PageRequest,
    keep: impl Fn(EstadoReserva) -> bool,
) -> Result<Page<ReservaDto>> {
    let quiere = pagina.limit() + 1;
    let mut elegidas = Vec::with_capacity(quiere);
    // Read `limit + 1` at a time, so an unfiltered page takes one read when it can.
    let mut lectura = PageRequest::first(quiere.min(PageRequest::MAX_LIMIT))?;
    if let Some(cursor) = pagina.cursor() {
        lectura = lectura.after(cursor);
    }
    loop {
        let leidas = listado.list(&lectura).await?;
        elegidas.extend(leidas.items.into_iter().filter(|r| keep(r.estado)));
        match leidas.next {
            Some(cursor) if elegidas.len() < quiere => lectura = lectura.after(cursor),
            _ => break,
        }
    }
    elegidas.truncate(quiere);
    Ok(Page::from_overfetch(elegidas, pagina, |r| r.id.clone()).map(|r| ReservaDto::from(&r)))
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
async fn obtener_todas(query: ObtenerTodasReservas, listado: Listado) -> Result<Page<ReservaDto>> {
    filtradas(&listado, &query.pagina, |_| true).await
}

#[seedwork::query_handler]
async fn obtener_canceladas(
    query: ObtenerReservasCanceladas,
    listado: Listado,
) -> Result<Page<ReservaDto>> {
    filtradas(&listado, &query.pagina, |e| e == EstadoReserva::Cancelada).await
}

#[seedwork::query_handler]
async fn obtener_no_pagadas(
    query: ObtenerReservasNoPagadas,
    listado: Listado,
) -> Result<Page<ReservaDto>> {
    filtradas(&listado, &query.pagina, |e| {
        matches!(e, EstadoReserva::Pendiente | EstadoReserva::Aprobada)
    })
    .await
}
