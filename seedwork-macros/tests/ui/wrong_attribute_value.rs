#[derive(seedwork::Command)]
#[command(output = "String")]
struct Crear;

#[derive(seedwork::Query)]
#[query(output = u32, name = Contar)]
struct Contar;

fn main() {}
