//! A behaviour test whose checks depend on a documented semantic difference of cluster mode says so
//! in its name, so that a failure's name alone tells which table row it is about (README,
//! CLUSTERING). Read from the test sources, without a server.
//!
//! A function depends on the difference when its body asks `cluster_mode()` or
//! `counted_subscribers(…)`, or calls a function of its file that does; every test among them must
//! have `cluster_mode` in its name.

use std::{collections::BTreeSet, path::PathBuf};

/// What a test body asks to learn which backend runs it.
const ASKS: [&str; 2] = ["cluster_mode()", "counted_subscribers("];

/// One top-level function of a test file.
struct Function {
    name: String,
    is_test: bool,
    body: String,
}

/// The top-level functions of `source`: each starts at a line `fn …`, `async fn …` or `pub …fn …`
/// at column 0 and ends at the next line that is `}` alone, as rustfmt lays them out. A test is one
/// whose attributes above it include `test]` or `test(` (`#[test]`, `#[tokio::test(…)]`).
fn functions(source: &str) -> Vec<Function> {
    let mut found = Vec::new();
    let mut attributes = String::new();
    let mut current: Option<Function> = None;
    for line in source.lines() {
        if let Some(function) = current.as_mut() {
            function.body.push_str(line);
            function.body.push('\n');
            if line == "}" {
                found.extend(current.take());
            }
            continue;
        }
        if line.starts_with("#[") {
            attributes.push_str(line);
            continue;
        }
        let signature = line.trim_start_matches("pub ").trim_start_matches("async ");
        if let Some(rest) = signature.strip_prefix("fn ") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let is_test = attributes.contains("test]") || attributes.contains("test(");
            current = Some(Function {
                name,
                is_test,
                body: String::new(),
            });
            // A one-line function closes on its own line.
            if line.ends_with('}') {
                found.extend(current.take());
            }
        }
        if !line.starts_with("///") && !line.starts_with("//") {
            attributes.clear();
        }
    }
    found
}

/// Whether `body` calls the function `name`: `name(` not preceded by a letter, digit or `_`, so
/// that `ask` is not found in `task(`.
fn calls(body: &str, name: &str) -> bool {
    let call = format!("{name}(");
    body.match_indices(&call).any(|(at, _)| {
        !body[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// The names of the functions that depend on the difference, directly or through another.
fn dependent(functions: &[Function]) -> BTreeSet<String> {
    let mut dependent: BTreeSet<String> = functions
        .iter()
        .filter(|f| ASKS.iter().any(|ask| f.body.contains(ask)))
        .map(|f| f.name.clone())
        .collect();
    loop {
        let more: Vec<String> = functions
            .iter()
            .filter(|f| !dependent.contains(&f.name))
            .filter(|f| dependent.iter().any(|name| calls(&f.body, name)))
            .map(|f| f.name.clone())
            .collect();
        if more.is_empty() {
            return dependent;
        }
        dependent.extend(more);
    }
}

#[test]
fn a_test_that_depends_on_a_cluster_mode_difference_names_cluster_mode() {
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut unnamed = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&tests).expect("read tests/") {
        let path = entry.expect("a directory entry").path();
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // cluster.rs is the cluster-only suite, and this file names the asks.
        if !file.ends_with(".rs") || file == "cluster.rs" || file == "naming.rs" {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("read a test file");
        let functions = functions(&source);
        let dependent = dependent(&functions);
        for function in functions.iter().filter(|f| f.is_test) {
            if dependent.contains(&function.name) {
                checked += 1;
                if !function.name.contains("cluster_mode") {
                    unnamed.push(format!("{file}: {}", function.name));
                }
            }
        }
    }
    assert!(
        checked > 0,
        "no test depends on a difference: the reading of the sources broke"
    );
    assert!(
        unnamed.is_empty(),
        "these tests depend on a cluster-mode difference but do not say so in their names: \
         {unnamed:#?}"
    );
}

#[test]
fn the_reading_finds_tests_and_what_they_call() {
    let source = "\
/// A helper.
async fn helper() {
    if cluster_mode() {}
}

#[tokio::test]
async fn uses_the_helper() {
    helper().await;
}

fn unhelper() {}

#[test]
fn calls_another() {
    unhelper();
}

#[test]
fn plain() {
    let x = 1;
}
";
    let functions = functions(source);
    let names: Vec<(&str, bool)> = functions
        .iter()
        .map(|f| (f.name.as_str(), f.is_test))
        .collect();
    assert_eq!(
        names,
        [
            ("helper", false),
            ("uses_the_helper", true),
            ("unhelper", false),
            ("calls_another", true),
            ("plain", true)
        ]
    );
    let dependent = dependent(&functions);
    assert_eq!(
        dependent.into_iter().collect::<Vec<_>>(),
        ["helper", "uses_the_helper"]
    );
}
