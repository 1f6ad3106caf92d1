#[derive(serde::Serialize, serde::Deserialize, seedwork::IntegrationEvent)]
#[integration(version = "v1")]
struct Evento {
    id: String,
}

fn main() {}
