use seedwork::Command;

#[derive(Command)]
struct Crear;

#[derive(Debug)]
struct MiError;

#[seedwork::command_handler]
async fn crear(_: Crear) -> Result<(), MiError> {
    Err(MiError)
}

fn main() {}
