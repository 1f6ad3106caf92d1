use seedwork::Command;

#[derive(Command)]
struct Aprobar;

#[seedwork::command_handler]
async fn aprobar(_: Aprobar) {}

fn main() {}
