use seedwork::prelude::*;
use seedwork::Query;

#[derive(Query)]
#[query(output = u32)]
struct Contar;

#[seedwork::query_handler]
async fn contar(_: Contar, _uow: &mut UnitOfWork) -> Result<u32> {
    Ok(0)
}

fn main() {}
