//! The spool's log file: appends with group commit (one write and one `fdatasync` for every
//! append waiting at that moment), recovery with quarantine of damaged bytes, and atomic
//! rewrites (a temporary file, `fsync`, rename, `fsync` of the directory).
//!
//! One thread owns the file: appends and rewrites are applied in the order they were sent,
//! which is what lets the spool send them while holding its state lock and wait outside it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use chronos_core::{Error, Result};
use tokio::sync::oneshot;

use crate::frame;
use crate::op::Entry;

/// The log's file name inside the spool directory.
pub(crate) const LOG_FILE: &str = "spool.log";
/// Where damaged bytes are kept for inspection.
pub(crate) const QUARANTINE_DIR: &str = "quarantine";

enum Msg {
    Append(Vec<u8>, oneshot::Sender<io::Result<()>>),
    Rewrite(Vec<u8>, oneshot::Sender<io::Result<()>>),
}

/// The appender's handle.
#[derive(Debug, Clone)]
pub(crate) struct Log {
    tx: mpsc::Sender<Msg>,
    size: Arc<AtomicU64>,
}

/// What opening found.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) entries: Vec<Entry>,
    /// Damaged ranges moved to the quarantine directory.
    pub(crate) quarantined: usize,
    /// The file's size as found.
    pub(crate) size: u64,
}

fn io_err(what: &str, path: &Path, e: io::Error) -> Error {
    let msg = format!("fallback spool: {what} {}: {e}", path.display());
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            Error::unavailable(format!("{msg} (the disk is full)"))
        }
        _ => Error::unavailable(msg),
    }
}

/// `fsync` of a directory, so a created or renamed file survives a power loss.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads the log in `dir` (creating the directory), quarantining damaged ranges.
pub(crate) fn recover(dir: &Path) -> Result<Recovered> {
    fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
    let path = dir.join(LOG_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err("cannot read", &path, e)),
    };
    let scan = frame::scan(&bytes);
    let mut damaged = scan.damaged.clone();
    let mut entries = Vec::with_capacity(scan.payloads.len());
    for p in &scan.payloads {
        match serde_json::from_slice::<Entry>(p) {
            Ok(e) => entries.push(e),
            Err(e) => {
                // A frame that checks out but does not parse: written by a newer release, or
                // damage the checksum missed. Kept aside like any other damage.
                let start = p.as_ptr() as usize - bytes.as_ptr() as usize - frame::HEADER;
                tracing::warn!(offset = start, error = %e, "fallback spool: an entry does not parse");
                damaged.push((start, start + frame::HEADER + p.len()));
            }
        }
    }
    if !damaged.is_empty() {
        quarantine(dir, &bytes, &damaged)?;
    }
    Ok(Recovered {
        entries,
        quarantined: damaged.len(),
        size: bytes.len() as u64,
    })
}

fn quarantine(dir: &Path, bytes: &[u8], damaged: &[(usize, usize)]) -> Result<()> {
    let qdir = dir.join(QUARANTINE_DIR);
    fs::create_dir_all(&qdir).map_err(|e| io_err("cannot create", &qdir, e))?;
    let stamp = chronos_core::time::now_ms().as_millisecond();
    for (n, &(start, end)) in damaged.iter().enumerate() {
        let path = qdir.join(format!("{stamp}-{n}-at-{start}.bad"));
        let mut f = File::create(&path).map_err(|e| io_err("cannot create", &path, e))?;
        f.write_all(&bytes[start..end])
            .and_then(|_| f.sync_all())
            .map_err(|e| io_err("cannot write", &path, e))?;
        tracing::error!(offset = start, bytes = end - start, file = %path.display(),
            "fallback spool: damaged bytes (a torn append or corruption) quarantined; the \
             operations they held are not replayed from here");
    }
    sync_dir(&qdir).map_err(|e| io_err("cannot sync", &qdir, e))
}

/// The spool's id from `spool.id`, created (durably) on first use.
pub(crate) fn spool_id(dir: &Path) -> Result<String> {
    let path = dir.join("spool.id");
    match fs::read_to_string(&path) {
        Ok(s) if s.trim().len() == 16 && s.trim().bytes().all(|b| b.is_ascii_hexdigit()) => {
            return Ok(s.trim().to_string())
        }
        Ok(_) => {
            tracing::warn!(file = %path.display(), "fallback spool: spool.id is damaged; a new id is written")
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("cannot read", &path, e)),
    }
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map_err(|e| Error::internal(format!("no random source: {e}")))?;
    let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let tmp = dir.join("spool.id.tmp");
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(id.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        sync_dir(dir)
    };
    write().map_err(|e| io_err("cannot write", &path, e))?;
    Ok(id)
}

/// Replaces the log with `bytes`, atomically.
fn rewrite(dir: &Path, bytes: &[u8]) -> io::Result<File> {
    let tmp = dir.join(format!("{LOG_FILE}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(LOG_FILE))?;
    sync_dir(dir)?;
    OpenOptions::new().append(true).open(dir.join(LOG_FILE))
}

/// The frames of `entries`.
pub(crate) fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let json = serde_json::to_vec(e).expect("spool entries serialize");
        out.extend_from_slice(&frame::encode(&json));
    }
    out
}

impl Log {
    /// Starts the appender over a log rewritten to hold exactly `snapshot`.
    pub(crate) fn start(dir: &Path, snapshot: &[Entry]) -> Result<Self> {
        let bytes = encode(snapshot);
        let file = rewrite(dir, &bytes).map_err(|e| io_err("cannot rewrite", dir, e))?;
        let size = Arc::new(AtomicU64::new(bytes.len() as u64));
        let (tx, rx) = mpsc::channel();
        let dir: PathBuf = dir.to_path_buf();
        std::thread::Builder::new()
            .name("chronos-spool".into())
            .spawn(move || appender(dir, file, rx))
            .map_err(|e| {
                Error::internal(format!("fallback spool: cannot start its thread: {e}"))
            })?;
        Ok(Self { tx, size })
    }

    /// The log's size in bytes, counting appends sent but not yet written.
    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Sends entries to be appended; the receiver says when they are durable.
    pub(crate) fn append(&self, entries: &[Entry]) -> oneshot::Receiver<io::Result<()>> {
        let bytes = encode(entries);
        self.size.fetch_add(bytes.len() as u64, Ordering::AcqRel);
        let (done, rx) = oneshot::channel();
        if let Err(mpsc::SendError(Msg::Append(_, done) | Msg::Rewrite(_, done))) =
            self.tx.send(Msg::Append(bytes, done))
        {
            let _ = done.send(Err(io::Error::other("the spool's thread has stopped")));
        }
        rx
    }

    /// Sends a rewrite of the whole log to exactly `snapshot`.
    pub(crate) fn rewrite(&self, snapshot: &[Entry]) -> oneshot::Receiver<io::Result<()>> {
        let bytes = encode(snapshot);
        // Sent in order with the appends (under the spool's lock), so the size is exact.
        self.size.store(bytes.len() as u64, Ordering::Release);
        let (done, rx) = oneshot::channel();
        if let Err(mpsc::SendError(Msg::Append(_, done) | Msg::Rewrite(_, done))) =
            self.tx.send(Msg::Rewrite(bytes, done))
        {
            let _ = done.send(Err(io::Error::other("the spool's thread has stopped")));
        }
        rx
    }
}

/// Waits for a durability receipt.
pub(crate) async fn durable(rx: oneshot::Receiver<io::Result<()>>, dir: &Path) -> Result<()> {
    match rx.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(io_err("cannot append to", &dir.join(LOG_FILE), e)),
        Err(_) => Err(Error::unavailable("fallback spool: its thread has stopped")),
    }
}

fn appender(dir: PathBuf, mut file: File, rx: mpsc::Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let mut waiting: Vec<oneshot::Sender<io::Result<()>>> = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        for msg in batch {
            match msg {
                Msg::Append(bytes, done) => {
                    buf.extend_from_slice(&bytes);
                    waiting.push(done);
                }
                Msg::Rewrite(bytes, done) => {
                    // Appends sent before the rewrite are in its snapshot's past: flush them
                    // first so their callers learn they are durable.
                    flush(&mut file, &mut buf, &mut waiting);
                    let res = rewrite(&dir, &bytes).map(|f| file = f);
                    let _ = done.send(res);
                }
            }
        }
        flush(&mut file, &mut buf, &mut waiting);
    }
}

fn flush(file: &mut File, buf: &mut Vec<u8>, waiting: &mut Vec<oneshot::Sender<io::Result<()>>>) {
    if waiting.is_empty() {
        return;
    }
    let res = file.write_all(buf).and_then(|_| file.sync_data());
    for done in waiting.drain(..) {
        let _ = done.send(match &res {
            Ok(()) => Ok(()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        });
    }
    buf.clear();
}
