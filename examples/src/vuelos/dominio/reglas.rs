//! Business rules of `vuelos` (`reglas.py`).

use seedwork::domain::BusinessRule;

use super::objetos_valor::{Itinerario, Leg};

/// A reservation has at least one itinerary (`MinimoUnItinerario`).
pub struct MinimoUnItinerario<'a>(pub &'a [Itinerario]);

impl BusinessRule for MinimoUnItinerario<'_> {
    fn is_satisfied(&self) -> bool {
        !self.0.is_empty()
    }
    fn message(&self) -> String {
        "La reserva debe tener al menos un itinerario".into()
    }
}

/// Every itinerary has at least one leg.
pub struct ItinerarioConVuelos<'a>(pub &'a Itinerario);

impl BusinessRule for ItinerarioConVuelos<'_> {
    fn is_satisfied(&self) -> bool {
        self.0.legs().next().is_some()
    }
    fn message(&self) -> String {
        "Cada itinerario debe tener al menos un vuelo (odos → segmentos → legs)".into()
    }
}

/// A leg's destination differs from its origin (`RutaValida`).
pub struct RutaValida<'a>(pub &'a Leg);

impl BusinessRule for RutaValida<'_> {
    fn is_satisfied(&self) -> bool {
        self.0.origen.codigo != self.0.destino.codigo
    }
    fn message(&self) -> String {
        format!(
            "La ruta no es válida: el origen y el destino son el mismo aeropuerto ({})",
            self.0.origen.codigo
        )
    }
}

/// A leg lands after it departs.
pub struct LlegadaDespuesDeSalida<'a>(pub &'a Leg);

impl BusinessRule for LlegadaDespuesDeSalida<'_> {
    fn is_satisfied(&self) -> bool {
        self.0.fecha_llegada > self.0.fecha_salida
    }
    fn message(&self) -> String {
        "La fecha de llegada debe ser posterior a la fecha de salida".into()
    }
}
