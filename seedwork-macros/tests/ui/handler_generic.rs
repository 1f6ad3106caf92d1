use seedwork::prelude::*;

#[seedwork::command_handler]
async fn aprobar<C: Command<Output = ()>>(_: C) -> Result<()> {
    Ok(())
}

fn main() {}
