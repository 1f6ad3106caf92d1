//! Clients (`cliente`): the tutorial's example of a second module continuing the business
//! transaction from a domain event. When `vuelos` creates a reservation, this module records it
//! on the client's history inside the same unit of work: both commit, or neither does.

use serde::{Deserialize, Serialize};

use seedwork::domain::{AggregateState, Repository};
use seedwork::prelude::*;

use crate::vuelos::dominio::ReservaCreada;

/// A client's reservations (aggregate root of the client's read side).
#[derive(Debug, Clone, Serialize, Deserialize, seedwork::AggregateRoot)]
pub struct HistorialCliente {
    #[aggregate(id)]
    id_cliente: String,
    reservas: Vec<String>,
    #[serde(skip)]
    state: AggregateState,
}

impl HistorialCliente {
    /// The reservation ids, oldest first.
    pub fn reservas(&self) -> &[String] {
        &self.reservas
    }
}

/// The repository, as provided to the bus.
pub type Historiales = Dep<dyn Repository<HistorialCliente>>;

/// The reservations of a client (empty when it has none).
#[derive(Debug, Clone, Query)]
#[query(output = Vec<String>)]
pub struct ObtenerReservasCliente {
    /// The client.
    pub id_cliente: String,
}

#[seedwork::domain_event_handler]
async fn registrar_reserva_en_cliente(
    evento: &ReservaCreada,
    uow: &mut UnitOfWork,
    historiales: Historiales,
) -> Result<()> {
    if let Some(mut historial) = historiales.get_for_update(uow, &evento.id_cliente).await? {
        historial.reservas.push(evento.id_reserva.clone());
        return historiales.update(uow, &mut historial).await;
    }
    let mut historial = HistorialCliente {
        id_cliente: evento.id_cliente.clone(),
        reservas: vec![evento.id_reserva.clone()],
        state: AggregateState::new(),
    };
    match historiales.add(uow, &mut historial).await {
        // Another transaction created this client's history meanwhile: append to it instead.
        Err(Error::Conflict { .. }) => {
            let mut historial = historiales
                .get_for_update(uow, &evento.id_cliente)
                .await?
                .ok_or_else(|| Error::not_found("HistorialCliente", &evento.id_cliente))?;
            historial.reservas.push(evento.id_reserva.clone());
            historiales.update(uow, &mut historial).await
        }
        other => other,
    }
}

#[seedwork::query_handler]
async fn obtener_reservas_cliente(
    query: ObtenerReservasCliente,
    historiales: Historiales,
) -> Result<Vec<String>> {
    Ok(historiales
        .get(&query.id_cliente)
        .await?
        .map(|h| h.reservas)
        .unwrap_or_default())
}
