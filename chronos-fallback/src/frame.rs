//! The spool log's framing: `MAGIC` (4 bytes), the payload's length (u32 LE), a CRC-32 of the
//! length and the payload (u32 LE), then the payload (one JSON entry).
//!
//! Reading never fails on bad bytes: a frame whose magic, length or checksum is wrong starts a
//! damaged range, which ends where the next intact frame begins (or at the end of the file).
//! A crash in the middle of an append leaves exactly such a range at the tail; flipped bytes
//! anywhere else cost the frames they touch, never the ones after them.

/// Marks the start of every frame (also what a resync looks for).
pub(crate) const MAGIC: [u8; 4] = *b"CSP1";
/// Bytes before the payload.
pub(crate) const HEADER: usize = 12;
/// The largest payload a frame may carry; a longer length field is damage.
pub(crate) const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

/// One frame around `payload`.
pub(crate) fn encode(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// What reading a log found.
#[derive(Debug, Default)]
pub(crate) struct Scan<'a> {
    /// Intact payloads, in order.
    pub(crate) payloads: Vec<&'a [u8]>,
    /// Damaged byte ranges `(start, end)`, in order.
    pub(crate) damaged: Vec<(usize, usize)>,
}

/// The intact frame starting at `at`, as `(payload, end)`.
fn frame_at(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let head = bytes.get(at..at + HEADER)?;
    if head[..4] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(head[4..8].try_into().ok()?) as usize;
    if len > MAX_PAYLOAD {
        return None;
    }
    let end = at + HEADER + len;
    let payload = bytes.get(at + HEADER..end)?;
    let mut h = crc32fast::Hasher::new();
    h.update(&head[4..8]);
    h.update(payload);
    (h.finalize().to_le_bytes() == head[8..12]).then_some((payload, end))
}

/// Splits a log into intact frames and damaged ranges.
pub(crate) fn scan(bytes: &[u8]) -> Scan<'_> {
    let mut out = Scan::default();
    let mut at = 0;
    while at < bytes.len() {
        if let Some((payload, end)) = frame_at(bytes, at) {
            out.payloads.push(payload);
            at = end;
            continue;
        }
        // Resync: the next position where an intact frame starts.
        let start = at;
        let mut next = at + 1;
        loop {
            match find_magic(bytes, next) {
                Some(p) if frame_at(bytes, p).is_some() => break next = p,
                Some(p) => next = p + 1,
                None => break next = bytes.len(),
            }
        }
        out.damaged.push((start, next));
        at = next;
    }
    out
}

fn find_magic(bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(MAGIC.len())
        .position(|w| w == MAGIC)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn log(entries: &[Vec<u8>]) -> Vec<u8> {
        entries.iter().flat_map(|e| encode(e)).collect()
    }

    #[test]
    fn round_trip() {
        let entries = vec![b"{}".to_vec(), vec![], b"CSP1 inside".to_vec()];
        let bytes = log(&entries);
        let s = scan(&bytes);
        assert!(s.damaged.is_empty());
        assert_eq!(
            s.payloads,
            entries.iter().map(|e| &e[..]).collect::<Vec<_>>()
        );
    }

    proptest! {
        /// A log cut anywhere keeps every frame before the cut and reports the rest of the
        /// file (a torn append) as one damaged range.
        #[test]
        fn torn_tails_keep_every_whole_frame(
            entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..12),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = log(&entries);
            let cut = cut.index(bytes.len());
            let s = scan(&bytes[..cut]);
            let whole = entries.iter().scan(0, |end, e| { *end += HEADER + e.len(); Some(*end) })
                .take_while(|&end| end <= cut).count();
            prop_assert_eq!(s.payloads.len(), whole);
            let kept: usize = entries[..whole].iter().map(|e| HEADER + e.len()).sum();
            if kept < cut {
                prop_assert_eq!(s.damaged, vec![(kept, cut)]);
            } else {
                prop_assert!(s.damaged.is_empty());
            }
        }

        /// A flipped byte costs at most the frame it lands in: every other frame is read.
        #[test]
        fn a_flipped_byte_costs_one_frame(
            entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..12),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let mut bytes = log(&entries);
            let at = at.index(bytes.len());
            bytes[at] ^= flip;
            let s = scan(&bytes);
            prop_assert!(s.payloads.len() + 1 >= entries.len(), "{} of {}", s.payloads.len(), entries.len());
            prop_assert!(s.damaged.len() <= 1);
            for p in &s.payloads {
                prop_assert!(entries.iter().any(|e| &e[..] == *p));
            }
        }
    }
}
