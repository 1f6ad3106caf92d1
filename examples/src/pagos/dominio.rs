//! The payment of a reservation, and the rule that refuses one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use seedwork::domain::{AggregateState, BusinessRule, DomainError};

/// Where a payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EstadoPago {
    /// Charged.
    Realizado,
    /// Charged, then given back (the saga's compensation).
    Revertido,
}

/// One payment, one per reservation: its id is the reservation's, so a second charge for the
/// same reservation is a conflict rather than a double charge.
#[derive(Debug, Clone, Serialize, Deserialize, seedwork::AggregateRoot)]
pub struct Pago {
    /// The reservation paid.
    pub id: String,
    /// Amount without VAT.
    pub monto: f64,
    /// VAT.
    pub monto_vat: f64,
    /// Where it is.
    pub estado: EstadoPago,
    /// When it was charged.
    pub fecha_creacion: DateTime<Utc>,
    /// When it last changed.
    pub fecha_actualizacion: DateTime<Utc>,
    #[serde(skip)]
    state: AggregateState,
}

/// The most a single payment may charge (`MontoMaximoPago`): above it the payment fails.
pub const MONTO_MAXIMO: f64 = 10_000.0;

/// A payment is of a positive amount no larger than [`MONTO_MAXIMO`].
pub struct MontoValido(pub f64);

impl BusinessRule for MontoValido {
    fn is_satisfied(&self) -> bool {
        self.0.is_finite() && self.0 > 0.0 && self.0 <= MONTO_MAXIMO
    }

    fn message(&self) -> String {
        format!("El monto del pago debe ser positivo y no superar {MONTO_MAXIMO}")
    }
}

impl Pago {
    /// Charges `monto` (+ `monto_vat`) for reservation `id_reserva`.
    pub fn realizar(id_reserva: String, monto: f64, monto_vat: f64) -> Result<Pago, DomainError> {
        seedwork::domain::check_rule(&MontoValido(monto))?;
        let ahora = Utc::now();
        Ok(Pago {
            id: id_reserva,
            monto,
            monto_vat,
            estado: EstadoPago::Realizado,
            fecha_creacion: ahora,
            fecha_actualizacion: ahora,
            state: AggregateState::new(),
        })
    }

    /// Gives the payment back; a payment given back already stays so.
    pub fn revertir(&mut self) {
        if self.estado == EstadoPago::Realizado {
            self.estado = EstadoPago::Revertido;
            self.fecha_actualizacion = Utc::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_amount_out_of_range_is_refused_by_the_rule() {
        for monto in [0.0, -1.0, MONTO_MAXIMO + 0.01, f64::NAN] {
            let error = Pago::realizar("r".into(), monto, 0.0).expect_err("refused");
            assert!(error.to_string().contains("monto"), "{error}");
        }
        let pago = Pago::realizar("r".into(), MONTO_MAXIMO, 1.0).expect("the limit is allowed");
        assert_eq!(pago.estado, EstadoPago::Realizado);
    }

    #[test]
    fn reverting_twice_is_reverting_once() {
        let mut pago = Pago::realizar("r".into(), 10.0, 1.9).unwrap();
        pago.revertir();
        let primera = pago.fecha_actualizacion;
        pago.revertir();
        assert_eq!(
            (pago.estado, pago.fecha_actualizacion),
            (EstadoPago::Revertido, primera)
        );
    }
}
