//! `notificaciones`: reads `eventos-reserva` with a subscription of its own and "sends the
//! email" for each event, through an [`EnviadorCorreo`] whose default writes the tutorial's lines
//! to standard output.

use std::sync::Arc;

use seedwork::prelude::*;

use crate::vuelos::infraestructura::schema::v1::{
    EventoReservaAprobada, EventoReservaCancelada, EventoReservaCreada, EventoReservaPagada,
};

/// The subscription of the notification service (Key_Shared: copies share the work, and each
/// reservation's events go to one copy at a time, in order).
pub const SUSCRIPCION: &str = "sub-notificacion-eventos-reservas";

/// One email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notificacion {
    /// The reservation it is about.
    pub id_reserva: String,
    /// What the tutorial's service prints for it.
    pub lineas: Vec<String>,
}

/// Sends notifications (a mail gateway in production).
#[seedwork::async_trait]
pub trait EnviadorCorreo: Send + Sync {
    /// Sends one notification.
    async fn enviar(&self, notificacion: &Notificacion) -> Result<()>;
}

/// The default sender: prints the lines, as the tutorial's service does.
#[derive(Debug, Default, Clone, Copy)]
pub struct CorreoEnConsola;

#[seedwork::async_trait]
impl EnviadorCorreo for CorreoEnConsola {
    async fn enviar(&self, notificacion: &Notificacion) -> Result<()> {
        for linea in &notificacion.lineas {
            println!("{linea}");
        }
        tracing::info!(id_reserva = %notificacion.id_reserva, "notification sent");
        Ok(())
    }
}

/// The default sender, ready to provide to the bus.
pub fn enviador_por_defecto() -> Arc<dyn EnviadorCorreo> {
    Arc::new(CorreoEnConsola)
}

const BANNER: &str = "=========================================";

fn notificacion(id_reserva: &str, mensaje: String) -> Notificacion {
    Notificacion {
        id_reserva: id_reserva.to_string(),
        lineas: vec![
            BANNER.to_string(),
            format!("Mensaje Recibido: '{mensaje}'"),
            BANNER.to_string(),
            "==== Envía correo a usuario ====".to_string(),
        ],
    }
}

/// The lines for a created reservation, as in the tutorial's README.
pub fn notificacion_reserva_creada(evento: &EventoReservaCreada) -> Notificacion {
    notificacion(
        &evento.id_reserva,
        format!(
            "id_reserva={}, id_cliente={}, estado={}, fecha_creacion={}",
            evento.id_reserva, evento.id_cliente, evento.estado, evento.fecha_creacion
        ),
    )
}

fn notificacion_cambio(id_reserva: &str, estado: &str, fecha: i64) -> Notificacion {
    notificacion(
        id_reserva,
        format!("id_reserva={id_reserva}, estado={estado}, fecha_actualizacion={fecha}"),
    )
}

/// The sender, as provided to the bus.
pub type Correo = Dep<dyn EnviadorCorreo>;

#[seedwork::message_handler]
async fn notificar_reserva_creada(m: Envelope<EventoReservaCreada>, correo: Correo) -> Result<()> {
    correo.enviar(&notificacion_reserva_creada(&m.data)).await
}

#[seedwork::message_handler]
async fn notificar_reserva_aprobada(
    m: Envelope<EventoReservaAprobada>,
    correo: Correo,
) -> Result<()> {
    let e = &m.data;
    correo
        .enviar(&notificacion_cambio(
            &e.id_reserva,
            "Aprobada",
            e.fecha_actualizacion,
        ))
        .await
}

#[seedwork::message_handler]
async fn notificar_reserva_cancelada(
    m: Envelope<EventoReservaCancelada>,
    correo: Correo,
) -> Result<()> {
    let e = &m.data;
    correo
        .enviar(&notificacion_cambio(
            &e.id_reserva,
            "Cancelada",
            e.fecha_actualizacion,
        ))
        .await
}

#[seedwork::message_handler]
async fn notificar_reserva_pagada(m: Envelope<EventoReservaPagada>, correo: Correo) -> Result<()> {
    let e = &m.data;
    correo
        .enviar(&notificacion_cambio(
            &e.id_reserva,
            "Pagada",
            e.fecha_actualizacion,
        ))
        .await
}
