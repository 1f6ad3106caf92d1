//! Two `#[command_handler]`s for one command fail the build, naming both.

use seedwork::application::BuildProblem;
use seedwork::prelude::*;

#[derive(Command)]
struct Aprobar;

#[seedwork::command_handler]
async fn aprobar_primero(_: Aprobar) -> Result<()> {
    Ok(())
}

#[seedwork::command_handler]
async fn aprobar_segundo(_: Aprobar) -> Result<()> {
    Ok(())
}

#[test]
fn duplicate_handlers_are_reported_with_both_names_beside_the_missing_store() {
    let err = Bus::builder().registered().build().unwrap_err();
    let [BuildProblem::MissingStore, BuildProblem::DuplicateHandler {
        type_name,
        first,
        second,
        ..
    }] = err.problems()
    else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(type_name, "Aprobar");
    let mut names = [first.clone(), second.clone()];
    names.sort();
    assert_eq!(
        names,
        [
            "duplicate::aprobar_primero".to_string(),
            "duplicate::aprobar_segundo".to_string()
        ]
    );
}
