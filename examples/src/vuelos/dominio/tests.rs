use chrono::{Duration, Utc};
use seedwork::domain::DomainError;
use seedwork::testing::fixtures::AggregateFixture;

use super::*;

fn aeropuerto(codigo: &str) -> Aeropuerto {
    Aeropuerto {
        codigo: Codigo::new(codigo).unwrap(),
        nombre: format!("Aeropuerto {codigo}"),
    }
}

fn itinerario(origen: &str, destino: &str) -> Itinerario {
    let salida = Utc::now();
    Itinerario {
        odos: vec![Odo {
            segmentos: vec![Segmento {
                legs: vec![Leg {
                    fecha_salida: salida,
                    fecha_llegada: salida + Duration::hours(2),
                    origen: aeropuerto(origen),
                    destino: aeropuerto(destino),
                }],
            }],
        }],
    }
}

fn reserva() -> Reserva {
    Reserva::crear(
        "r-1".into(),
        "c-1".into(),
        vec![itinerario("BOG", "JFK")],
        Utc::now(),
        Utc::now(),
    )
    .unwrap()
}

#[test]
fn creating_records_reserva_creada_in_pendiente() {
    let mut reserva = reserva();
    assert_eq!(reserva.estado(), EstadoReserva::Pendiente);
    let events = seedwork::domain::AggregateRoot::take_events(&mut reserva);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_name(), "ReservaCreada");
}

#[test]
fn the_business_rules_refuse_bad_reservations() {
    let now = Utc::now();
    let sin_itinerarios = Reserva::crear("r".into(), "c".into(), vec![], now, now).unwrap_err();
    assert!(matches!(
        sin_itinerarios,
        DomainError::BusinessRule {
            rule: "MinimoUnItinerario",
            ..
        }
    ));
    let misma_ruta = Reserva::crear(
        "r".into(),
        "c".into(),
        vec![itinerario("BOG", "BOG")],
        now,
        now,
    )
    .unwrap_err();
    assert!(matches!(
        misma_ruta,
        DomainError::BusinessRule {
            rule: "RutaValida",
            ..
        }
    ));
    let vacio = Reserva::crear(
        "r".into(),
        "c".into(),
        vec![Itinerario { odos: vec![] }],
        now,
        now,
    )
    .unwrap_err();
    assert!(matches!(
        vacio,
        DomainError::BusinessRule {
            rule: "ItinerarioConVuelos",
            ..
        }
    ));
}

#[test]
fn the_tutorials_own_airport_codes_are_accepted() {
    assert!(Codigo::new("sasads").is_ok());
    assert!(Codigo::new("  ").is_err());
}

#[test]
fn approve_then_pay() {
    AggregateFixture::given(reserva())
        .when(|r| r.aprobar())
        .then_event_names(&["ReservaAprobada"])
        .then_state(|r| assert_eq!(r.estado(), EstadoReserva::Aprobada));
    let mut aprobada = reserva();
    aprobada.aprobar().unwrap();
    AggregateFixture::given(aprobada)
        .when(|r| r.pagar())
        .then_event(|e: &ReservaPagada| assert_eq!(e.id_reserva, "r-1"))
        .then_state(|r| assert_eq!(r.estado(), EstadoReserva::Pagada));
}

#[test]
fn illegal_transitions_are_domain_errors() {
    AggregateFixture::given(reserva())
        .when(|r| r.pagar())
        .then_error(|e| {
            assert!(
                matches!(
                    e,
                    DomainError::InvalidTransition {
                        action: "pagar",
                        ..
                    }
                ),
                "{e:?}"
            )
        });
    let mut cancelada = reserva();
    cancelada.cancelar().unwrap();
    for action in [Reserva::pagar, Reserva::aprobar, Reserva::cancelar] {
        AggregateFixture::given(cancelada.clone())
            .when(action)
            .then_error(|e| assert_eq!(e.kind(), seedwork::ErrorKind::Conflict))
            .then_state(|r| assert_eq!(r.estado(), EstadoReserva::Cancelada));
    }
}

#[test]
fn replaying_the_recorded_events_rebuilds_the_same_reservation() {
    use seedwork::domain::AggregateRoot;
    use seedwork::eventsourcing::EventSourced;

    let mut reserva = reserva();
    reserva.aprobar().unwrap();
    reserva.pagar().unwrap();
    let events = reserva.take_events();
    let mut replayed = Reserva::empty(&"r-1".to_string());
    for event in &events {
        let event = event
            .as_any()
            .downcast_ref::<EventoReserva>()
            .expect("a reservation records its event enum");
        // Through the stored form, as the event store keeps it.
        let stored: EventoReserva =
            serde_json::from_value(serde_json::to_value(event).unwrap()).unwrap();
        replayed.apply(&stored);
    }
    let names: Vec<&str> = events.iter().map(|e| e.event_name()).collect();
    assert_eq!(names, ["ReservaCreada", "ReservaAprobada", "ReservaPagada"]);
    assert_eq!(
        serde_json::to_value(&replayed).unwrap(),
        serde_json::to_value(&reserva).unwrap()
    );
    assert_eq!(replayed.estado(), EstadoReserva::Pagada);
}
