//! The messages of `pagos`, on the topics tutorial 8 names. Their Avro schemas are derived
//! from these types; the replies of one topic travel as one union.

use serde::{Deserialize, Serialize};

use seedwork::{AvroSchema, IntegrationCommand, IntegrationEvent};

/// Where the saga asks for payments.
pub const TOPICO_PAGAR: &str = "comando-pagar-reserva";
/// Where the saga asks for a payment back.
pub const TOPICO_REVERTIR: &str = "comando-revertir-pago";
/// Where `pagos` answers.
pub const TOPICO_EVENTOS: &str = "evento-pago";

/// Charge a reservation (`ComandoPagarReserva`, payload `PagarReservaPayload`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationCommand)]
#[integration(topic = "comando-pagar-reserva", name = "ComandoPagarReserva", key = reserva_id)]
#[avro(name = "PagarReservaPayload")]
pub struct ComandoPagarReserva {
    /// The reservation.
    pub reserva_id: String,
    /// Amount without VAT.
    pub monto: f64,
    /// VAT.
    pub monto_vat: f64,
    /// When the reservation was created, epoch milliseconds.
    pub fecha_creacion: i64,
}

/// Give a reservation's payment back (`ComandoRevertirPago`, payload `RevertirPagoPayload`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationCommand)]
#[integration(topic = "comando-revertir-pago", name = "ComandoRevertirPago", key = reserva_id)]
#[avro(name = "RevertirPagoPayload")]
pub struct ComandoRevertirPago {
    /// The reservation.
    pub reserva_id: String,
}

/// The reservation was paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct ReservaPagada {
    /// The payment.
    pub id: String,
    /// The reservation.
    pub reserva_id: String,
    /// Amount without VAT.
    pub monto: f64,
    /// VAT.
    pub monto_vat: f64,
    /// When, epoch milliseconds.
    pub fecha_creacion: i64,
}

/// The payment was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct PagoFallido {
    /// The reservation.
    pub reserva_id: String,
    /// Why.
    pub razon: String,
}

/// The payment was given back (or there was none to give back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct PagoRevertido {
    /// The payment.
    pub id: String,
    /// The reservation.
    pub reserva_id: String,
    /// When, epoch milliseconds.
    pub fecha_actualizacion: i64,
}

/// Everything `pagos` answers on `evento-pago` (the tutorial's `EventoPago`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "evento-pago", key = reserva_id)]
pub enum EventoPago {
    /// Charged.
    ReservaPagada(ReservaPagada),
    /// Refused.
    PagoFallido(PagoFallido),
    /// Given back.
    PagoRevertido(PagoRevertido),
}
