//! `notificaciones`: reads `ciclo-reserva` with a subscription of its own and "sends the
//! email" for each event, through an [`EnviadorCorreo`] whose default writes the tutorial's lines
//! to standard output.
//!
//! # What is exactly once, and what is not
//!
//! Each handled event is **recorded** in [`NotificacionesReserva`], the reservation's log of
//! sent notifications, in the same unit of work as the consumer's inbox entry: the record and
//! the inbox commit together or not at all, so however often the broker delivers an event, and
//! whenever the process dies, the record holds it exactly once (`GET /notificaciones`).
//!
//! The **sending itself** (the console lines of [`CorreoEnConsola`], or a mail gateway) happens
//! inside that unit of work, before it commits, and cannot be rolled back: a process killed
//! between the two sends again when the event is delivered again. The email is at least once;
//! the record is exactly once. A gateway that takes an idempotency key makes the email exactly
//! once too: give it [`NotificacionEnviada::id_mensaje`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use seedwork::domain::{AggregateState, Repository};
use seedwork::prelude::*;

use crate::vuelos::infraestructura::schema::v1::{EventoReserva, EventoReservaCreada};

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

/// Which event a notification was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum TipoNotificacion {
    /// `EventoReservaCreada`.
    Creada,
    /// `EventoReservaAprobada`.
    Aprobada,
    /// `EventoReservaCancelada`.
    Cancelada,
    /// `EventoReservaPagada`.
    Pagada,
}

/// One notification sent, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificacionEnviada {
    /// The id of the event it was sent for (the envelope's id): what the inbox deduplicates
    /// on, and the idempotency key to give a mail gateway.
    pub id_mensaje: String,
    /// The reservation.
    pub id_reserva: String,
    /// Which event.
    pub tipo: TipoNotificacion,
    /// Its position among the reservation's notifications, from 1, in the order they were
    /// handled (so the order of a reservation's events can be checked after the fact).
    pub secuencia: u32,
    /// When it was recorded, epoch milliseconds (the handling process's clock).
    pub registrada_en: i64,
}

/// The notifications sent about one reservation, in the order they were handled (aggregate
/// root of the notification service's record). Keyed by reservation, so one read answers
/// "what was this reservation notified of", on every store, through the generic repository.
#[derive(Debug, Clone, Serialize, Deserialize, seedwork::AggregateRoot)]
pub struct NotificacionesReserva {
    #[aggregate(id)]
    id_reserva: String,
    enviadas: Vec<NotificacionEnviada>,
    #[serde(skip)]
    state: AggregateState,
}

impl NotificacionesReserva {
    /// The notifications, in the order they were handled.
    pub fn enviadas(&self) -> &[NotificacionEnviada] {
        &self.enviadas
    }

    fn anotar(&mut self, id_mensaje: &str, tipo: TipoNotificacion) {
        let secuencia = u32::try_from(self.enviadas.len() + 1).unwrap_or(u32::MAX);
        self.enviadas.push(NotificacionEnviada {
            id_mensaje: id_mensaje.to_string(),
            id_reserva: self.id_reserva.clone(),
            tipo,
            secuencia,
            registrada_en: seedwork::messaging::now_millis(),
        });
    }
}

/// The record, as provided to the bus.
pub type Registro = Dep<dyn Repository<NotificacionesReserva>>;

/// The notifications recorded for a reservation, in the order they were handled (empty when
/// none was).
#[derive(Debug, Clone, Query)]
#[query(output = Vec<NotificacionEnviada>)]
pub struct ObtenerNotificaciones {
    /// The reservation.
    pub id_reserva: String,
}

#[seedwork::query_handler]
async fn obtener_notificaciones(
    query: ObtenerNotificaciones,
    registro: Registro,
) -> Result<Vec<NotificacionEnviada>> {
    Ok(registro
        .get(&query.id_reserva)
        .await?
        .map(|r| r.enviadas)
        .unwrap_or_default())
}

/// Records the notification for the event `id_mensaje` in the unit of work that also holds
/// the inbox entry, so both commit together (see the module's docs).
async fn registrar(
    uow: &mut UnitOfWork,
    registro: &Registro,
    id_reserva: &str,
    id_mensaje: &str,
    tipo: TipoNotificacion,
) -> Result<()> {
    if let Some(mut log) = registro
        .get_for_update(uow, &id_reserva.to_string())
        .await?
    {
        log.anotar(id_mensaje, tipo);
        return registro.update(uow, &mut log).await;
    }
    let mut log = NotificacionesReserva {
        id_reserva: id_reserva.to_string(),
        enviadas: Vec::new(),
        state: AggregateState::new(),
    };
    log.anotar(id_mensaje, tipo);
    match registro.add(uow, &mut log).await {
        // Another transaction recorded this reservation's first notification meanwhile (two
        // notifiers, a Key_Shared hand-over): append to that record instead.
        Err(Error::Conflict { .. }) => {
            let mut log = registro
                .get_for_update(uow, &id_reserva.to_string())
                .await?
                .ok_or_else(|| Error::not_found("NotificacionesReserva", id_reserva))?;
            log.anotar(id_mensaje, tipo);
            registro.update(uow, &mut log).await
        }
        other => other,
    }
}

/// Every event of a reservation's life (`ciclo-reserva`), one handler for the four types.
#[seedwork::message_handler]
async fn notificar(
    m: Envelope<EventoReserva>,
    uow: &mut UnitOfWork,
    correo: Correo,
    registro: Registro,
) -> Result<()> {
    let (id_reserva, tipo, notificacion) = match &m.data {
        EventoReserva::Creada(e) => (
            &e.id_reserva,
            TipoNotificacion::Creada,
            notificacion_reserva_creada(e),
        ),
        EventoReserva::Aprobada(e) => (
            &e.id_reserva,
            TipoNotificacion::Aprobada,
            notificacion_cambio(&e.id_reserva, "Aprobada", e.fecha_actualizacion),
        ),
        EventoReserva::Cancelada(e) => (
            &e.id_reserva,
            TipoNotificacion::Cancelada,
            notificacion_cambio(&e.id_reserva, "Cancelada", e.fecha_actualizacion),
        ),
        EventoReserva::Pagada(e) => (
            &e.id_reserva,
            TipoNotificacion::Pagada,
            notificacion_cambio(&e.id_reserva, "Pagada", e.fecha_actualizacion),
        ),
        // The saga answers a refused approval by cancelling the reservation, which is
        // notified; the refusal itself is not news for the client.
        EventoReserva::AprobacionFallida(_) => return Ok(()),
    };
    registrar(uow, &registro, id_reserva, &m.id, tipo).await?;
    correo.enviar(&notificacion).await
}
