//! Wire ↔ application conversions (`mapeadores.py` of the infrastructure): the version-1
//! integration types of [`schema::v1`](super::schema::v1) to and from the application's DTOs.
//! The schema module knows nothing of the DTOs; only this module knows both.

use super::schema::v1;
use crate::vuelos::aplicacion::comandos::SolicitarReserva;
use crate::vuelos::aplicacion::dto::{
    AeropuertoDto, ItinerarioDto, LegDto, OdoDto, ReservaEntradaDto, SegmentoDto, CLIENTE_ANONIMO,
};

impl From<SolicitarReserva> for v1::ComandoCrearReserva {
    fn from(solicitud: SolicitarReserva) -> Self {
        let datos = solicitud.datos;
        v1::ComandoCrearReserva {
            id_usuario: datos
                .id_cliente
                .unwrap_or_else(|| CLIENTE_ANONIMO.to_string()),
            id_reserva: solicitud.id,
            fecha_creacion: datos.fecha_creacion,
            fecha_actualizacion: datos.fecha_actualizacion,
            itinerarios: datos.itinerarios.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<v1::ComandoCrearReserva> for ReservaEntradaDto {
    fn from(comando: v1::ComandoCrearReserva) -> Self {
        ReservaEntradaDto {
            id: Some(comando.id_reserva),
            id_cliente: Some(comando.id_usuario),
            fecha_creacion: comando.fecha_creacion,
            fecha_actualizacion: comando.fecha_actualizacion,
            itinerarios: comando.itinerarios.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ItinerarioDto> for v1::Itinerario {
    fn from(dto: ItinerarioDto) -> Self {
        v1::Itinerario {
            odos: dto.odos.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<v1::Itinerario> for ItinerarioDto {
    fn from(wire: v1::Itinerario) -> Self {
        ItinerarioDto {
            odos: wire.odos.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<OdoDto> for v1::Odo {
    fn from(dto: OdoDto) -> Self {
        v1::Odo {
            segmentos: dto.segmentos.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<v1::Odo> for OdoDto {
    fn from(wire: v1::Odo) -> Self {
        OdoDto {
            segmentos: wire.segmentos.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<SegmentoDto> for v1::Segmento {
    fn from(dto: SegmentoDto) -> Self {
        v1::Segmento {
            legs: dto.legs.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<v1::Segmento> for SegmentoDto {
    fn from(wire: v1::Segmento) -> Self {
        SegmentoDto {
            legs: wire.legs.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<LegDto> for v1::Leg {
    fn from(dto: LegDto) -> Self {
        v1::Leg {
            fecha_salida: dto.fecha_salida,
            fecha_llegada: dto.fecha_llegada,
            origen: dto.origen.into(),
            destino: dto.destino.into(),
        }
    }
}

impl From<v1::Leg> for LegDto {
    fn from(wire: v1::Leg) -> Self {
        LegDto {
            fecha_salida: wire.fecha_salida,
            fecha_llegada: wire.fecha_llegada,
            origen: wire.origen.into(),
            destino: wire.destino.into(),
        }
    }
}

impl From<AeropuertoDto> for v1::Aeropuerto {
    fn from(dto: AeropuertoDto) -> Self {
        v1::Aeropuerto {
            codigo: dto.codigo,
            nombre: dto.nombre,
        }
    }
}

impl From<v1::Aeropuerto> for AeropuertoDto {
    fn from(wire: v1::Aeropuerto) -> Self {
        AeropuertoDto {
            codigo: wire.codigo,
            nombre: wire.nombre,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solicitud(id_cliente: Option<&str>) -> SolicitarReserva {
        let aeropuerto = |codigo: &str| AeropuertoDto {
            codigo: codigo.into(),
            nombre: format!("Aeropuerto {codigo}"),
        };
        SolicitarReserva {
            id: "r-1".into(),
            datos: ReservaEntradaDto {
                id: Some("r-1".into()),
                id_cliente: id_cliente.map(str::to_string),
                fecha_creacion: Some("2025-09-03T12:00:00Z".into()),
                fecha_actualizacion: None,
                itinerarios: vec![ItinerarioDto {
                    odos: vec![OdoDto {
                        segmentos: vec![SegmentoDto {
                            legs: vec![LegDto {
                                fecha_salida: "2022-11-22T13:10:00Z".into(),
                                fecha_llegada: "2022-11-22T15:10:00Z".into(),
                                origen: aeropuerto("BOG"),
                                destino: aeropuerto("JFK"),
                            }],
                        }],
                    }],
                }],
            },
        }
    }

    #[test]
    fn a_request_survives_the_round_trip_through_the_wire_command() {
        let original = solicitud(Some("cliente-1"));
        let comando = v1::ComandoCrearReserva::from(original.clone());
        assert_eq!(comando.id_reserva, "r-1");
        assert_eq!(comando.id_usuario, "cliente-1");
        assert_eq!(ReservaEntradaDto::from(comando), original.datos);
    }

    #[test]
    fn a_request_without_client_is_sent_as_the_anonymous_one() {
        let comando = v1::ComandoCrearReserva::from(solicitud(None));
        assert_eq!(comando.id_usuario, CLIENTE_ANONIMO);
    }
}
