//! The projections of `vuelos` (tutorial 7's `proyecciones.py`): read models built from the
//! reservation's stored events by global position, each event applied once (the row's write and
//! the projection's checkpoint commit together), caught up at start, then followed, and
//! rebuilt from the first event on demand (`--rebuild-projections`,
//! `POST /admin/proyecciones/{nombre}/reconstruir`).
//!
//! Unlike the tutorial, they read the event store, not a Pulsar topic: a read model rebuilt
//! from the store misses nothing a broker's retention dropped, and a reservation's events reach
//! it in the order they were stored.

use std::sync::Arc;

use seedwork::async_trait;

use seedwork::domain::{AggregateState, PageRequest, Repository};
use seedwork::eventsourcing::{EventSourced, Projection, StoredEvent};
use seedwork::prelude::*;

use crate::vuelos::aplicacion::vistas::{ReservaAnalitica, ReservaListada};
use crate::vuelos::dominio::{EstadoReserva, EventoReserva, Reserva};

/// The reservation event `event` holds, brought up to the version this code reads; `None` for
/// another stream's event.
fn evento_reserva(event: &StoredEvent) -> Result<Option<EventoReserva>> {
    if event.stream_type != Reserva::TYPE {
        return Ok(None);
    }
    event.decode(Reserva::EVENT_VERSION).map(Some)
}

/// Removes every row of a read model inside `uow` (a rebuild's reset). The listing reads what
/// is committed, so it pages on by cursor: the removals only take effect at the commit.
async fn vaciar<A: AggregateRoot<Id = String>>(
    repositorio: &dyn Repository<A>,
    uow: &mut UnitOfWork,
) -> Result<()> {
    let mut pagina = PageRequest::first(PageRequest::MAX_LIMIT)?;
    loop {
        let filas = repositorio.list(&pagina).await?;
        for fila in &filas.items {
            repositorio.remove(uow, fila.id()).await?;
        }
        match filas.next {
            Some(cursor) => pagina = pagina.after(cursor),
            None => return Ok(()),
        }
    }
}

/// Reservations created per day (`ProyeccionReservasTotales`).
pub struct ProyeccionReservasTotales {
    analitica: Arc<dyn Repository<ReservaAnalitica>>,
}

impl ProyeccionReservasTotales {
    /// The checkpoint's name.
    pub const NOMBRE: &'static str = "reservas-totales";

    /// Keeps its rows in `analitica`.
    pub fn new(analitica: Arc<dyn Repository<ReservaAnalitica>>) -> Self {
        ProyeccionReservasTotales { analitica }
    }
}

#[async_trait]
impl Projection for ProyeccionReservasTotales {
    fn name(&self) -> &str {
        Self::NOMBRE
    }

    async fn apply(&self, event: &StoredEvent, uow: &mut UnitOfWork) -> Result<()> {
        let Some(EventoReserva::Creada(creada)) = evento_reserva(event)? else {
            return Ok(());
        };
        let dia = creada.fecha_creacion.date_naive().to_string();
        match self.analitica.get_for_update(uow, &dia).await? {
            Some(mut fila) => {
                fila.total += 1;
                self.analitica.update(uow, &mut fila).await
            }
            None => {
                let mut fila = ReservaAnalitica {
                    id: dia,
                    total: 1,
                    state: AggregateState::new(),
                };
                self.analitica.add(uow, &mut fila).await
            }
        }
    }

    async fn reset(&self, uow: &mut UnitOfWork) -> Result<()> {
        vaciar(&*self.analitica, uow).await
    }
}

/// The list of reservations behind the list queries (`ProyeccionReservasLista`): a row per
/// reservation, added at its creation and updated at each change of state.
pub struct ProyeccionReservasLista {
    lista: Arc<dyn Repository<ReservaListada>>,
}

impl ProyeccionReservasLista {
    /// The checkpoint's name.
    pub const NOMBRE: &'static str = "reservas-lista";

    /// Keeps its rows in `lista`.
    pub fn new(lista: Arc<dyn Repository<ReservaListada>>) -> Self {
        ProyeccionReservasLista { lista }
    }
}

#[async_trait]
impl Projection for ProyeccionReservasLista {
    fn name(&self) -> &str {
        Self::NOMBRE
    }

    async fn apply(&self, event: &StoredEvent, uow: &mut UnitOfWork) -> Result<()> {
        let Some(evento) = evento_reserva(event)? else {
            return Ok(());
        };
        let (id, estado, fecha_actualizacion) = match evento {
            EventoReserva::Creada(creada) => {
                let mut fila = ReservaListada {
                    id: creada.id_reserva,
                    id_cliente: creada.id_cliente,
                    estado: creada.estado,
                    itinerarios: creada.itinerarios,
                    fecha_creacion: creada.fecha_creacion,
                    fecha_actualizacion: creada.fecha_actualizacion,
                    state: AggregateState::new(),
                };
                return self.lista.add(uow, &mut fila).await;
            }
            EventoReserva::Aprobada(e) => {
                (e.id_reserva, EstadoReserva::Aprobada, e.fecha_actualizacion)
            }
            EventoReserva::Cancelada(e) => (
                e.id_reserva,
                EstadoReserva::Cancelada,
                e.fecha_actualizacion,
            ),
            EventoReserva::Pagada(e) => {
                (e.id_reserva, EstadoReserva::Pagada, e.fecha_actualizacion)
            }
        };
        // Events are applied in stream order, so the creation added the row before.
        let mut fila = self
            .lista
            .get_for_update(uow, &id)
            .await?
            .ok_or_else(|| Error::not_found("ReservaListada", &id))?;
        fila.estado = estado;
        fila.fecha_actualizacion = fecha_actualizacion;
        self.lista.update(uow, &mut fila).await
    }

    async fn reset(&self, uow: &mut UnitOfWork) -> Result<()> {
        vaciar(&*self.lista, uow).await
    }
}

#[cfg(test)]
mod tests {
    use seedwork::application::Bus;
    use seedwork::memory::{MemoryRepository, MemoryStore};

    use super::*;

    #[tokio::test]
    async fn a_reset_empties_a_read_model_of_several_pages() {
        let store = MemoryStore::new();
        let bus = Bus::builder()
            .store(Arc::new(store.clone()))
            .build()
            .unwrap();
        let analitica = MemoryRepository::<ReservaAnalitica>::new(store.clone());
        let filas = PageRequest::MAX_LIMIT * 2 + 7;
        let mut uow = bus.unit_of_work().await.unwrap();
        for dia in 0..filas {
            let mut fila = ReservaAnalitica {
                id: format!("dia-{dia:05}"),
                total: 1,
                state: AggregateState::new(),
            };
            analitica.add(&mut uow, &mut fila).await.unwrap();
        }
        uow.commit().await.unwrap();

        let proyeccion = ProyeccionReservasTotales::new(Arc::new(analitica.clone()));
        let mut uow = bus.unit_of_work().await.unwrap();
        proyeccion.reset(&mut uow).await.unwrap();
        uow.commit().await.unwrap();
        let quedan = analitica
            .list(&PageRequest::first(PageRequest::MAX_LIMIT).unwrap())
            .await
            .unwrap();
        assert!(quedan.items.is_empty(), "{} rows left", quedan.items.len());
    }
}
