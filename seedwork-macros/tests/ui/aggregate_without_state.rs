#[derive(seedwork::AggregateRoot)]
struct Reserva {
    id: String,
}

fn main() {}
