//! Takes release artifacts apart (tar, tar.gz, tar.zst root filesystems,
//! OCI image layouts) within size limits, hands every file's bytes to
//! scanners, and finds the software components inside.
//!
//! Nothing is written to disk: an artifact is streamed once (an image
//! layout packed in a tar: once to index it, then once per layer), and
//! each regular file is read into memory, given to a [`FileVisitor`] (the
//! YARA and secret scanners), scanned for Go build info, and dropped.
//!
//! # Brief overview
//!
//! * [`extract`] — an artifact on disk: a file, or an OCI image layout
//!   directory. [`extract_reader`] — the same for any `Read + Seek`; it is
//!   also the fuzzing entry point.
//! * [`Limits`] — every bound (total bytes, file size, entries, layers,
//!   path length, compression ratio, index depth, package database size).
//! * [`Extraction`] — the result: the [`Format`] recognised, the final
//!   merged file view ([`FileMeta`] by path), `bulwark_sbom::Component`s
//!   found in it,
//!   files [`Removed`] by upper layers, files [`Skipped`] as too large, and
//!   warnings.
//! * [`ExtractError`] — why an artifact was rejected as a whole.
//!
//! # Example
//!
//! ```
//! use std::io::Cursor;
//!
//! use bulwark_extract::{Format, Limits, extract_reader};
//!
//! let go_sum = "golang.org/x/net v0.17.0 h1:pVaXccu2ozPjCXewfr1S7xza/zcXTity9cCdXQYSjIM=\n\
//!               golang.org/x/net v0.17.0/go.mod h1:NxSsAGuq816PNPmqtQdLE42eU2Fs7NoRIZrHJAlaCOE=\n";
//! let mut scanned = Vec::new();
//! let mut visit = |path: &str, _layer: usize, data: &[u8]| {
//!     scanned.push((path.to_owned(), data.len()));
//!     Ok(())
//! };
//! let found = extract_reader(Cursor::new(go_sum), "go.sum", &Limits::default(), &mut visit)?;
//! assert_eq!(found.format, Format::File);
//! assert_eq!(found.components[0].purl, "pkg:golang/golang.org/x/net@v0.17.0");
//! assert_eq!(found.components[0].found_in.as_deref(), Some("go.sum"));
//! assert_eq!(scanned, [("go.sum".to_owned(), go_sum.len())]);
//! # Ok::<(), bulwark_extract::ExtractError>(())
//! ```
//!
//! # Design
//!
//! * **Detection by magic bytes**: gzip and zstd are decompressed; a
//!   stream with the ustar magic is a tar. A tar whose first file is
//!   `oci-layout`, `index.json`, `manifest.json`, `repositories` or under
//!   `blobs/` is indexed as an image layout (and re-read as a root
//!   filesystem if it has no `index.json` and `oci-layout`). Anything else
//!   is one file.
//! * **Own tar reader** (`tar.rs`): the `tar` crate reads GNU long names
//!   and PAX headers into memory without a bound, so reading is done here,
//!   with extension headers capped and checksums checked.
//! * **Limits**: one budget counts every uncompressed byte of every pass;
//!   each decoder enforces the compression ratio. Artifact-wide limits are
//!   errors, per-file limits are warnings or [`Skipped`] entries.
//! * **Paths** are normalised lexically: leading `/` and `./` stripped, `..`
//!   applied and clamped at the root (with a warning), NUL bytes and
//!   overlong paths skipped. Links are recorded, never followed while
//!   reading; package databases are located by resolving symlinks inside
//!   the image root, as a `chroot` would, with a hop limit.
//! * **OCI**: one image per artifact (see `oci.rs` for the manifest
//!   choice); every blob is checked against its descriptor's size and
//!   SHA-256 while read; layers apply in order with `.wh.` whiteouts and
//!   `.wh..wh..opq` opaque directories. The visitor sees files as they
//!   stream, so a file deleted by an upper layer was still visited; it is
//!   listed in [`Extraction::removed`].
//! * **Components** come from the final view only: dpkg, opkg and apk
//!   databases (parsed by `bulwark-pkgdb`, diagnostics become warnings),
//!   Python `dist-info`/`egg-info` metadata, `Cargo.lock`,
//!   `package-lock.json`, `go.sum`, and Go ≥ 1.18 binaries' build info
//!   (modules, replacements and `stdlib`). Candidate files are kept in
//!   memory until the end; Go binaries are parsed as they stream.
//!
//! # Current limitations
//!
//! * A compressed tar holding an image layout is decompressed again for
//!   every blob (these passes count against [`Limits::max_total_bytes`]);
//!   uncompressed layout archives are read by seeking.
//! * `docker save` archives without `index.json` (Docker < 25) are read as
//!   plain tars. Multi-platform indexes yield their first image only.
//! * Go binaries older than 1.18 give a warning, not components; Go
//!   binaries larger than [`Limits::max_file_bytes`] are not scanned.
//! * A package database reached through a symlink whose own name is not
//!   `status`/`installed` is not found. opkg `info/*.control` files are not
//!   read. GNU sparse files are skipped.
//! * Non-UTF-8 entry names are converted lossily (U+FFFD).

mod components;
mod error;
mod extract;
mod limits;
mod model;
mod oci;
mod path;
mod stream;
mod tar;
mod view;
mod walk;

pub use crate::{
    error::ExtractError,
    extract::{extract, extract_reader},
    limits::{Limits, MAX_JSON_BYTES, MAX_SYMLINK_HOPS, MAX_WARNINGS, RATIO_GRACE_BYTES},
    model::{
        Compression, Extraction, FileKind, FileMeta, FileVisitor, Format, RemovalReason, Removed,
        Skipped,
    },
};
