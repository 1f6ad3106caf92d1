#[derive(seedwork::AggregateRoot)]
struct Reserva {
    codigo: String,
    state: seedwork::domain::AggregateState,
}

fn main() {}
