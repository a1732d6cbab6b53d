//! Tidy checks: rules of the architecture that the compiler does not enforce.
//!
//! 1. Every Rust file starts with a `//!` module doc.
//! 2. Dependencies point down (ARCHITECTURE.md, "Where things go"): every workspace crate has
//!    a layer ([`LAYERS`]; a new crate must be added there), and may depend on the Chronos
//!    crates its layer allows — core on none, stores and feature crates on core only, the
//!    testkit on core and the memory store, the facade on everything below it but never the
//!    testkit, nothing on the CLI. `chronos-core` depends on no driver crate, the feature
//!    crates on no driver either; `chronos-blob` does not use reqwest.
//! 3. Features à la carte ([`check_embedded_tree`], run by `cargo xtask tidy` and `test`):
//!    `chronos` with only `sqlite,fs` pulls in no MongoDB driver, no AWS or Azure code, no
//!    clap, no indicatif.

use std::fs;
use std::path::{Path, PathBuf};

/// Crates no crate in the left column may depend on (normal dependencies).
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "chronos-core",
        &[
            "mongodb",
            "bson",
            "sqlx",
            "rusqlite",
            "object_store",
            "tokio",
            "chronos-testkit",
        ],
    ),
    // reqwest's rustls without a provider would make every reqwest client of an application
    // panic (chronos-blob/src/http.rs; tests/rustls_provider.rs checks the behaviour).
    ("chronos-blob", &["reqwest"]),
    (
        "chronos-analytics",
        &[
            "mongodb",
            "sqlx",
            "object_store",
            "chronos-store-mongo",
            "chronos-store-sqlite",
            "chronos-blob",
        ],
    ),
    (
        "chronos-messaging",
        &[
            "mongodb",
            "sqlx",
            "object_store",
            "chronos-store-mongo",
            "chronos-store-sqlite",
            "chronos-blob",
        ],
    ),
    (
        "chronos-identities",
        &[
            "mongodb",
            "sqlx",
            "object_store",
            "chronos-store-mongo",
            "chronos-store-sqlite",
            "chronos-blob",
        ],
    ),
    (
        "chronos-worker",
        &[
            "mongodb",
            "sqlx",
            "object_store",
            "chronos-store-mongo",
            "chronos-store-sqlite",
            "chronos-blob",
        ],
    ),
];

/// What a workspace crate is, which decides the Chronos crates it may depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    /// `chronos-core`: model, engine, traits.
    Core,
    /// An index, blob or document backend.
    Store,
    /// A feature crate (analytics, messaging, identities, fallback, worker, jobs): works on
    /// every backend through core's traits.
    Feature,
    /// The testkit: suite, faults, models over the memory backend.
    Testkit,
    /// The `chronos` facade.
    Facade,
    /// The `chronos` binary.
    Cli,
    /// Benchmarks and automation.
    Tool,
}

/// Every workspace member and its layer. A crate missing here fails tidy.
const LAYERS: &[(&str, Layer)] = &[
    ("chronos-core", Layer::Core),
    ("chronos-store-memory", Layer::Store),
    ("chronos-store-sqlite", Layer::Store),
    ("chronos-store-mongo", Layer::Store),
    ("chronos-blob", Layer::Store),
    ("chronos-analytics", Layer::Feature),
    ("chronos-messaging", Layer::Feature),
    ("chronos-identities", Layer::Feature),
    ("chronos-fallback", Layer::Feature),
    ("chronos-jobs", Layer::Feature),
    ("chronos-worker", Layer::Feature),
    ("chronos-testkit", Layer::Testkit),
    ("chronos", Layer::Facade),
    ("chronos-cli", Layer::Cli),
    ("chronos-bench", Layer::Tool),
    ("chronos-crash", Layer::Tool),
    ("xtask", Layer::Tool),
];

/// Whether a crate of layer `from` may have `dep` (a Chronos crate of layer `to`) as a normal
/// dependency.
fn may_depend(from: Layer, dep: &str, to: Layer) -> bool {
    use Layer::*;
    match from {
        Core => false,
        Store | Feature => to == Core,
        Testkit => to == Core || dep == "chronos-store-memory",
        Facade => matches!(to, Core | Store | Feature),
        Cli => matches!(to, Core | Store | Feature | Facade),
        Tool => to != Cli && to != Testkit,
    }
}

/// Runs every check; returns the number of Rust files examined or every violation found.
pub(crate) fn check(root: &Path) -> Result<usize, String> {
    let mut problems = Vec::new();
    let files = rust_files(root);
    for f in &files {
        let text = fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if !first.starts_with("//!") {
            problems.push(format!(
                "{}: must start with a `//!` module doc",
                rel(root, f)
            ));
        }
    }
    for (krate, banned) in FORBIDDEN {
        let manifest = root.join(krate).join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest) else {
            continue;
        };
        for dep in normal_dependencies(&text) {
            if banned.contains(&dep.as_str()) {
                problems.push(format!(
                    "{krate} must not depend on {dep} (architecture invariant)"
                ));
            }
        }
    }
    check_layers(root, &mut problems);
    if problems.is_empty() {
        Ok(files.len())
    } else {
        Err(format!(
            "tidy found {} problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
    }
}

/// The layering rule over every workspace member (directories with a `Cargo.toml`).
fn check_layers(root: &Path, problems: &mut Vec<String>) {
    let layer = |name: &str| LAYERS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l);
    let Ok(entries) = fs::read_dir(root) else {
        problems.push(format!("cannot list {}", root.display()));
        return;
    };
    let mut members: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    members.sort();
    for krate in members {
        let Some(from) = layer(&krate) else {
            problems.push(format!(
                "{krate}: unknown crate: give it a layer in xtask/src/tidy.rs (LAYERS) and a \
                 place in ARCHITECTURE.md"
            ));
            continue;
        };
        let Ok(text) = fs::read_to_string(root.join(&krate).join("Cargo.toml")) else {
            continue;
        };
        for dep in normal_dependencies(&text) {
            let Some(to) = layer(&dep) else { continue };
            if !may_depend(from, &dep, to) {
                problems.push(format!(
                    "{krate} ({from:?}) must not depend on {dep} ({to:?}): dependencies point \
                     down (ARCHITECTURE.md, \"Where things go\")"
                ));
            }
        }
    }
}

/// Crates the embedded-only build of the facade must not contain.
const NOT_IN_EMBEDDED: &[&str] = &["mongodb", "bson", "aws", "azure", "clap", "indicatif"];

/// `cargo tree -p chronos --no-default-features --features sqlite,fs -e normal` names none
/// of [`NOT_IN_EMBEDDED`] (as a crate name or a name part: `aws-lc-rs`, `azure_core`).
/// Returns how many crates the tree has.
pub(crate) fn check_embedded_tree(root: &Path) -> Result<usize, String> {
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "tree",
            "-p",
            "chronos",
            "--no-default-features",
            "--features",
            "sqlite,fs",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let names: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let bad: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            n.split(['-', '_'])
                .any(|part| NOT_IN_EMBEDDED.contains(&part))
        })
        .collect();
    if bad.is_empty() {
        Ok(names.len())
    } else {
        Err(format!(
            "chronos with features sqlite,fs must not pull in {}: gate them behind a feature",
            bad.join(", ")
        ))
    }
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if p.is_dir() {
                if !(name.starts_with('.') || name == "target") {
                    stack.push(p);
                }
            } else if name.ends_with(".rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Names in `[dependencies]` (and `[target.*.dependencies]`) of a manifest.
fn normal_dependencies(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_deps = l == "[dependencies]"
                || (l.starts_with("[target.") && l.ends_with(".dependencies]"));
            continue;
        }
        if in_deps && !l.is_empty() && !l.starts_with('#') {
            if let Some((name, _)) = l.split_once('=') {
                // `name.workspace = true` and `name = {…}` both name the crate before any dot.
                let name = name.trim().trim_matches('"');
                out.push(name.split('.').next().unwrap_or(name).to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_is_tidy() {
        let root = crate::workspace_root();
        let n = check(&root).unwrap_or_else(|e| panic!("{e}"));
        assert!(n > 10, "tidy saw only {n} files");
    }

    #[test]
    fn embedded_build_has_no_server_drivers() {
        let root = crate::workspace_root();
        let n = check_embedded_tree(&root).unwrap_or_else(|e| panic!("{e}"));
        assert!(n > 10, "cargo tree listed only {n} crates");
    }

    #[test]
    fn layers_forbid_upward_and_sideways_edges() {
        assert!(may_depend(Layer::Feature, "chronos-core", Layer::Core));
        assert!(!may_depend(
            Layer::Feature,
            "chronos-store-sqlite",
            Layer::Store
        ));
        assert!(!may_depend(Layer::Feature, "chronos", Layer::Facade));
        assert!(!may_depend(
            Layer::Facade,
            "chronos-testkit",
            Layer::Testkit
        ));
        assert!(!may_depend(Layer::Facade, "chronos-cli", Layer::Cli));
        assert!(may_depend(
            Layer::Testkit,
            "chronos-store-memory",
            Layer::Store
        ));
        assert!(!may_depend(
            Layer::Testkit,
            "chronos-store-sqlite",
            Layer::Store
        ));
        assert!(!may_depend(
            Layer::Core,
            "chronos-store-memory",
            Layer::Store
        ));
    }

    #[test]
    fn dependency_parser_sees_normal_deps_only() {
        let m = "[package]\nname = \"x\"\n[dependencies]\nserde.workspace = true\nmongodb = \"3\"\n\
                 [dev-dependencies]\ntokio = \"1\"\n[target.'cfg(unix)'.dependencies]\nsqlx = \"0.8\"\n";
        assert_eq!(normal_dependencies(m), ["serde", "mongodb", "sqlx"]);
    }
}
