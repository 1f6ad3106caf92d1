use seedwork::prelude::*;
use seedwork::Command;

#[derive(Command)]
struct Aprobar;

#[seedwork::command_handler(topic = "x")]
async fn aprobar(_: Aprobar) -> Result<()> {
    Ok(())
}

fn main() {}
