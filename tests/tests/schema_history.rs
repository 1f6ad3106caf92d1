//! The reference system's schema history, checked the way the broker's registry checks it:
//! under the `FULL` strategy `scripts/services` sets on the namespace, each version of a
//! topic's derived schema must follow the previous one (apache-avro's compatibility checker).
#![cfg(feature = "pulsar")]

use alpespartners::vuelos::infraestructura::schema::{v1, v2};
use seedwork::messaging::schema::MessageSchema;
use seedwork_pulsar::compatibility::{check_versions, Compatibility};
use seedwork_pulsar::TopicSchema;

/// The schema the tutorial's Python `EventoReservaCreada` registers (`original-system.md`).
const PYTHON_EVENTO: &str = r#"{"type":"record","name":"EventoReservaCreada","fields":[{"name":"data","type":["null",{"type":"record","name":"ReservaCreadaPayload","fields":[{"name":"id_reserva","type":["null","string"]},{"name":"id_cliente","type":["null","string"]},{"name":"estado","type":["null","string"]},{"name":"fecha_creacion","type":["null","long"]}]}]}]}"#;

fn derived(messages: &[MessageSchema]) -> String {
    TopicSchema::derived(v1::TOPICO_EVENTOS, messages)
        .expect("derives")
        .definition()
        .expect("Avro")
        .to_string()
}

#[test]
fn eventos_reserva_python_then_v1_then_v2_is_a_full_history() {
    let v1 = derived(&[MessageSchema::of::<v1::EventoReservaCreada>()]);
    let v2 = derived(&[
        MessageSchema::of::<v1::EventoReservaCreada>(),
        MessageSchema::of::<v2::EventoReservaCreada>(),
    ]);
    assert!(v2.contains("creada_en"), "{v2}");
    check_versions(&[PYTHON_EVENTO, &v1, &v2], Compatibility::Full)
        .expect("each version follows the previous one under FULL");
    // And in the other order of registration: v2 first, then a Python v1 consumer's schema.
    check_versions(&[&v2, PYTHON_EVENTO], Compatibility::Full)
        .expect("the Python record may follow v2");
}
