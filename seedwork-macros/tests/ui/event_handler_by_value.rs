use seedwork::prelude::*;
use seedwork::DomainEvent;

#[derive(DomainEvent, Debug)]
struct Creada {
    metadata: EventMetadata,
}

#[seedwork::domain_event_handler]
async fn reaccionar(_event: Creada, _uow: &mut UnitOfWork) -> Result<()> {
    Ok(())
}

fn main() {}
