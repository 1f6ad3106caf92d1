//! `CoordinadorReservas` (`saga_reservas.py`), as a [`seedwork::saga::Orchestration`]:
//!
//! | step | command | success | failure | compensation |
//! |---|---|---|---|---|
//! | `reserva` | (the API's `CrearReserva`) | `ReservaCreada` | — | `CancelarReserva`, awaited |
//! | `pago` | `PagarReserva` | `ReservaPagada` | `PagoFallido` | `RevertirPago`, awaited |
//! | `gds` | `ConfirmarReserva` | `ReservaConfirmada` | `ConfirmacionFallida` | `RevertirConfirmacion`, awaited |
//! | `aprobacion` | `AprobarReserva` | `ReservaAprobada` | `AprobacionReservaFallida` | — |
//!
//! A failure at a step compensates the steps before it in reverse order, each once; a step with
//! no answer before its deadline compensates itself too (its command may still take effect).
//!
//! Two differences from the tutorial's table, both so that the saga says "compensated" only
//! once everything is undone: the first step awaits the reservation's `ReservaCancelada`, and
//! the approval has no compensation of its own — the tutorial's (`CancelarReserva`) is the
//! first step's, which cancels an approved reservation as well as a pending one, so an
//! approval that took effect after its deadline is undone all the same, by one cancellation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use seedwork::saga::{Orchestration, Reply, Step};

use crate::integracion_gds::infraestructura::schema::{
    ComandoConfirmarReserva, ComandoRevertirConfirmacion, EventoGds,
};
use crate::pagos::infraestructura::schema::{ComandoPagarReserva, ComandoRevertirPago, EventoPago};
use crate::vuelos::infraestructura::schema::v1::{
    ComandoAprobarReserva, ComandoCancelarReserva, EventoReserva,
};

/// The saga's name: its instances, its log and its subscriptions (`saga-reservas`) carry it.
pub const SAGA_RESERVAS: &str = "reservas";

/// How long each step waits for its answer by default.
pub const PLAZO_POR_PASO: Duration = Duration::from_secs(30);

/// What a reservation costs (tutorial 8 sends an amount with the payment and does not say where
/// it comes from; this system charges one flat price).
pub const TARIFA_RESERVA: f64 = 250.0;
/// The VAT charged on top of [`TARIFA_RESERVA`].
pub const IVA: f64 = 0.19;

/// What the coordinator keeps of a reservation between its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SagaReserva {
    /// The reservation.
    pub id_reserva: String,
    /// Its client.
    pub id_cliente: String,
    /// When it was created, epoch milliseconds.
    pub fecha_creacion: i64,
    /// What the payment charges, without VAT.
    pub monto: f64,
    /// The VAT charged.
    pub monto_vat: f64,
    /// Why the last failure happened, as its reply said.
    #[serde(default)]
    pub razon: Option<String>,
}

fn cancelar(saga: &SagaReserva) -> ComandoCancelarReserva {
    ComandoCancelarReserva {
        id_reserva: saga.id_reserva.clone(),
    }
}

/// The reservation saga, each step waiting at most `plazo` for its answer.
pub fn coordinador_reservas(plazo: Duration) -> Orchestration<SagaReserva> {
    Orchestration::new(SAGA_RESERVAS)
        .start_on(|evento: &EventoReserva| match evento {
            EventoReserva::Creada(creada) => Some(SagaReserva {
                id_reserva: creada.id_reserva.clone(),
                id_cliente: creada.id_cliente.clone(),
                fecha_creacion: creada.fecha_creacion,
                monto: TARIFA_RESERVA,
                monto_vat: (TARIFA_RESERVA * IVA * 100.0).round() / 100.0,
                razon: None,
            }),
            _ => None,
        })
        .step(
            Step::new("reserva")
                .compensation(cancelar)
                .on_reply(|evento: &EventoReserva, _: &mut SagaReserva| match evento {
                    EventoReserva::Cancelada(_) => Some(Reply::Compensated),
                    _ => None,
                })
                .await_compensation(),
        )
        .step(
            Step::new("pago")
                .command(|saga: &SagaReserva| ComandoPagarReserva {
                    reserva_id: saga.id_reserva.clone(),
                    monto: saga.monto,
                    monto_vat: saga.monto_vat,
                    fecha_creacion: saga.fecha_creacion,
                })
                .on_reply(|evento: &EventoPago, saga: &mut SagaReserva| match evento {
                    EventoPago::ReservaPagada(_) => Some(Reply::Succeeded),
                    EventoPago::PagoFallido(fallido) => {
                        saga.razon = Some(fallido.razon.clone());
                        Some(Reply::Failed(fallido.razon.clone()))
                    }
                    EventoPago::PagoRevertido(_) => Some(Reply::Compensated),
                })
                .compensation(|saga: &SagaReserva| ComandoRevertirPago {
                    reserva_id: saga.id_reserva.clone(),
                })
                .await_compensation()
                .timeout(plazo),
        )
        .step(
            Step::new("gds")
                .command(|saga: &SagaReserva| ComandoConfirmarReserva {
                    reserva_id: saga.id_reserva.clone(),
                })
                .on_reply(|evento: &EventoGds, saga: &mut SagaReserva| match evento {
                    EventoGds::ReservaConfirmada(_) => Some(Reply::Succeeded),
                    EventoGds::ConfirmacionFallida(fallida) => {
                        saga.razon = Some(fallida.razon.clone());
                        Some(Reply::Failed(fallida.razon.clone()))
                    }
                    EventoGds::ConfirmacionRevertida(_) => Some(Reply::Compensated),
                })
                .compensation(|saga: &SagaReserva| ComandoRevertirConfirmacion {
                    reserva_id: saga.id_reserva.clone(),
                })
                .await_compensation()
                .timeout(plazo),
        )
        .step(
            Step::new("aprobacion")
                .command(|saga: &SagaReserva| ComandoAprobarReserva {
                    id_reserva: saga.id_reserva.clone(),
                })
                .on_reply(
                    |evento: &EventoReserva, saga: &mut SagaReserva| match evento {
                        EventoReserva::Aprobada(_) => Some(Reply::Succeeded),
                        EventoReserva::AprobacionFallida(fallida) => {
                            saga.razon = Some(fallida.razon.clone());
                            Some(Reply::Failed(fallida.razon.clone()))
                        }
                        _ => None,
                    },
                )
                .compensation(cancelar)
                .timeout(plazo),
        )
}
