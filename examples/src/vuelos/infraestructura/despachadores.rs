//! Domain events → integration events (`despachadores.py`): mapped at commit and written to the
//! outbox, so they reach the broker only if the reservation committed.
//!
//! A creation is published twice, for two audiences: `EventoReservaCreada` (`v2`) on
//! `eventos-reserva`, the tutorial's contract with the Python services, and
//! `EventoReserva::Creada` on `ciclo-reserva`, the reservation's ordered life, which the Rust
//! services read.

use crate::vuelos::dominio::{ReservaAprobada, ReservaCancelada, ReservaCreada, ReservaPagada};

use super::schema::v1::{
    EventoReserva, EventoReservaAprobada, EventoReservaCancelada, EventoReservaCreada,
    EventoReservaPagada,
};
use super::schema::v2;

fn reserva_creada(evento: &ReservaCreada) -> EventoReservaCreada {
    EventoReservaCreada {
        id_reserva: evento.id_reserva.clone(),
        id_cliente: evento.id_cliente.clone(),
        estado: evento.estado.to_string(),
        fecha_creacion: evento.fecha_creacion.timestamp_millis(),
    }
}

/// The contract's current version, `v2`; its `v1` readers (the Python services) read it too.
#[seedwork::integration_mapper]
fn publicar_reserva_creada(evento: &ReservaCreada) -> v2::EventoReservaCreada {
    v2::a_v2(reserva_creada(evento))
}

#[seedwork::integration_mapper]
fn publicar_creacion_en_ciclo(evento: &ReservaCreada) -> EventoReserva {
    EventoReserva::Creada(reserva_creada(evento))
}

#[seedwork::integration_mapper]
fn publicar_reserva_aprobada(evento: &ReservaAprobada) -> EventoReserva {
    EventoReserva::Aprobada(EventoReservaAprobada {
        id_reserva: evento.id_reserva.clone(),
        fecha_actualizacion: evento.fecha_actualizacion.timestamp_millis(),
    })
}

#[seedwork::integration_mapper]
fn publicar_reserva_cancelada(evento: &ReservaCancelada) -> EventoReserva {
    EventoReserva::Cancelada(EventoReservaCancelada {
        id_reserva: evento.id_reserva.clone(),
        fecha_actualizacion: evento.fecha_actualizacion.timestamp_millis(),
    })
}

#[seedwork::integration_mapper]
fn publicar_reserva_pagada(evento: &ReservaPagada) -> EventoReserva {
    EventoReserva::Pagada(EventoReservaPagada {
        id_reserva: evento.id_reserva.clone(),
        fecha_actualizacion: evento.fecha_actualizacion.timestamp_millis(),
    })
}
