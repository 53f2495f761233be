//! What the Debian package installs from `dist/`: the committed completions and man pages are
//! what the binary prints now (`bash dist/generate` rewrites them), there is a page for every
//! command, and README quotes the systemd units as they are. The package itself is built and
//! its contents checked by `.ci/package`.
#![cfg(feature = "emulator")]

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory as _;

fn dist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dist")
}

fn facesync(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_facesync"))
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "facesync {args:?} failed");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn assert_current(file: &Path, printed: &str) {
    let committed = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}; run `bash dist/generate`", file.display()));
    assert!(
        committed == printed,
        "{} is out of date with the binary's commands and options: run `bash dist/generate` \
         and commit what it writes",
        file.display()
    );
}

#[test]
fn the_committed_completions_are_what_the_binary_prints() {
    for (shell, file) in [
        ("bash", "facesync.bash"),
        ("zsh", "_facesync"),
        ("fish", "facesync.fish"),
    ] {
        assert_current(
            &dist().join("completions").join(file),
            &facesync(&["completions", shell]),
        );
    }
}

#[test]
fn every_command_has_a_committed_man_page_and_each_is_current() {
    assert_current(&dist().join("man/facesync.1"), &facesync(&["man"]));
    let mut expected = vec!["facesync.1".to_string()];
    for command in facesync::cli::Cli::command().get_subcommands() {
        let name = command.get_name();
        let file = format!("facesync-{name}.1");
        assert_current(&dist().join("man").join(&file), &facesync(&["man", name]));
        expected.push(file);
    }
    let mut found: Vec<String> = std::fs::read_dir(dist().join("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    expected.sort();
    found.sort();
    assert_eq!(found, expected, "one page per command, no stale page");
}

#[test]
fn readme_quotes_the_systemd_units_as_they_are() {
    let readme = std::fs::read_to_string(dist().join("../README.md")).unwrap();
    for unit in ["facesync.service", "facesync.timer"] {
        let text = std::fs::read_to_string(dist().join(unit)).unwrap();
        let quoted: String = text
            .lines()
            .map(|l| {
                if l.is_empty() {
                    "\n".to_string()
                } else {
                    format!("    {l}\n")
                }
            })
            .collect();
        assert!(
            readme.contains(&quoted),
            "README.md does not quote dist/{unit} as it is (indented by four spaces)"
        );
    }
}
