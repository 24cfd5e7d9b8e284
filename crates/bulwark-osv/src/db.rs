//! The in-memory advisory database: storage, the package index, alias
//! groups, and persistence to one JSON-lines file.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, MAX_DB_FILE_BYTES};
use crate::model::Advisory;
use crate::range::{Compiled, compile};
use crate::severity::{Severity, advisory_severity};

/// The file [`AdvisoryDb::save`] writes inside its directory.
pub const DB_FILE_NAME: &str = "advisories.jsonl";
const DB_FORMAT: &str = "bulwark-osv-db";
const DB_FORMAT_VERSION: u32 = 1;

/// One stored advisory.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) advisory: Advisory,
    /// The import source it came from (`source_name` of the import).
    pub(crate) source: String,
    /// The import generation that last changed it.
    pub(crate) generation: u64,
    pub(crate) severity: Severity,
}

/// Where a package's advisories are: (entry, `affected[]` index), with the
/// entry's event versions already parsed.
#[derive(Debug)]
pub(crate) struct AffectedRef {
    pub(crate) entry: u32,
    pub(crate) affected: u32,
    pub(crate) compiled: Compiled,
}

/// OSV advisories in memory, indexed for matching components.
///
/// Lookup is by (OSV ecosystem without release suffix, normalised package
/// name): PyPI names are normalised as PEP 503 says (lower case, runs of
/// `-_.` as one `-`), every other ecosystem's names compare exactly. A scan
/// therefore costs one hash lookup per component plus the evaluation of
/// that package's few advisories.
///
/// Every import is one *generation*; [`AdvisoryDb::ids_changed_since`] lists
/// the advisories an import added, replaced or withdrew, which are the only
/// ones whose findings can have changed.
#[derive(Debug, Default)]
pub struct AdvisoryDb {
    pub(crate) entries: Vec<Entry>,
    pub(crate) by_id: HashMap<String, usize>,
    /// ecosystem base name → normalised package name → affected entries.
    pub(crate) index: HashMap<String, HashMap<Box<str>, Vec<AffectedRef>>>,
    /// Per entry: its alias group (advisories linked by `aliases`,
    /// transitively, share one).
    pub(crate) group: Vec<u32>,
    pub(crate) kev: HashSet<String>,
    pub(crate) kev_catalog_version: Option<String>,
    pub(crate) generation: u64,
    /// When advisories were last imported, as the importer said.
    pub(crate) updated_at: Option<OffsetDateTime>,
}

impl AdvisoryDb {
    /// An empty database.
    pub fn new() -> AdvisoryDb {
        AdvisoryDb::default()
    }

    /// How many advisories are stored (withdrawn ones included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no advisory is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The advisory with this id.
    pub fn get(&self, id: &str) -> Option<&Advisory> {
        self.by_id.get(id).map(|&i| &self.entries[i].advisory)
    }

    /// The source (import `source_name`) an advisory came from.
    pub fn source_of(&self, id: &str) -> Option<&str> {
        self.by_id.get(id).map(|&i| self.entries[i].source.as_str())
    }

    /// Every stored advisory, in import order.
    pub fn advisories(&self) -> impl Iterator<Item = &Advisory> {
        self.entries.iter().map(|e| &e.advisory)
    }

    /// The current generation: 0 for an empty database, plus one per import.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Ids of the advisories added, replaced or withdrawn by imports after
    /// `generation` (pass the [`AdvisoryDb::generation`] seen last time),
    /// sorted. The server re-evaluates only these.
    pub fn ids_changed_since(&self, generation: u64) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .entries
            .iter()
            .filter(|e| e.generation > generation)
            .map(|e| e.advisory.id.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// When advisories were last imported, as recorded by
    /// [`AdvisoryDb::set_updated_at`]; `None` for a database never dated
    /// (empty, or saved by a version that did not record it). The gate
    /// states it in every verdict and warns when it is old.
    pub fn updated_at(&self) -> Option<OffsetDateTime> {
        self.updated_at
    }

    /// Records when advisories were imported. The importer passes its
    /// clock's time (this crate reads no clock); [`AdvisoryDb::save`]
    /// persists it. An import that changed nothing still counts: the
    /// database is as fresh as its source.
    pub fn set_updated_at(&mut self, at: OffsetDateTime) {
        self.updated_at = Some(at);
    }

    /// The version of the imported CISA KEV catalog, if one was imported.
    pub fn kev_catalog_version(&self) -> Option<&str> {
        self.kev_catalog_version.as_deref()
    }

    /// Whether a CVE id is in the known-exploited catalog.
    pub fn is_known_exploited(&self, cve: &str) -> bool {
        self.kev.contains(cve)
    }

    /// Stores `advisory` if it is new or its `modified` is newer than the
    /// stored one's. Returns what happened. Call [`AdvisoryDb::rebuild`] after
    /// a batch.
    pub(crate) fn upsert(&mut self, advisory: Advisory, source: &str) -> Upsert {
        let new_time = advisory.modified_time();
        match self.by_id.get(&advisory.id) {
            Some(&i) => {
                let old = &self.entries[i];
                if new_time > old.advisory.modified_time() {
                    self.entries[i] = Entry {
                        severity: advisory_severity(&advisory),
                        advisory,
                        source: source.to_owned(),
                        generation: self.generation,
                    };
                    Upsert::Updated
                } else {
                    Upsert::Unchanged
                }
            }
            None => {
                self.by_id.insert(advisory.id.clone(), self.entries.len());
                self.entries.push(Entry {
                    severity: advisory_severity(&advisory),
                    advisory,
                    source: source.to_owned(),
                    generation: self.generation,
                });
                Upsert::Inserted
            }
        }
    }

    /// Recomputes the package index and the alias groups.
    pub(crate) fn rebuild(&mut self) {
        let mut index: HashMap<String, HashMap<Box<str>, Vec<AffectedRef>>> = HashMap::new();
        for (e, entry) in self.entries.iter().enumerate() {
            if entry.advisory.is_withdrawn() {
                continue;
            }
            for (a, affected) in entry.advisory.affected.iter().enumerate() {
                let Some(package) = &affected.package else {
                    continue;
                };
                let eco = ecosystem_base(&package.ecosystem);
                let name = normalise_name(eco, &package.name);
                let refs = index
                    .entry(eco.to_owned())
                    .or_default()
                    .entry(name.into_owned().into_boxed_str())
                    .or_default();
                // u32 suffices: import limits keep counts far below it.
                refs.push(AffectedRef {
                    entry: e as u32,
                    affected: a as u32,
                    compiled: compile(affected),
                });
            }
        }
        self.index = index;
        self.group = alias_groups(&self.entries);
    }

    /// Writes the database to `dir/advisories.jsonl` atomically (a temporary
    /// file in `dir`, flushed and synced, then renamed over the old one).
    /// Creates `dir` if needed.
    ///
    /// The format: a header line (format name and version, generation, KEV
    /// catalog, the last import's time), then one line per advisory `{"source", "generation",
    /// "advisory": <OSV JSON>}`.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::DbIo { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(DB_FILE_NAME);
        let tmp = dir.join(format!(".{DB_FILE_NAME}.tmp-{}", std::process::id()));
        let result = (|| -> std::io::Result<()> {
            let file = fs::File::create(&tmp)?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let mut kev: Vec<&str> = self.kev.iter().map(String::as_str).collect();
            kev.sort_unstable();
            let header = Header {
                format: DB_FORMAT.into(),
                version: DB_FORMAT_VERSION,
                generation: self.generation,
                kev_catalog_version: self.kev_catalog_version.clone(),
                kev: kev.into_iter().map(str::to_owned).collect(),
                updated_at: self.updated_at,
            };
            serde_json::to_writer(&mut out, &header)?;
            out.write_all(b"\n")?;
            for entry in &self.entries {
                serde_json::to_writer(
                    &mut out,
                    &StoredRef {
                        source: &entry.source,
                        generation: entry.generation,
                        advisory: &entry.advisory,
                    },
                )?;
                out.write_all(b"\n")?;
            }
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok(())
        })();
        if let Err(source) = result {
            let _ = fs::remove_file(&tmp);
            return Err(Error::DbIo { path: tmp, source });
        }
        fs::rename(&tmp, &path).map_err(io(&path))?;
        // Make the rename durable; not every platform can sync a directory.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Reads a database written by [`AdvisoryDb::save`]; every advisory is
    /// validated again. A missing file is an error (use
    /// [`AdvisoryDb::load_or_new`] to start empty).
    pub fn load(dir: &Path) -> Result<AdvisoryDb, Error> {
        let path = dir.join(DB_FILE_NAME);
        let corrupt = |line: usize, message: String| Error::DbCorrupt {
            path: path.clone(),
            line,
            message,
        };
        let file = fs::File::open(&path).map_err(|source| Error::DbIo {
            path: path.clone(),
            source,
        })?;
        let mut text = String::new();
        file.take(MAX_DB_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|source| Error::DbIo {
                path: path.clone(),
                source,
            })?;
        if text.len() as u64 > MAX_DB_FILE_BYTES {
            return Err(corrupt(0, format!("larger than {MAX_DB_FILE_BYTES} bytes")));
        }
        let mut lines = text.lines();
        let header: Header = serde_json::from_str(lines.next().unwrap_or(""))
            .map_err(|e| corrupt(1, format!("bad header: {e}")))?;
        if header.format != DB_FORMAT || header.version != DB_FORMAT_VERSION {
            return Err(corrupt(
                1,
                format!(
                    "format {:?} version {} is not {DB_FORMAT} version {DB_FORMAT_VERSION}",
                    header.format, header.version
                ),
            ));
        }
        let mut db = AdvisoryDb {
            generation: header.generation,
            kev: header.kev.into_iter().collect(),
            kev_catalog_version: header.kev_catalog_version,
            updated_at: header.updated_at,
            ..AdvisoryDb::default()
        };
        for (n, line) in lines.enumerate() {
            let line_no = n + 2;
            let stored: Stored =
                serde_json::from_str(line).map_err(|e| corrupt(line_no, e.to_string()))?;
            stored
                .advisory
                .validate()
                .map_err(|e| corrupt(line_no, e.to_string()))?;
            if db.by_id.contains_key(&stored.advisory.id) {
                return Err(corrupt(
                    line_no,
                    format!("duplicate advisory {}", stored.advisory.id),
                ));
            }
            db.by_id
                .insert(stored.advisory.id.clone(), db.entries.len());
            db.entries.push(Entry {
                severity: advisory_severity(&stored.advisory),
                advisory: stored.advisory,
                source: stored.source,
                generation: stored.generation,
            });
        }
        db.rebuild();
        Ok(db)
    }

    /// [`AdvisoryDb::load`], or an empty database when `dir` holds none.
    pub fn load_or_new(dir: &Path) -> Result<AdvisoryDb, Error> {
        if dir.join(DB_FILE_NAME).exists() {
            AdvisoryDb::load(dir)
        } else {
            Ok(AdvisoryDb::new())
        }
    }

    /// The database file inside `dir`.
    pub fn file_in(dir: &Path) -> PathBuf {
        dir.join(DB_FILE_NAME)
    }
}

/// What [`AdvisoryDb::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upsert {
    Inserted,
    Updated,
    Unchanged,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    generation: u64,
    #[serde(default)]
    kev_catalog_version: Option<String>,
    #[serde(default)]
    kev: Vec<String>,
    /// Absent in files written before it was recorded.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    updated_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize)]
struct StoredRef<'a> {
    source: &'a str,
    generation: u64,
    advisory: &'a Advisory,
}

#[derive(Debug, Deserialize)]
struct Stored {
    source: String,
    generation: u64,
    advisory: Advisory,
}

/// `Debian:12` → `Debian`.
pub(crate) fn ecosystem_base(ecosystem: &str) -> &str {
    ecosystem
        .split_once(':')
        .map_or(ecosystem, |(base, _)| base)
}

/// The index key of a package name: PEP 503 for PyPI, exact otherwise.
pub(crate) fn normalise_name<'a>(ecosystem_base: &str, name: &'a str) -> std::borrow::Cow<'a, str> {
    if ecosystem_base != "PyPI" {
        return std::borrow::Cow::Borrowed(name);
    }
    let already = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.contains("--");
    if already {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator {
                out.push('-');
            }
            in_separator = true;
        } else {
            out.extend(c.to_lowercase());
            in_separator = false;
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Union-find over advisory ids and their aliases: entry → group number.
/// Withdrawn advisories link nothing.
fn alias_groups(entries: &[Entry]) -> Vec<u32> {
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let grand = parent[parent[x as usize] as usize];
            parent[x as usize] = grand;
            x = grand;
        }
        x
    }
    fn node_of<'a>(node: &mut HashMap<&'a str, u32>, parent: &mut Vec<u32>, id: &'a str) -> u32 {
        *node.entry(id).or_insert_with(|| {
            // u32 suffices: import limits keep id counts far below it.
            let n = parent.len() as u32;
            parent.push(n);
            n
        })
    }
    let mut node: HashMap<&str, u32> = HashMap::with_capacity(entries.len() * 3);
    let mut parent: Vec<u32> = Vec::with_capacity(entries.len() * 3);
    let mut entry_node = Vec::with_capacity(entries.len());
    for entry in entries {
        let a = node_of(&mut node, &mut parent, &entry.advisory.id);
        entry_node.push(a);
        if entry.advisory.is_withdrawn() {
            continue;
        }
        for alias in &entry.advisory.aliases {
            let b = node_of(&mut node, &mut parent, alias);
            let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
            if ra != rb {
                parent[ra.max(rb) as usize] = ra.min(rb);
            }
        }
    }
    entry_node
        .into_iter()
        .map(|n| find(&mut parent, n))
        .collect()
}
