//! Clients (`cliente`): the tutorial's example of a second module continuing the business
//! transaction from a domain event. When `vuelos` creates a reservation, this module records it
//! in the client's history inside the same unit of work: both commit, or neither does.
//!
//! A client's history is not one document but one small entry per reservation
//! ([`EntradaHistorialCliente`]), stored with `add` under an id that sorts the client's entries
//! together, oldest first. Recording a reservation is then one constant-size insert that reads
//! nothing and locks no per-client row: a client with a long history (the anonymous client
//! collects every reservation that names none) costs the same to record as a new one, and
//! concurrent reservations of one client do not wait for each other. The listing reads only
//! the client's entries, one keyset page at a time, through the plain
//! [`Repository::list`], so it runs on every backend.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use seedwork::domain::{AggregateState, Repository};
use seedwork::prelude::*;

use crate::vuelos::dominio::ReservaCreada;

/// One reservation in a client's history (aggregate root of the client's read side; written
/// once, never updated).
///
/// Its id is [`EntradaHistorialCliente::id_de`]: the client, the time the reservation was
/// made and the reservation, encoded so that ids sort the same way on every backend and
/// collation, and a client's entries are next to each other, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, seedwork::AggregateRoot)]
pub struct EntradaHistorialCliente {
    id: String,
    id_cliente: String,
    id_reserva: String,
    #[serde(skip)]
    state: AggregateState,
}

impl EntradaHistorialCliente {
    /// The entry recording `evento`.
    pub fn de(evento: &ReservaCreada) -> Self {
        let micros = u64::try_from(evento.metadata.occurred_at.timestamp_micros()).unwrap_or(0);
        EntradaHistorialCliente {
            id: Self::id_de(&evento.id_cliente, micros, &evento.id_reserva),
            id_cliente: evento.id_cliente.clone(),
            id_reserva: evento.id_reserva.clone(),
            state: AggregateState::new(),
        }
    }

    /// The entry's id: `hex(id_cliente) g micros g hex(id_reserva)`, `micros` zero-padded to
    /// 19 digits (every `u64` fits).
    ///
    /// Why this shape: listings are in id order, and an entry's id must sort (1) the client's
    /// entries together — [`prefijo`](Self::prefijo) is the client's hex and a `g`, which no
    /// hex holds, so no other client's id starts with it — and (2) oldest first, by the
    /// fixed-width time, the reservation id breaking ties. Hex digits and `g` are the only
    /// characters, all lowercase letters and digits, so the order is the same under SQLite's
    /// byte order, PostgreSQL's `C` collation and its linguistic ones (which skip punctuation
    /// and fold case, and would break the grouping of raw ids). The id is deterministic: the
    /// same event always makes the same entry.
    pub fn id_de(id_cliente: &str, micros: u64, id_reserva: &str) -> String {
        let mut id = Self::prefijo(id_cliente);
        let _ = write!(id, "{micros:019}g");
        hex(&mut id, id_reserva);
        id
    }

    /// What every entry id of the client starts with (and sorts after).
    pub fn prefijo(id_cliente: &str) -> String {
        let mut prefijo = String::with_capacity(id_cliente.len() * 2 + 1);
        hex(&mut prefijo, id_cliente);
        prefijo.push('g');
        prefijo
    }

    /// The client.
    pub fn id_cliente(&self) -> &str {
        &self.id_cliente
    }

    /// The reservation.
    pub fn id_reserva(&self) -> &str {
        &self.id_reserva
    }
}

/// Appends `text`'s UTF-8 bytes as lowercase hex.
fn hex(out: &mut String, text: &str) {
    for byte in text.bytes() {
        let _ = write!(out, "{byte:02x}");
    }
}

/// The repository, as provided to the bus.
pub type Historiales = Dep<dyn Repository<EntradaHistorialCliente>>;

/// The reservation ids of a client, one page at a time, oldest first (empty when it has
/// none). The cursor is the [`Page::next`] of the previous page (the `x-next-cursor` of the
/// HTTP route); one that does not belong to this client's listing is refused.
#[derive(Debug, Clone, Query)]
#[query(output = Page<String>)]
pub struct ObtenerReservasCliente {
    /// The client.
    pub id_cliente: String,
    /// Which page.
    pub pagina: PageRequest,
}

/// Records the reservation in its client's history, inside `uow`: one insert of one small
/// entry, whatever the length of the history.
pub async fn registrar(
    uow: &mut UnitOfWork,
    historiales: &dyn Repository<EntradaHistorialCliente>,
    evento: &ReservaCreada,
) -> Result<()> {
    historiales
        .add(uow, &mut EntradaHistorialCliente::de(evento))
        .await
}

#[seedwork::domain_event_handler]
async fn registrar_reserva_en_cliente(
    evento: &ReservaCreada,
    uow: &mut UnitOfWork,
    historiales: Historiales,
) -> Result<()> {
    registrar(uow, &*historiales, evento).await
}

/// One page of the client's reservation ids, oldest first.
///
/// The repository lists entries of every client in id order; a client's entries are the
/// contiguous run of ids that start with its [`prefijo`](EntradaHistorialCliente::prefijo).
/// The first page reads from just after the prefix, a later one from just after its cursor,
/// until it holds `limit + 1` of the client's entries (the extra one only says a next page
/// exists) or meets an id of another client, so a page costs the same however long the history.
pub async fn pagina_de(
    historiales: &dyn Repository<EntradaHistorialCliente>,
    id_cliente: &str,
    pagina: &PageRequest,
) -> Result<Page<String>> {
    let prefijo = EntradaHistorialCliente::prefijo(id_cliente);
    let desde = match pagina.cursor() {
        None => prefijo.clone(),
        Some(cursor) if cursor.starts_with(&prefijo) => cursor.to_string(),
        Some(cursor) => {
            return Err(DomainError::invalid_value(
                "after",
                format!("`{cursor}` is not a cursor of this client's reservations"),
            )
            .into())
        }
    };
    let quiere = pagina.limit() + 1;
    let mut suyas = Vec::with_capacity(quiere);
    let mut lectura = PageRequest::first(quiere.min(PageRequest::MAX_LIMIT))?.after(desde);
    loop {
        let leidas = historiales.list(&lectura).await?;
        let antes = suyas.len();
        suyas.extend(
            leidas
                .items
                .into_iter()
                .take_while(|e| e.id.starts_with(&prefijo)),
        );
        let solo_suyas = suyas.len() - antes == lectura.limit();
        match leidas.next {
            Some(cursor) if solo_suyas && suyas.len() < quiere => lectura = lectura.after(cursor),
            _ => break,
        }
    }
    suyas.truncate(quiere);
    Ok(Page::from_overfetch(suyas, pagina, |e| e.id.clone()).map(|e| e.id_reserva))
}

#[seedwork::query_handler]
async fn obtener_reservas_cliente(
    query: ObtenerReservasCliente,
    historiales: Historiales,
) -> Result<Page<String>> {
    pagina_de(&*historiales, &query.id_cliente, &query.pagina).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, Utc};
    use seedwork::domain::EventMetadata;
    use seedwork::memory::{MemoryRepository, MemoryStore};

    use super::*;
    use crate::vuelos::dominio::EstadoReserva;

    fn evento(id_cliente: &str, id_reserva: &str, micros: i64) -> ReservaCreada {
        let occurred_at = DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
        ReservaCreada {
            id_reserva: id_reserva.to_string(),
            id_cliente: id_cliente.to_string(),
            estado: EstadoReserva::Pendiente,
            itinerarios: Vec::new(),
            fecha_creacion: occurred_at,
            fecha_actualizacion: occurred_at,
            metadata: EventMetadata {
                occurred_at,
                ..EventMetadata::now()
            },
        }
    }

    struct Historial {
        bus: Bus,
        repo: MemoryRepository<EntradaHistorialCliente>,
    }

    impl Historial {
        fn new() -> Self {
            let store = MemoryStore::new();
            let bus = Bus::builder()
                .store(Arc::new(store.clone()))
                .build()
                .unwrap_or_else(|e| panic!("the bus builds: {e}"));
            Historial {
                bus,
                repo: MemoryRepository::new(store),
            }
        }

        async fn registrar(&self, eventos: &[ReservaCreada]) -> Result<()> {
            for evento in eventos {
                let mut uow = self.bus.unit_of_work().await?;
                registrar(&mut uow, &self.repo, evento).await?;
                uow.commit().await?;
            }
            Ok(())
        }

        /// Every page of `id_cliente` in pages of `limit`.
        async fn paginas(&self, id_cliente: &str, limit: usize) -> Result<Vec<Vec<String>>> {
            let mut paginas = Vec::new();
            let mut pagina = PageRequest::first(limit)?;
            loop {
                let page = pagina_de(&self.repo, id_cliente, &pagina).await?;
                assert!(page.items.len() <= limit);
                paginas.push(page.items);
                match page.next {
                    Some(next) => pagina = pagina.after(next),
                    None => return Ok(paginas),
                }
            }
        }
    }

    #[tokio::test]
    async fn a_client_lists_its_own_reservations_oldest_first() -> Result<()> {
        let historial = Historial::new();
        // "a", "ab" and "b": raw ids would interleave "a…" and "ab…"; reservation ids out of
        // id order, so only the time orders them.
        let mut eventos = Vec::new();
        for i in 0..7_i64 {
            eventos.push(evento("a", &format!("r{}", 9 - i), 1_000 + i));
            eventos.push(evento("ab", &format!("x{i}"), 1_000 + i));
            eventos.push(evento("b", &format!("y{i}"), 1_000 + i));
        }
        historial.registrar(&eventos).await?;
        let esperadas: Vec<String> = (0..7).map(|i| format!("r{}", 9 - i)).collect();
        for limit in [1, 3, 7, 500] {
            let paginas = historial.paginas("a", limit).await?;
            let vistas: Vec<String> = paginas.iter().flatten().cloned().collect();
            assert_eq!(vistas, esperadas, "limit {limit}");
            assert_eq!(paginas.len(), 7_usize.div_ceil(limit), "limit {limit}");
        }
        assert_eq!(historial.paginas("ab", 50).await?.concat().len(), 7);
        assert_eq!(
            historial.paginas("nadie", 50).await?,
            vec![Vec::<String>::new()]
        );
        Ok(())
    }

    #[tokio::test]
    async fn recording_is_one_insert_per_reservation() -> Result<()> {
        let historial = Historial::new();
        let eventos: Vec<_> = (0..50)
            .map(|i| {
                evento(
                    crate::vuelos::aplicacion::dto::CLIENTE_ANONIMO,
                    &format!("r{i:03}"),
                    i,
                )
            })
            .collect();
        historial.registrar(&eventos).await?;
        let entradas = historial.repo.list(&PageRequest::first(500)?).await?.items;
        assert_eq!(entradas.len(), 50, "N reservations, N entries");
        // Written once each (version 1: never read-modified-written), all the same size
        // however long the history was when each was recorded.
        assert!(entradas.iter().all(|e| e.version() == 1));
        let tamanos: Vec<usize> = entradas
            .iter()
            .map(|e| serde_json::to_string(e).map(|s| s.len()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::codec("EntradaHistorialCliente", e))?;
        assert!(tamanos.iter().all(|t| *t == tamanos[0]), "{tamanos:?}");
        Ok(())
    }

    #[tokio::test]
    async fn the_same_event_makes_the_same_entry() -> Result<()> {
        let historial = Historial::new();
        let uno = evento("c", "r1", 5);
        historial.registrar(std::slice::from_ref(&uno)).await?;
        let again = historial.registrar(&[uno]).await;
        assert!(matches!(again, Err(Error::Conflict { .. })), "{again:?}");
        Ok(())
    }

    #[tokio::test]
    async fn a_cursor_of_another_listing_is_refused() -> Result<()> {
        let historial = Historial::new();
        historial.registrar(&[evento("c", "r1", 5)]).await?;
        let ajeno = EntradaHistorialCliente::id_de("d", 5, "r1");
        for cursor in ["nope".to_string(), ajeno] {
            let pagina = PageRequest::first(2)?.after(cursor.clone());
            let error = pagina_de(&historial.repo, "c", &pagina).await;
            assert!(
                matches!(&error, Err(e) if e.kind() == seedwork::ErrorKind::Invalid),
                "{cursor}: {error:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn ids_sort_by_client_then_time() {
        let id = EntradaHistorialCliente::id_de("añ", 42, "r-1");
        assert_eq!(id, "61c3b1g0000000000000000042g722d31");
        assert!(id.starts_with(&EntradaHistorialCliente::prefijo("añ")));
        assert!(
            EntradaHistorialCliente::id_de("a", 9, "z")
                < EntradaHistorialCliente::id_de("a", 10, "a")
        );
    }
}
