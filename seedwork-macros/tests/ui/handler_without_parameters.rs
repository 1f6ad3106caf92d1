use seedwork::prelude::*;

#[seedwork::command_handler]
async fn aprobar() -> Result<()> {
    Ok(())
}

fn main() {}
