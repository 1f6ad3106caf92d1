use seedwork::domain::EventMetadata;

#[derive(seedwork::DomainEvent, Debug)]
struct Creada(String, EventMetadata);

fn main() {}
