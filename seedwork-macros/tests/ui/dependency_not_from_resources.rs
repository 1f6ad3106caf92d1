use seedwork::prelude::*;
use seedwork::Command;

#[derive(Command)]
struct Crear;

struct Repositorio;

#[seedwork::command_handler]
async fn crear(_: Crear, repo: Repositorio) -> Result<()> {
    let _ = repo;
    Ok(())
}

fn main() {}
