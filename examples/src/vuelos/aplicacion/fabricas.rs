//! The reservation factory (`fabricas.py`, `FabricaVuelos`): the one way a request becomes a
//! new [`Reserva`], its business rules checked.
//!
//! It lives in the application layer because its input is the application's DTO; the rules it
//! checks are the domain's own ([`Reserva::crear`]).

use chrono::{DateTime, Utc};

use seedwork::domain::DomainError;

use super::dto::{AeropuertoDto, ItinerarioDto, LegDto, ReservaEntradaDto, CLIENTE_ANONIMO};
use crate::texto;
use crate::vuelos::dominio::{Aeropuerto, Codigo, Itinerario, Leg, Odo, Reserva, Segmento};

/// Builds a new, pending `Reserva` from a request (the tutorial's `FabricaVuelos`): parses the
/// dates and airport codes and checks the business rules. `id` must already be decided (a
/// client-given id, or one the caller generated). A request that names no client belongs to
/// [`CLIENTE_ANONIMO`]; missing dates mean now.
///
/// Every path that creates a reservation goes through it: the synchronous command, the
/// request sent through the broker (checked before it is sent) and the broker's consumer. So it
/// is also where text no backend can store (a NUL character, an overlong id) is refused
/// ([`ReservaEntradaDto::validar`]), whichever way the request came in.
pub fn fabricar_reserva(id: String, dto: &ReservaEntradaDto) -> Result<Reserva, DomainError> {
    texto::identificador("id", &id)?;
    dto.validar()?;
    let ahora = Utc::now();
    let fecha_o_ahora = |field: &str, value: &Option<String>| match value {
        Some(value) => fecha(field, value),
        None => Ok(ahora),
    };
    let fecha_creacion = fecha_o_ahora("fecha_creacion", &dto.fecha_creacion)?;
    let fecha_actualizacion = fecha_o_ahora("fecha_actualizacion", &dto.fecha_actualizacion)?;
    Reserva::crear(
        id,
        dto.id_cliente
            .clone()
            .unwrap_or_else(|| CLIENTE_ANONIMO.to_string()),
        itinerarios(&dto.itinerarios)?,
        fecha_creacion,
        fecha_actualizacion,
    )
}

/// DTO → domain itineraries (the factory's parsing half): dates must be ISO-8601, airport
/// codes valid [`Codigo`]s.
pub fn itinerarios(dtos: &[ItinerarioDto]) -> Result<Vec<Itinerario>, DomainError> {
    dtos.iter().map(itinerario).collect()
}

fn itinerario(dto: &ItinerarioDto) -> Result<Itinerario, DomainError> {
    let odos = dto
        .odos
        .iter()
        .map(|odo| {
            let segmentos = odo
                .segmentos
                .iter()
                .map(|segmento| {
                    let legs = segmento.legs.iter().map(leg).collect::<Result<_, _>>()?;
                    Ok(Segmento { legs })
                })
                .collect::<Result<_, DomainError>>()?;
            Ok(Odo { segmentos })
        })
        .collect::<Result<_, DomainError>>()?;
    Ok(Itinerario { odos })
}

fn leg(dto: &LegDto) -> Result<Leg, DomainError> {
    Ok(Leg {
        fecha_salida: fecha("fecha_salida", &dto.fecha_salida)?,
        fecha_llegada: fecha("fecha_llegada", &dto.fecha_llegada)?,
        origen: aeropuerto(&dto.origen)?,
        destino: aeropuerto(&dto.destino)?,
    })
}

fn aeropuerto(dto: &AeropuertoDto) -> Result<Aeropuerto, DomainError> {
    Ok(Aeropuerto {
        codigo: Codigo::new(dto.codigo.clone())?,
        nombre: dto.nombre.clone(),
    })
}

fn fecha(field: &str, value: &str) -> Result<DateTime<Utc>, DomainError> {
    DateTime::parse_from_rfc3339(value)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| {
            DomainError::invalid_value(
                field,
                format!("`{value}` is not an ISO-8601 date such as 2022-11-22T13:10:00Z ({e})"),
            )
        })
}
