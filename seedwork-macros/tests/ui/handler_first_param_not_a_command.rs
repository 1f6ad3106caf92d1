use seedwork::prelude::*;

struct NoEsComando;

#[seedwork::command_handler]
async fn crear(_: NoEsComando, _: &mut UnitOfWork) -> Result<()> {
    Ok(())
}

fn main() {}
