#[derive(seedwork::Query)]
struct ObtenerTodo;

fn main() {}
