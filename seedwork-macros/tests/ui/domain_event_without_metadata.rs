#[derive(seedwork::DomainEvent, Debug)]
struct Creada {
    id: String,
}

fn main() {}
