#[derive(seedwork::Command)]
union Numero {
    entero: u32,
    real: f32,
}

fn main() {}
