//! Tidy checks: rules of the architecture that the compiler does not enforce.
//!
//! 1. Every Rust file starts with a `//!` module doc.
//! 2. Dependencies point down: `chronos-core` depends on no driver crate, and the feature
//!    crates (analytics, messaging, identities) depend on no backend crate; `chronos-blob`
//!    does not use reqwest.

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
];

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
    fn dependency_parser_sees_normal_deps_only() {
        let m = "[package]\nname = \"x\"\n[dependencies]\nserde.workspace = true\nmongodb = \"3\"\n\
                 [dev-dependencies]\ntokio = \"1\"\n[target.'cfg(unix)'.dependencies]\nsqlx = \"0.8\"\n";
        assert_eq!(normal_dependencies(m), ["serde", "mongodb", "sqlx"]);
    }
}
