//! Faster local-directory reads than `object_store`'s, for keys whose file names are
//! spelled as the keys are: a listing with one `readdir` per directory and one `stat` per
//! file ([`list`]), and a get with one `open` + `read` ([`path_of`] then `std::fs::read`).
//!
//! `object_store`'s local listing follows links through `walkdir` and then checks each entry
//! again (`symlink_metadata`, `is_file`, `metadata`): about seven system calls per version,
//! since Chronos keeps each version in its own directory. Verify, sweep and retention list a
//! whole collection, so at 100,000 versions that listing took as long as reading every
//! payload. Its get hops to a blocking thread twice (open and stat, then seek and read).
//!
//! Same answers as `object_store`, or none: a name whose key spelling could differ from its
//! file name (anything but ASCII letters, digits, `.`, `_`, `-`) makes [`list`] return
//! `None` and [`path_of`] refuse the key, and the caller goes through `object_store`
//! instead. Links are followed; broken ones skipped; an entry that vanishes while listed (a
//! concurrent delete) is skipped; `object_store`'s staging files (`name#123`) are not blobs.

use std::fs::{self, Metadata};
use std::io::ErrorKind as IoKind;
use std::path::{Path, PathBuf};

use chronos_core::{BlobMeta, Timestamp};

/// Every blob under `dir` (relative to `root`, `""` for the root) whose key starts with
/// `prefix`, unsorted; `None` when a name needs `object_store`'s own spelling.
pub(crate) fn list(root: &Path, dir: &str, prefix: &str) -> std::io::Result<Option<Vec<BlobMeta>>> {
    let mut found = Vec::new();
    let start = if dir.is_empty() {
        root.to_path_buf()
    } else {
        root.join(dir)
    };
    let mut stack: Vec<(PathBuf, String)> = vec![(start, dir.to_string())];
    while let Some((path, key)) = stack.pop() {
        let entries = match fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|n| !staging(n)) else {
                continue;
            };
            if !plain(name) {
                return Ok(None);
            }
            let child = if key.is_empty() {
                name.to_string()
            } else {
                format!("{key}/{name}")
            };
            // A file's key is longer than the directories above it: prune subtrees that
            // cannot lead to the prefix.
            if !(child.starts_with(prefix) || prefix.starts_with(&child)) {
                continue;
            }
            let mut ty = match entry.file_type() {
                Ok(t) => t,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            let mut meta: Option<Metadata> = None;
            if ty.is_symlink() {
                match fs::metadata(entry.path()) {
                    Ok(m) => {
                        ty = m.file_type();
                        meta = Some(m);
                    }
                    // Broken: object_store skips it too.
                    Err(_) => continue,
                }
            }
            if ty.is_dir() {
                stack.push((entry.path(), child));
                continue;
            }
            if !ty.is_file() || !child.starts_with(prefix) {
                continue;
            }
            let meta = match meta.map_or_else(|| entry.metadata(), Ok) {
                Ok(m) => m,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            let last_modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| Timestamp::from_millisecond(d.as_millis() as i64).ok())
                .unwrap_or(Timestamp::UNIX_EPOCH);
            found.push(BlobMeta {
                key: child,
                size: meta.len(),
                last_modified,
            });
        }
    }
    Ok(Some(found))
}

/// The file of `key` under `root`, when `key` is spelled as its file name is.
pub(crate) fn path_of(root: &Path, key: &str) -> Option<PathBuf> {
    key.split('/')
        .all(|part| plain(part) && part != "." && part != ".." && !staging(part))
        .then(|| root.join(key))
}

fn gone(e: &std::io::Error) -> bool {
    e.kind() == IoKind::NotFound
}

/// A name spelled the same as a file and as an `object_store` path part.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `object_store`'s staging file of a put in progress: `name#<digits>`.
fn staging(name: &str) -> bool {
    name.split_once('#')
        .is_some_and(|(_, s)| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_files_under_a_prefix_and_refuses_unusual_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "users/a/v0/item.json",
            "users/a/v1/item.json",
            "usersx/b.json",
            "other/c",
        ] {
            let p = root.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, b"{}").unwrap();
        }
        let mut keys: Vec<String> = list(root, "", "users/")
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        keys.sort();
        assert_eq!(keys, ["users/a/v0/item.json", "users/a/v1/item.json"]);
        let partial: Vec<String> = list(root, "", "users")
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(partial.len(), 3, "{partial:?}");
        assert!(list(root, "nope", "nope/").unwrap().unwrap().is_empty());
        fs::write(root.join("users/a/v1/item.json#7"), b"").unwrap();
        assert_eq!(list(root, "users", "users/").unwrap().unwrap().len(), 2);
        fs::write(root.join("users/a/odd name"), b"").unwrap();
        assert!(list(root, "users", "users/").unwrap().is_none());
        assert!(staging("item.json#12") && !staging("item#x"));
        assert_eq!(path_of(root, "a/b.json"), Some(root.join("a/b.json")));
        for odd in ["a/../b", "a//b", "a b", "./a", "a/b#1", ""] {
            assert_eq!(path_of(root, odd), None, "{odd}");
        }
    }
}
