use seedwork::prelude::*;
use seedwork::Command;

#[derive(Command)]
struct Aprobar;

struct Servicio;

impl Servicio {
    #[seedwork::command_handler]
    async fn aprobar(&self, _: Aprobar) -> Result<()> {
        Ok(())
    }
}

fn main() {}
