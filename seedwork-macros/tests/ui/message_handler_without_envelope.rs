use seedwork::prelude::*;

#[derive(serde::Serialize, serde::Deserialize, seedwork::IntegrationEvent)]
#[integration(topic = "t")]
struct Evento {
    id: String,
}

#[seedwork::message_handler]
async fn recibir(_message: Evento, _uow: &mut UnitOfWork) -> Result<()> {
    Ok(())
}

fn main() {}
