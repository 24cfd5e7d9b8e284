//! A small streaming tar reader with hard limits.
//!
//! The `tar` crate reads GNU long names and PAX headers into memory without
//! a bound, so reading is done here: ustar, GNU (`L`/`K` long names,
//! base-256 sizes) and PAX (`path`, `linkpath`, `size`) are understood;
//! extension headers are capped at [`MAX_EXTENSION_BYTES`]. Data is never
//! buffered by the reader: the caller reads the current entry through
//! [`TarReader::data`], and whatever it leaves is skipped.

use std::io::{self, Read};

use crate::stream::read_up_to;

/// Largest GNU long-name or PAX extension header accepted.
pub(crate) const MAX_EXTENSION_BYTES: u64 = 1024 * 1024;

const BLOCK: u64 = 512;

/// Entry types, from the header's typeflag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TarKind {
    File,
    Hardlink,
    Symlink,
    Dir,
    /// Character or block device, FIFO.
    Special,
    /// Anything else with data (GNU sparse files, volume labels, ...).
    Unsupported(u8),
}

/// One archive entry's header, extensions applied.
#[derive(Debug)]
pub(crate) struct TarEntry {
    pub(crate) path: Vec<u8>,
    pub(crate) link: Vec<u8>,
    pub(crate) kind: TarKind,
    /// Content bytes that follow the header.
    pub(crate) size: u64,
    pub(crate) mode: u32,
    /// Offset of the content in the tar stream.
    pub(crate) data_offset: u64,
}

/// What went wrong reading the archive.
#[derive(Debug)]
pub(crate) enum TarError {
    Io(io::Error),
    Invalid { offset: u64, reason: &'static str },
}

impl From<io::Error> for TarError {
    fn from(e: io::Error) -> TarError {
        TarError::Io(e)
    }
}

/// Streams entries out of a tar archive.
#[derive(Debug)]
pub(crate) struct TarReader<R> {
    inner: R,
    /// Offset in the tar stream.
    pos: u64,
    /// Unread content bytes of the current entry.
    remaining: u64,
    /// Padding after the current entry's content.
    padding: u64,
    finished: bool,
    /// The archive ended at a block boundary without the two zero blocks.
    pub(crate) missing_end_marker: bool,
}

#[derive(Default)]
struct Extensions {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
}

impl<R: Read> TarReader<R> {
    pub(crate) fn new(inner: R) -> TarReader<R> {
        TarReader {
            inner,
            pos: 0,
            remaining: 0,
            padding: 0,
            finished: false,
            missing_end_marker: false,
        }
    }

    /// The next entry, or `None` at the end of the archive.
    pub(crate) fn next_entry(&mut self) -> Result<Option<TarEntry>, TarError> {
        let mut ext = Extensions::default();
        loop {
            if self.finished {
                return Ok(None);
            }
            self.skip_rest()?;
            let offset = self.pos;
            let mut block = [0u8; BLOCK as usize];
            let n = read_up_to(&mut self.inner, &mut block)?;
            self.pos += n as u64;
            if n == 0 {
                self.finished = true;
                self.missing_end_marker = true;
                return Ok(None);
            }
            if n < block.len() {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
            if block.iter().all(|&b| b == 0) {
                // End of archive; the second zero block is optional in
                // practice and what follows is ignored.
                self.finished = true;
                return Ok(None);
            }
            let header = Header {
                block: &block,
                offset,
            };
            header.verify_checksum()?;
            let typeflag = block[156];
            let size = match ext.size.take() {
                Some(size) => size,
                None => header.number(124, 12)?,
            };
            let kind = match typeflag {
                b'0' | 0 | b'7' => TarKind::File,
                b'1' => TarKind::Hardlink,
                b'2' => TarKind::Symlink,
                b'5' => TarKind::Dir,
                b'3' | b'4' | b'6' => TarKind::Special,
                b'L' | b'K' | b'x' | b'g' => {
                    if size > MAX_EXTENSION_BYTES {
                        return Err(TarError::Invalid {
                            offset,
                            reason: "extension header too large",
                        });
                    }
                    self.start_data(size);
                    let mut data = Vec::with_capacity(size as usize);
                    self.data().read_to_end(&mut data)?;
                    match typeflag {
                        b'L' => ext.path = Some(until_nul(&data).to_vec()),
                        b'K' => ext.link = Some(until_nul(&data).to_vec()),
                        b'x' => parse_pax(&data, &mut ext, offset)?,
                        _ => {} // global PAX header: nothing used from it
                    }
                    continue;
                }
                other => TarKind::Unsupported(other),
            };
            let has_data = matches!(kind, TarKind::File | TarKind::Unsupported(_));
            let size = if has_data { size } else { 0 };
            let path = match ext.path.take() {
                Some(path) => path,
                None => header.path(),
            };
            let link = match ext.link.take() {
                Some(link) => link,
                None => until_nul(&block[157..257]).to_vec(),
            };
            let mode = u32::try_from(header.number(100, 8)? & 0o7777_7777).unwrap_or(0);
            self.start_data(size);
            return Ok(Some(TarEntry {
                path,
                link,
                kind,
                size,
                mode,
                data_offset: self.pos,
            }));
        }
    }

    fn start_data(&mut self, size: u64) {
        self.remaining = size;
        self.padding = (BLOCK - size % BLOCK) % BLOCK;
    }

    /// Reads the current entry's content (at most its size).
    pub(crate) fn data(&mut self) -> EntryData<'_, R> {
        EntryData { tar: self }
    }

    /// Skips what is left of the current entry, padding included.
    fn skip_rest(&mut self) -> io::Result<()> {
        let n = self.remaining + self.padding;
        crate::stream::skip(&mut self.inner, n)?;
        self.pos += n;
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }
}

/// Reader over the current entry's content; a short archive gives
/// [`io::ErrorKind::UnexpectedEof`].
#[derive(Debug)]
pub(crate) struct EntryData<'t, R> {
    tar: &'t mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.tar.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.tar.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.tar.remaining -= n as u64;
        self.tar.pos += n as u64;
        Ok(n)
    }
}

struct Header<'a> {
    block: &'a [u8; BLOCK as usize],
    offset: u64,
}

impl Header<'_> {
    fn invalid(&self, reason: &'static str) -> TarError {
        TarError::Invalid {
            offset: self.offset,
            reason,
        }
    }

    fn verify_checksum(&self) -> Result<(), TarError> {
        let stored = self.number(148, 8)?;
        let (mut unsigned, mut signed) = (0u64, 0i64);
        for (i, &b) in self.block.iter().enumerate() {
            let b = if (148..156).contains(&i) { b' ' } else { b };
            unsigned += u64::from(b);
            signed += i64::from(b as i8);
        }
        if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
            Ok(())
        } else {
            Err(self.invalid("checksum mismatch"))
        }
    }

    /// A numeric field: octal text, or GNU base-256 when the high bit of
    /// the first byte is set.
    fn number(&self, start: usize, len: usize) -> Result<u64, TarError> {
        let field = &self.block[start..start + len];
        if field[0] & 0x80 != 0 {
            if field[0] & 0x40 != 0 {
                return Err(self.invalid("negative base-256 number"));
            }
            let mut value: u64 = u64::from(field[0] & 0x3f);
            for &b in &field[1..] {
                value = value
                    .checked_mul(256)
                    .map(|v| v | u64::from(b))
                    .ok_or_else(|| self.invalid("base-256 number overflows"))?;
            }
            return Ok(value);
        }
        let text = field
            .iter()
            .skip_while(|&&b| b == b' ' || b == 0)
            .take_while(|&&b| b != b' ' && b != 0);
        let mut value: u64 = 0;
        for &b in text {
            if !(b'0'..=b'7').contains(&b) {
                return Err(self.invalid("non-octal digit in numeric field"));
            }
            value = value
                .checked_mul(8)
                .map(|v| v + u64::from(b - b'0'))
                .ok_or_else(|| self.invalid("numeric field overflows"))?;
        }
        Ok(value)
    }

    /// `prefix/name` for POSIX ustar, `name` otherwise.
    fn path(&self) -> Vec<u8> {
        let name = until_nul(&self.block[..100]);
        let posix = &self.block[257..263] == b"ustar\0";
        let prefix = until_nul(&self.block[345..500]);
        if posix && !prefix.is_empty() {
            let mut path = prefix.to_vec();
            path.push(b'/');
            path.extend_from_slice(name);
            path
        } else {
            name.to_vec()
        }
    }
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or_default()
}

/// Parses PAX records (`<len> <key>=<value>\n`), keeping `path`,
/// `linkpath` and `size`.
fn parse_pax(mut data: &[u8], ext: &mut Extensions, offset: u64) -> Result<(), TarError> {
    let invalid = |reason| TarError::Invalid { offset, reason };
    while !data.iter().all(|&b| b == 0) {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| invalid("malformed PAX record"))?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&len| len > space + 1 && len <= data.len())
            .ok_or_else(|| invalid("malformed PAX record length"))?;
        let record = &data[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| invalid("PAX record without '='"))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => ext.path = Some(value.to_vec()),
            b"linkpath" => ext.link = Some(value.to_vec()),
            b"size" => {
                let size = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| invalid("malformed PAX size"))?;
                ext.size = Some(size);
            }
            _ => {}
        }
        data = &data[len..];
    }
    Ok(())
}
