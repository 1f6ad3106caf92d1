//! Where things are, and what a report says about its run (command line, commit, date).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace this package was built in.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else the one this binary was built into
/// (`<target>/release/load`), else the workspace's `target`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let built_in = std::env::current_exe().ok().and_then(|exe| {
        let profile = exe.parent()?;
        let name = profile.file_name()?.to_str()?;
        matches!(name, "release" | "debug").then(|| profile.parent().map(Path::to_path_buf))?
    });
    built_in.unwrap_or_else(|| workspace_root().join("target"))
}

/// The example binary of a release build.
pub fn default_binary() -> PathBuf {
    target_dir().join("release/examples/alpespartners")
}

/// `git rev-parse --short HEAD` of the workspace (`-dirty` when it has changes), if git
/// answers.
pub fn git_commit() -> Option<String> {
    let root = workspace_root();
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).filter(|c| !c.is_empty())?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|status| !status.is_empty());
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

/// The command line as it can be typed again: `load` and the arguments, quoted for a shell
/// where needed, passwords in URLs hidden.
pub fn command_line(args: impl IntoIterator<Item = String>) -> String {
    std::iter::once("load".to_string())
        .chain(
            args.into_iter()
                .map(|arg| shell_quote(&redact_password(&arg))),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// `arg` as one shell word.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=,@%+".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// A URL's password replaced by `***` (`postgres://user:secret@host` → `postgres://user:***@host`).
pub fn redact_password(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let authority_start = scheme_end + 3;
    let rest = &text[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return text.to_string();
    };
    let Some(colon) = authority[..at].find(':') else {
        return text.to_string();
    };
    format!(
        "{}{}:***{}",
        &text[..authority_start],
        &authority[..colon],
        &text[authority_start + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_password("postgres://seedwork:secret@127.0.0.1:5432/seedwork"),
            "postgres://seedwork:***@127.0.0.1:5432/seedwork"
        );
        assert_eq!(
            redact_password("postgres://127.0.0.1/db?user=a"),
            "postgres://127.0.0.1/db?user=a"
        );
        assert_eq!(redact_password("sqlite"), "sqlite");
    }

    #[test]
    fn the_command_line_can_be_typed_again() {
        let line = command_line(
            ["sync", "--connections", "1,8", "--out", "a dir"]
                .into_iter()
                .map(String::from),
        );
        assert_eq!(line, "load sync --connections 1,8 --out 'a dir'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
