//! The read models the list queries answer from (tutorial 7's `vistas.py` and the
//! `analitica_reservas` table): kept by the projections of
//! [`proyecciones`](crate::vuelos::infraestructura::proyecciones) from the reservation's
//! stored events, so they trail the writes by at most the projections' poll interval.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use seedwork::domain::{AggregateState, Repository};
use seedwork::prelude::*;

use super::dto::{itinerarios_dto, texto, ReservaDto};
use crate::vuelos::dominio::{EstadoReserva, Itinerario};

/// One reservation as the list shows it (`ProyeccionReservasLista`'s row).
#[derive(Debug, Clone, Serialize, Deserialize, AggregateRoot)]
#[aggregate(name = "lista_reservas")]
pub struct ReservaListada {
    /// The reservation.
    pub id: String,
    /// Its client.
    pub id_cliente: String,
    /// Its state.
    pub estado: EstadoReserva,
    /// Its itineraries.
    pub itinerarios: Vec<Itinerario>,
    /// Created.
    pub fecha_creacion: DateTime<Utc>,
    /// Last changed.
    pub fecha_actualizacion: DateTime<Utc>,
    #[serde(skip)]
    pub(crate) state: AggregateState,
}

impl From<&ReservaListada> for ReservaDto {
    fn from(fila: &ReservaListada) -> Self {
        ReservaDto {
            id: fila.id.clone(),
            id_cliente: fila.id_cliente.clone(),
            estado: fila.estado.to_string(),
            fecha_creacion: texto(fila.fecha_creacion),
            fecha_actualizacion: texto(fila.fecha_actualizacion),
            itinerarios: itinerarios_dto(&fila.itinerarios),
        }
    }
}

/// How many reservations were created on one day (`ProyeccionReservasTotales`'s row, the
/// tutorial's `ReservaAnalitica`); its id is the day, `YYYY-MM-DD` (UTC).
#[derive(Debug, Clone, Serialize, Deserialize, AggregateRoot)]
#[aggregate(name = "analitica_reservas")]
pub struct ReservaAnalitica {
    /// The day, `YYYY-MM-DD`.
    pub id: String,
    /// Reservations created that day.
    pub total: u64,
    #[serde(skip)]
    pub(crate) state: AggregateState,
}

/// A day's total, as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TotalReservasDto {
    /// The day, `YYYY-MM-DD` (UTC).
    pub fecha: String,
    /// Reservations created that day.
    pub total: u64,
}

/// The list's rows, any backend's, as the bus provides them.
pub type Listado = Dep<dyn Repository<ReservaListada>>;

/// The daily totals, any backend's, as the bus provides them.
pub type Analitica = Dep<dyn Repository<ReservaAnalitica>>;

/// Reservations created per day, one page of days at a time in ascending order
/// (`ProyeccionReservasTotales`).
#[derive(Debug, Clone, Default, Query)]
#[query(output = Page<TotalReservasDto>)]
pub struct ObtenerTotalesReservas {
    /// Which page.
    pub pagina: PageRequest,
}

#[seedwork::query_handler]
async fn obtener_totales(
    query: ObtenerTotalesReservas,
    analitica: Analitica,
) -> Result<Page<TotalReservasDto>> {
    Ok(analitica
        .list(&query.pagina)
        .await?
        .map(|dia| TotalReservasDto {
            fecha: dia.id,
            total: dia.total,
        }))
}
