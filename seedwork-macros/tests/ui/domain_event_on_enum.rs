use seedwork::domain::EventMetadata;

#[derive(seedwork::DomainEvent, Debug)]
enum Evento {
    Creada { metadata: EventMetadata },
    Cancelada { metadata: EventMetadata },
}

fn main() {}
