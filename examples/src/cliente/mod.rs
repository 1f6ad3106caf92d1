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

/// The reservation ids of a client, one page at a time, oldest first (empty when it has
/// none). The cursor is the last id of the previous page; one that is not among the client's
/// reservations is refused.
#[derive(Debug, Clone, Query)]
#[query(output = Page<String>)]
pub struct ObtenerReservasCliente {
    /// The client.
    pub id_cliente: String,
    /// Which page.
    pub pagina: PageRequest,
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
) -> Result<Page<String>> {
    let reservas = historiales
        .get(&query.id_cliente)
        .await?
        .map(|h| h.reservas)
        .unwrap_or_default();
    Ok(pagina_en_orden(reservas, &query.pagina)?)
}

/// One page of `ids` in their own order (a client's history is oldest first, not id order):
/// the `limit` ids after the cursor's position. A cursor that is not among `ids` is refused.
fn pagina_en_orden(ids: Vec<String>, pagina: &PageRequest) -> Result<Page<String>, DomainError> {
    let start = match pagina.cursor() {
        Some(cursor) => match ids.iter().position(|id| id == cursor) {
            Some(position) => position + 1,
            None => {
                return Err(DomainError::invalid_value(
                    "after",
                    format!("`{cursor}` is not one of this client's reservations"),
                ))
            }
        },
        None => 0,
    };
    let leidas = ids
        .into_iter()
        .skip(start)
        .take(pagina.limit() + 1)
        .collect();
    Ok(Page::from_overfetch(leidas, pagina, Clone::clone))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        // Not in id order: the history keeps the order reservations were made in.
        (0..n).rev().map(|i| format!("r{i:02}")).collect()
    }

    #[test]
    fn following_the_cursor_visits_every_id_once_in_history_order() -> Result<()> {
        let mut seen = Vec::new();
        let mut pagina = PageRequest::first(3)?;
        loop {
            let page = pagina_en_orden(ids(8), &pagina)?;
            assert!(page.items.len() <= 3);
            seen.extend(page.items);
            match page.next {
                Some(next) => pagina = pagina.after(next),
                None => break,
            }
        }
        assert_eq!(seen, ids(8));
        Ok(())
    }

    #[test]
    fn an_exact_last_page_has_no_next_cursor() -> Result<()> {
        let page = pagina_en_orden(ids(4), &PageRequest::first(4)?)?;
        assert_eq!((page.items.len(), page.next), (4, None));
        Ok(())
    }

    #[test]
    fn a_cursor_not_in_the_history_is_refused() -> Result<()> {
        let pagina = PageRequest::first(2)?.after("nope");
        assert!(pagina_en_orden(ids(3), &pagina).is_err());
        Ok(())
    }
}
