#[derive(seedwork::Command)]
#[command(ouput = String)]
struct Crear;

fn main() {}
