//! The docs cannot drift from the code: the settings table in docs/configuration.md is generated from
//! `Config` (its flags, variables, defaults and doc comments), and no page outside the renames table
//! names a flag by its old `-ms`/`-secs` name.
//!
//! `SWITCHYARD_UPDATE_DOCS=1 cargo test --test docs` rewrites the table after a setting changes.

use std::path::{Path, PathBuf};

use clap::{Arg, Args, Command};
use switchyard::config::Config;

const BEGIN: &str = "<!-- settings: begin (generated from Config; SWITCHYARD_UPDATE_DOCS=1 cargo test --test docs rewrites it) -->";
const END: &str = "<!-- settings: end -->";

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One row per setting, in the order of `Config`.
fn settings_table() -> String {
    let command = Config::augment_args(Command::new("serve"));
    let mut table = String::from(
        "| file key | flag | variable | default | what it sets |\n|---|---|---|---|---|\n",
    );
    for arg in command.get_arguments() {
        let key = arg.get_id().as_str();
        let long = arg.get_long().expect("every setting has a flag");
        let flag = match arg.get_value_delimiter() {
            Some(_) => format!("`--{long}` (repeatable)"),
            None => format!("`--{long}`"),
        };
        let variable = match (arg.get_env(), arg.get_value_delimiter()) {
            (Some(env), Some(delimiter)) => {
                format!("`{}` ({delimiter}-separated)", env.to_string_lossy())
            }
            (Some(env), None) => format!("`{}`", env.to_string_lossy()),
            (None, _) => panic!("{key} has no variable"),
        };
        let help = arg
            .get_help()
            .map(ToString::to_string)
            .unwrap_or_else(|| panic!("{key} has no doc comment"));
        assert!(!help.contains('|'), "{key}: a `|` would break the table");
        table.push_str(&format!(
            "| `{key}` | {flag} | {variable} | {} | {help} |\n",
            default_of(arg)
        ));
    }
    table
}

/// The default as written on the command line, with sizes also in KiB, MiB or GiB.
fn default_of(arg: &Arg) -> String {
    let Some(value) = arg.get_default_values().first() else {
        return "none".into();
    };
    let value = value.to_string_lossy();
    let size = value
        .parse::<u64>()
        .ok()
        .filter(|_| arg.get_id().as_str().ends_with("_bytes"))
        .and_then(|bytes| {
            [(30, "GiB"), (20, "MiB"), (10, "KiB")]
                .into_iter()
                .find(|(shift, _)| bytes >= 1 << shift && bytes % (1 << shift) == 0)
                .map(|(shift, unit)| format!(" ({} {unit})", bytes >> shift))
        });
    format!("`{value}`{}", size.unwrap_or_default())
}

/// The settings table in docs/configuration.md is the one `Config` generates.
#[test]
fn the_settings_table_is_generated_from_config() {
    let path = repository().join("docs/configuration.md");
    let text = std::fs::read_to_string(&path).expect("read docs/configuration.md");
    let start = text.find(BEGIN).expect("the table's begin marker") + BEGIN.len();
    let end = start + text[start..].find(END).expect("the table's end marker");
    let expected = format!("\n{}", settings_table());
    if std::env::var_os("SWITCHYARD_UPDATE_DOCS").is_some() {
        let updated = format!("{}{expected}{}", &text[..start], &text[end..]);
        std::fs::write(&path, updated).expect("write docs/configuration.md");
        return;
    }
    assert!(
        text[start..end] == expected,
        "docs/configuration.md's settings table is out of date: run \
         SWITCHYARD_UPDATE_DOCS=1 cargo test --test docs\n\nexpected:\n{expected}"
    );
}

/// Markdown files of the repository outside `target`, `node_modules` and dot-directories.
fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a directory") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            markdown_files(&path, found);
        } else if name.ends_with(".md") {
            found.push(path);
        }
    }
}

/// The old names of renamed flags (`--shutdown-grace-secs`) appear only on the configuration page,
/// which lists the renames.
#[test]
fn no_other_page_names_a_flag_by_its_old_name() {
    let mut pages = Vec::new();
    markdown_files(&repository(), &mut pages);
    assert!(pages.len() > 5, "found only {pages:?}");
    for page in pages
        .iter()
        .filter(|p| !p.ends_with("docs/configuration.md"))
    {
        let text = std::fs::read_to_string(page).expect("read a page");
        for (number, line) in text.lines().enumerate() {
            let old = line.split("--").skip(1).find_map(|after| {
                let flag: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                    .collect();
                (flag.ends_with("-ms") || flag.ends_with("-secs")).then_some(flag)
            });
            if let Some(flag) = old {
                panic!(
                    "{}:{}: --{flag} is the old name of a renamed flag: {line}",
                    page.display(),
                    number + 1
                );
            }
        }
    }
}

/// The example file on the configuration page is a config file the broker accepts.
#[test]
fn the_example_config_file_is_valid() {
    let path = repository().join("docs/configuration.md");
    let text = std::fs::read_to_string(&path).expect("read docs/configuration.md");
    let start = text.find("```toml\n").expect("an example TOML block") + "```toml\n".len();
    let example = &text[start..start + text[start..].find("```").expect("its end")];
    let config = Config::from_toml(example, &path).expect("the example parses");
    config
        .validate()
        .expect("the example is a valid configuration");
    assert!(config.tls_cert.is_some() && config.ready_file.is_some());
}

/// docs/semantics.md's table of reasons lists every reason the broker gives, and no other: it is
/// the contract clients match on.
#[test]
fn the_reasons_table_lists_every_reason() {
    let page =
        std::fs::read_to_string(repository().join("docs/semantics.md")).expect("semantics.md");
    let mut table: Vec<&str> = page
        .lines()
        .skip_while(|line| *line != "### Reasons")
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
        .collect();
    let mut reasons = switchyard::transport::details::REASONS.to_vec();
    table.sort_unstable();
    reasons.sort_unstable();
    assert_eq!(table, reasons);
}
