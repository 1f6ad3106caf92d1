use seedwork::prelude::*;
use seedwork::{DomainEvent, IntegrationEvent};

#[derive(DomainEvent, Debug)]
struct Creada {
    metadata: EventMetadata,
}

#[derive(serde::Serialize, serde::Deserialize, IntegrationEvent)]
#[integration(topic = "t")]
struct Publicada {}

#[seedwork::integration_mapper]
async fn publicar(_: &Creada) -> Publicada {
    Publicada {}
}

fn main() {}
