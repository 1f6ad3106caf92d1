#[derive(serde::Serialize, serde::Deserialize, seedwork::IntegrationEvent)]
#[integration(topic = "eventos-reserva", key = id_reserva)]
struct EventoReservaCreada {
    id: String,
}

fn main() {}
