#[derive(seedwork::Command)]
struct Crear {
    #[command(output = String)]
    id: String,
}

fn main() {}
