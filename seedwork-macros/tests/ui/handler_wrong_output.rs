use seedwork::prelude::*;
use seedwork::Command;

#[derive(Command)]
#[command(output = String)]
struct Crear;

#[seedwork::command_handler]
async fn crear(_: Crear) -> Result<u32> {
    Ok(1)
}

fn main() {}
