//! Value objects of `vuelos`: airports, legs, segments, origin-destination pairs, itineraries.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use seedwork::domain::{DomainError, ValueObject};

/// An airport code. The tutorial's own examples use codes that are not IATA (`"sasads"`), so
/// any non-blank code of up to 16 characters without control characters is accepted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Codigo(String);

impl Codigo {
    /// Validates a code.
    pub fn new(codigo: impl Into<String>) -> Result<Self, DomainError> {
        let codigo = codigo.into();
        let trimmed = codigo.trim();
        if trimmed.is_empty() {
            return Err(DomainError::invalid_value(
                "codigo",
                "an airport code cannot be blank",
            ));
        }
        if trimmed.chars().count() > 16 {
            return Err(DomainError::invalid_value(
                "codigo",
                "an airport code has at most 16 characters",
            ));
        }
        if let Some(c) = trimmed.chars().find(|c| c.is_control()) {
            return Err(DomainError::invalid_value(
                "codigo",
                format!(
                    "an airport code cannot hold control characters (found U+{:04X})",
                    u32::from(c)
                ),
            ));
        }
        Ok(Codigo(trimmed.to_string()))
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Codigo {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, DomainError> {
        Codigo::new(value)
    }
}

impl From<Codigo> for String {
    fn from(codigo: Codigo) -> String {
        codigo.0
    }
}

impl fmt::Display for Codigo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An airport (`Aeropuerto`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aeropuerto {
    /// Its code.
    pub codigo: Codigo,
    /// Its name.
    pub nombre: String,
}

/// One flight between two airports (`Leg`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    /// Departure time (UTC).
    pub fecha_salida: DateTime<Utc>,
    /// Arrival time (UTC).
    pub fecha_llegada: DateTime<Utc>,
    /// Where it departs.
    pub origen: Aeropuerto,
    /// Where it lands.
    pub destino: Aeropuerto,
}

/// Legs flown one after another (`Segmento`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segmento {
    /// The legs, in order.
    pub legs: Vec<Leg>,
}

/// An origin-destination pair (`Odo`): the segments from one to the other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Odo {
    /// The segments, in order.
    pub segmentos: Vec<Segmento>,
}

/// A trip (`Itinerario`): one or more origin-destination pairs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Itinerario {
    /// The origin-destination pairs, in order.
    pub odos: Vec<Odo>,
}

impl Segmento {
    /// Departure airport: the first leg's origin.
    pub fn origen(&self) -> Option<&Aeropuerto> {
        self.legs.first().map(|l| &l.origen)
    }
    /// Arrival airport: the last leg's destination.
    pub fn destino(&self) -> Option<&Aeropuerto> {
        self.legs.last().map(|l| &l.destino)
    }
}

impl Odo {
    /// Departure airport: the first segment's origin.
    pub fn origen(&self) -> Option<&Aeropuerto> {
        self.segmentos.first().and_then(Segmento::origen)
    }
    /// Arrival airport: the last segment's destination.
    pub fn destino(&self) -> Option<&Aeropuerto> {
        self.segmentos.last().and_then(Segmento::destino)
    }
}

impl Itinerario {
    /// Every leg of the itinerary, in order.
    pub fn legs(&self) -> impl Iterator<Item = &Leg> {
        self.odos
            .iter()
            .flat_map(|o| o.segmentos.iter())
            .flat_map(|s| s.legs.iter())
    }
}

impl ValueObject for Aeropuerto {}
impl ValueObject for Leg {}
impl ValueObject for Segmento {}
impl ValueObject for Odo {}
impl ValueObject for Itinerario {}

/// The state of a reservation (`EstadoReserva`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EstadoReserva {
    /// Created, waiting for approval (the initial state).
    Pendiente,
    /// Approved; can be paid or cancelled.
    Aprobada,
    /// Paid; final.
    Pagada,
    /// Cancelled; final.
    Cancelada,
}

impl fmt::Display for EstadoReserva {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EstadoReserva::Pendiente => "Pendiente",
            EstadoReserva::Aprobada => "Aprobada",
            EstadoReserva::Pagada => "Pagada",
            EstadoReserva::Cancelada => "Cancelada",
        })
    }
}
