//! Byte streams: the shared [`Budget`] every decompressed byte is charged
//! to, compression detection by magic bytes, and metered decoders.

use std::{
    cell::{Cell, RefCell},
    io::{self, Read},
    rc::Rc,
};

use crate::{ExtractError, Limits, limits::RATIO_GRACE_BYTES, model::Compression};

/// Artifact-wide counters, shared (by reference) by every stream of one
/// extraction.
///
/// Readers report a limit violation as an opaque [`io::Error`] (decoders
/// and the tar reader pass it through unchanged or wrapped); the precise
/// [`ExtractError`] is parked here and recovered by [`Budget::error`].
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) limits: Limits,
    total: Cell<u64>,
    entries: Cell<u64>,
    tripped: RefCell<Option<ExtractError>>,
}

impl Budget {
    pub(crate) fn new(limits: &Limits) -> Budget {
        Budget {
            limits: limits.clone(),
            total: Cell::new(0),
            entries: Cell::new(0),
            tripped: RefCell::new(None),
        }
    }

    /// Records `err` as the reason the current read fails and returns an
    /// I/O error to propagate.
    pub(crate) fn trip(&self, err: ExtractError) -> io::Error {
        let message = err.to_string();
        self.tripped.borrow_mut().get_or_insert(err);
        io::Error::other(message)
    }

    /// Charges `n` uncompressed bytes against [`Limits::max_total_bytes`].
    fn charge(&self, n: u64) -> io::Result<()> {
        let total = self.total.get().saturating_add(n);
        self.total.set(total);
        if total > self.limits.max_total_bytes {
            return Err(self.trip(ExtractError::TooLarge {
                limit: self.limits.max_total_bytes,
            }));
        }
        Ok(())
    }

    /// Counts one archive entry against [`Limits::max_entries`].
    pub(crate) fn count_entry(&self) -> Result<(), ExtractError> {
        let n = self.entries.get() + 1;
        self.entries.set(n);
        if n > self.limits.max_entries {
            return Err(ExtractError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    /// Turns an I/O error from any stream into the [`ExtractError`] that
    /// caused it: a parked limit violation, truncation, or a read error.
    pub(crate) fn error(&self, err: io::Error) -> ExtractError {
        if let Some(parked) = self.tripped.borrow_mut().take() {
            return parked;
        }
        if err.kind() == io::ErrorKind::UnexpectedEof {
            return ExtractError::Truncated;
        }
        ExtractError::Read(err)
    }
}

/// Counts bytes read through it into a shared cell (the compressed side of
/// a decoder, for the ratio check).
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Charges every byte read through it to the [`Budget`] and, below a
/// decoder, enforces [`Limits::max_ratio`].
struct Metered<'b, R> {
    inner: R,
    budget: &'b Budget,
    compressed: Option<Rc<Cell<u64>>>,
    produced: u64,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget.charge(n as u64)?;
        self.produced += n as u64;
        if let Some(compressed) = &self.compressed {
            let limit = self.budget.limits.max_ratio;
            if self.produced > RATIO_GRACE_BYTES
                && self.produced > compressed.get().max(1).saturating_mul(limit)
            {
                return Err(self.budget.trip(ExtractError::RatioExceeded { limit }));
            }
        }
        Ok(n)
    }
}

/// Reads up to `buf.len()` bytes, fewer only at end of stream.
pub(crate) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Detects gzip or zstd by magic bytes and returns the decoded, metered
/// stream. Uncompressed input is metered too.
pub(crate) fn decode<'a, R: Read + 'a>(
    mut raw: R,
    budget: &'a Budget,
) -> Result<(Compression, Box<dyn Read + 'a>), ExtractError> {
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut raw, &mut magic).map_err(|e| budget.error(e))?;
    let compression = match &magic[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    };
    let raw = io::Cursor::new(magic[..n].to_vec()).chain(raw);
    let count = Rc::new(Cell::new(0));
    let counted = Counting {
        inner: raw,
        count: Rc::clone(&count),
    };
    let decoded: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(counted),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(counted)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(counted).map_err(|e| budget.error(e))?)
        }
    };
    let metered = Metered {
        inner: decoded,
        budget,
        compressed: (compression != Compression::None).then_some(count),
        produced: 0,
    };
    Ok((compression, Box::new(metered)))
}

/// Peeks at the first tar block of `stream`: whether it carries the ustar
/// magic, and the stream with the peeked bytes put back.
pub(crate) fn sniff_tar<'a>(
    mut stream: Box<dyn Read + 'a>,
    budget: &Budget,
) -> Result<(bool, Box<dyn Read + 'a>), ExtractError> {
    let mut block = vec![0u8; 512];
    let n = read_up_to(&mut stream, &mut block).map_err(|e| budget.error(e))?;
    block.truncate(n);
    let is_tar = n == 512 && &block[257..262] == b"ustar";
    Ok((is_tar, Box::new(io::Cursor::new(block).chain(stream))))
}

/// Reads and discards exactly `n` bytes.
pub(crate) fn skip(r: &mut impl Read, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut r.take(n), &mut io::sink())?;
    if copied < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}
