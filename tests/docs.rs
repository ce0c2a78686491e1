//! The documentation of settings stays identical to the settings themselves.

use std::collections::BTreeMap;
use std::path::Path;

use watchdog::config::{Config, PREFIX};

fn read(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

fn defaults() -> BTreeMap<String, String> {
    Config::default()
        .entries()
        .into_iter()
        .map(|(key, value)| (format!("{PREFIX}{}", key.to_ascii_uppercase()), value))
        .collect()
}

#[test]
fn the_example_env_file_lists_every_setting_with_its_default() {
    let example: BTreeMap<String, String> = read(".env.watchdog.example")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (name, value) = line.split_once('=').expect("NAME=value");
            (name.to_string(), value.to_string())
        })
        .collect();
    assert_eq!(example, defaults());
}

#[test]
fn the_readme_table_lists_every_setting_with_its_default() {
    let readme = read("README.md");
    for (name, default) in defaults() {
        let shown = if default.is_empty() {
            "(empty)".to_string()
        } else {
            format!("`{default}`")
        };
        let row = format!("| `{name}` | {shown} |");
        assert!(readme.contains(&row), "README.md has no row starting {row}");
    }
}
