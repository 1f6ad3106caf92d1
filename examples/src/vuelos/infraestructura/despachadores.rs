//! Domain events → integration events (`despachadores.py`): mapped at commit and written to the
//! outbox, so they reach `eventos-reserva` only if the reservation committed.

use crate::vuelos::dominio::{ReservaAprobada, ReservaCancelada, ReservaCreada, ReservaPagada};

use super::schema::v1::{
    EventoReservaAprobada, EventoReservaCancelada, EventoReservaCreada, EventoReservaPagada,
};

#[seedwork::integration_mapper]
fn publicar_reserva_creada(evento: &ReservaCreada) -> EventoReservaCreada {
    EventoReservaCreada {
        id_reserva: evento.id_reserva.clone(),
        id_cliente: evento.id_cliente.clone(),
        estado: evento.estado.to_string(),
        fecha_creacion: evento.fecha_creacion.timestamp_millis(),
    }
}

#[seedwork::integration_mapper]
fn publicar_reserva_aprobada(evento: &ReservaAprobada) -> EventoReservaAprobada {
    EventoReservaAprobada {
        id_reserva: evento.id_reserva.clone(),
        fecha_actualizacion: evento.fecha_actualizacion.timestamp_millis(),
    }
}

#[seedwork::integration_mapper]
fn publicar_reserva_cancelada(evento: &ReservaCancelada) -> EventoReservaCancelada {
    EventoReservaCancelada {
        id_reserva: evento.id_reserva.clone(),
        fecha_actualizacion: evento.fecha_actualizacion.timestamp_millis(),
    }
}

#[seedwork::integration_mapper]
fn publicar_reserva_pagada(evento: &ReservaPagada) -> EventoReservaPagada {
    EventoReservaPagada {
        id_reserva: evento.id_reserva.clone(),
        fecha_actualizacion: evento.fecha_actualizacion.timestamp_millis(),
    }
}
