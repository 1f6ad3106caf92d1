//! The JSON shapes of the HTTP contract (`dto.py`, `mapeadores.py`), and the mapping of a
//! stored reservation to them. The other direction, request → domain, is the factory's
//! ([`fabricar_reserva`](super::fabricas::fabricar_reserva)).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use seedwork::domain::{DomainError, Entity};

use crate::texto;
use crate::vuelos::dominio::{Aeropuerto, Itinerario, Reserva};

/// An airport as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AeropuertoDto {
    /// Code (`"BOG"`; the tutorial's `"sasads"` is accepted too).
    pub codigo: String,
    /// Name.
    pub nombre: String,
}

/// A leg as JSON; dates are ISO-8601 strings such as `2022-11-22T13:10:00Z`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegDto {
    /// Departure.
    #[schema(format = DateTime, example = "2022-11-22T13:10:00Z")]
    pub fecha_salida: String,
    /// Arrival.
    #[schema(format = DateTime, example = "2022-11-22T15:10:00Z")]
    pub fecha_llegada: String,
    /// From.
    pub origen: AeropuertoDto,
    /// To.
    pub destino: AeropuertoDto,
}

/// A segment as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentoDto {
    /// Its legs.
    pub legs: Vec<LegDto>,
}

/// An origin-destination pair as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OdoDto {
    /// Its segments.
    pub segmentos: Vec<SegmentoDto>,
}

/// An itinerary as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItinerarioDto {
    /// Its origin-destination pairs.
    pub odos: Vec<OdoDto>,
}

/// The body of `POST /vuelos/reserva` and `/vuelos/reserva-comando`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReservaEntradaDto {
    /// Client-chosen id; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// The client making it (`"anonimo"` when absent).
    #[serde(default)]
    pub id_cliente: Option<String>,
    /// Creation time; now when absent.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub fecha_creacion: Option<String>,
    /// Last change; now when absent.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub fecha_actualizacion: Option<String>,
    /// The itineraries.
    pub itinerarios: Vec<ItinerarioDto>,
}

impl ReservaEntradaDto {
    /// Checks the text of the request against what the system can store and route
    /// ([`crate::texto`]): the ids, and every airport's name (its code is a
    /// [`Codigo`](crate::vuelos::dominio::Codigo), which checks itself). A refusal names the
    /// field by its path in the body, e.g. `itinerarios[0].odos[0].segmentos[0].legs[0].origen.nombre`.
    pub fn validar(&self) -> Result<(), DomainError> {
        if let Some(id) = &self.id {
            texto::identificador("id", id)?;
        }
        if let Some(id_cliente) = &self.id_cliente {
            texto::identificador("id_cliente", id_cliente)?;
        }
        for (i, itinerario) in self.itinerarios.iter().enumerate() {
            for (o, odo) in itinerario.odos.iter().enumerate() {
                for (s, segmento) in odo.segmentos.iter().enumerate() {
                    for (l, leg) in segmento.legs.iter().enumerate() {
                        let ruta = format!("itinerarios[{i}].odos[{o}].segmentos[{s}].legs[{l}]");
                        for (lado, aeropuerto) in
                            [("origen", &leg.origen), ("destino", &leg.destino)]
                        {
                            texto::libre(&format!("{ruta}.{lado}.nombre"), &aeropuerto.nombre)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A reservation as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReservaDto {
    /// Id.
    pub id: String,
    /// Client.
    pub id_cliente: String,
    /// State: `Pendiente`, `Aprobada`, `Pagada` or `Cancelada`.
    #[schema(example = "Pendiente")]
    pub estado: String,
    /// Creation time.
    #[schema(format = DateTime)]
    pub fecha_creacion: String,
    /// Last change.
    #[schema(format = DateTime)]
    pub fecha_actualizacion: String,
    /// Itineraries.
    pub itinerarios: Vec<ItinerarioDto>,
}

/// The client id used when a request names none.
pub const CLIENTE_ANONIMO: &str = "anonimo";

pub(crate) fn texto(fecha: DateTime<Utc>) -> String {
    fecha.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Domain itineraries → DTO.
pub fn itinerarios_dto(itinerarios: &[Itinerario]) -> Vec<ItinerarioDto> {
    let aeropuerto = |a: &Aeropuerto| AeropuertoDto {
        codigo: a.codigo.to_string(),
        nombre: a.nombre.clone(),
    };
    itinerarios
        .iter()
        .map(|i| ItinerarioDto {
            odos: i
                .odos
                .iter()
                .map(|o| OdoDto {
                    segmentos: o
                        .segmentos
                        .iter()
                        .map(|s| SegmentoDto {
                            legs: s
                                .legs
                                .iter()
                                .map(|l| LegDto {
                                    fecha_salida: texto(l.fecha_salida),
                                    fecha_llegada: texto(l.fecha_llegada),
                                    origen: aeropuerto(&l.origen),
                                    destino: aeropuerto(&l.destino),
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

impl From<&Reserva> for ReservaDto {
    fn from(reserva: &Reserva) -> Self {
        ReservaDto {
            id: reserva.id().clone(),
            id_cliente: reserva.id_cliente().to_string(),
            estado: reserva.estado().to_string(),
            fecha_creacion: texto(reserva.fecha_creacion()),
            fecha_actualizacion: texto(reserva.fecha_actualizacion()),
            itinerarios: itinerarios_dto(reserva.itinerarios()),
        }
    }
}
