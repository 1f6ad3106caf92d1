//! The layer rule of `docs/architecture.md`, checked on the source: a module of `seedwork` names
//! only modules below it (`crate::…` paths, in code, doc links and unit tests alike).

use std::fs;
use std::path::Path;

/// Bottom first: each module may name only those before it.
const LAYERS: [&str; 10] = [
    "error",
    "supervision",
    "domain",
    "messaging",
    "uow",
    "application",
    "eventsourcing",
    "saga",
    "memory",
    "testing",
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| *layer == module)
}

/// The top-level module a source file belongs to (`src/uow/dispatch.rs` → `uow`).
fn owner(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::<module>` the text names.
fn named_modules(text: &str) -> Vec<String> {
    text.match_indices("crate::")
        .filter(|(at, _)| {
            // `seedwork::…` in doctests and `$crate::…` in macros are not this crate's imports.
            let before = &text[..*at];
            !before.ends_with('$') && !before.ends_with(|c: char| c.is_alphanumeric() || c == '_')
        })
        .map(|(at, _)| {
            text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn no_module_names_a_module_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(
        files.len() > 20,
        "the source tree was found ({} files)",
        files.len()
    );
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under src");
        let Some(own) = owner(relative).as_deref().and_then(rank) else {
            continue; // lib.rs wires the layers together
        };
        let text = fs::read_to_string(file).expect("readable source");
        for module in named_modules(&text) {
            if let Some(theirs) = rank(&module) {
                if theirs > own {
                    violations.push(format!("{} names crate::{module}", relative.display()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "upward references:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_an_upward_reference() {
    assert_eq!(
        named_modules("use crate::application::Bus; $crate::x; seedwork::y"),
        ["application"]
    );
}
