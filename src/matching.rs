//! Pairs roster people with photo files: by the roster's photo column, else by file name
//! `<id>.<ext>` (id and extension case-insensitive). One pass over the folder builds an index by
//! file stem, so matching is linear in the number of files and people.
//!
//! With `photos.pick = "best"` a person may have several candidate photos: every supported file
//! named `<id>.<ext>` (in any folder the walk reaches), every copy named `<id> (2).<ext>`, and
//! every file directly inside a sub-folder named `<id>` (with `photos.recursive`). Matching
//! only lists them, in path order; the plan chooses ([`crate::plan`]).
//!
//! This module reads directory entries and file metadata only; it never opens a photo.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use crate::config::Pick;
use crate::reason::{Finding, ReasonCode};
use crate::roster::Row;

/// Extensions of the formats the photo pipeline decodes.
pub const SUPPORTED_EXTENSIONS: &[&str] =
    &["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif"];

/// Extensions of photo formats people have but the pipeline does not decode; a person whose only
/// photo has one of these gets `unsupported_format` (with advice) instead of `no_photo`.
const KNOWN_UNSUPPORTED: &[&str] = &[
    "heic", "heif", "avif", "jxl", "cr2", "nef", "arw", "dng", "raw", "psd",
];

/// A photo file found for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoFile {
    pub path: PathBuf,
    /// The path relative to the photo folder, with `/` separators (for reports).
    pub relative: String,
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

/// The photo folder could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read photo folder {path}: {message}")]
pub struct PhotoDirError {
    pub path: PathBuf,
    pub message: String,
}

/// The files of a photo folder, indexed by lower-case file stem.
#[derive(Debug, Default)]
pub struct PhotoIndex {
    dir: PathBuf,
    canonical_dir: PathBuf,
    by_stem: HashMap<String, Vec<Entry>>,
    pick: Pick,
    /// With `pick = "best"` only: the copies `<id> (2).<ext>` by lower-case id...
    copies: HashMap<String, Vec<Entry>>,
    /// ...and the files directly inside a sub-folder, by the folder's lower-case name.
    folders: HashMap<String, Vec<Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    relative: String,
    extension: String,
    /// A symbolic link (it may point outside the folder). The walk does not follow links, so
    /// any other entry is inside the folder.
    link: bool,
}

impl PhotoIndex {
    /// Lists the folder once (and its sub-folders when `recursive`). Hidden files are skipped.
    pub fn scan(dir: &Path, recursive: bool) -> Result<PhotoIndex, PhotoDirError> {
        Self::scan_for(dir, recursive, Pick::Ambiguous)
    }

    /// [`PhotoIndex::scan`], also indexing the copies and the per-person sub-folders when
    /// `pick` is [`Pick::Best`] (they are not candidates otherwise).
    pub fn scan_for(dir: &Path, recursive: bool, pick: Pick) -> Result<PhotoIndex, PhotoDirError> {
        let err = |message: String| PhotoDirError {
            path: dir.to_path_buf(),
            message,
        };
        let canonical_dir = dir.canonicalize().map_err(|e| err(e.to_string()))?;
        if !canonical_dir.is_dir() {
            return Err(err("not a folder".into()));
        }
        let mut index = PhotoIndex {
            dir: dir.to_path_buf(),
            canonical_dir,
            by_stem: HashMap::new(),
            pick,
            copies: HashMap::new(),
            folders: HashMap::new(),
        };
        let walker = walkdir::WalkDir::new(dir)
            .min_depth(1)
            .max_depth(if recursive { usize::MAX } else { 1 })
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walker {
            let entry = entry.map_err(|e| err(e.to_string()))?;
            let file_type = entry.file_type();
            if !(file_type.is_file() || file_type.is_symlink()) {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            let Some((stem, ext)) = name.rsplit_once('.') else {
                continue;
            };
            let relative = if entry.depth() == 1 {
                name.to_string()
            } else {
                entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap_or(entry.path())
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/")
            };
            let stem = lowercase(stem);
            let found = Entry {
                relative,
                extension: ext.to_lowercase(),
                link: file_type.is_symlink(),
            };
            if pick == Pick::Best {
                if let Some(id) = copy_of(&stem) {
                    index
                        .copies
                        .entry(id.to_string())
                        .or_default()
                        .push(found.clone());
                }
                if entry.depth() > 1
                    && let Some(folder) = entry.path().parent().and_then(Path::file_name)
                {
                    index
                        .folders
                        .entry(lowercase(&folder.to_string_lossy()).into_owned())
                        .or_default()
                        .push(found.clone());
                }
            }
            let entries = match index.by_stem.get_mut(&*stem) {
                Some(entries) => entries,
                None => index.by_stem.entry(stem.into_owned()).or_default(),
            };
            entries.push(found);
        }
        // The walk is not sorted (sorting 100,000 names cost more than the walk): only what
        // a message lists in order is.
        for entries in index.by_stem.values_mut().filter(|e| e.len() > 1) {
            entries.sort_by(|a, b| a.relative.cmp(&b.relative));
        }
        Ok(index)
    }

    /// The photo folder as configured.
    /// How many files the folder holds (hidden ones and those without an extension aside).
    pub fn file_count(&self) -> usize {
        self.by_stem.values().map(Vec::len).sum()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The id a copy's stem names: `e1001` for `e1001 (2)` (or `e1001(2)`), as file managers
/// name a second copy.
fn copy_of(stem: &str) -> Option<&str> {
    let inner = stem.strip_suffix(')')?;
    let (id, number) = inner.rsplit_once('(')?;
    let id = id.trim_end();
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && !id.is_empty())
        .then_some(id)
}

/// `s` in lower case, borrowed when it is ASCII without capitals (most ids and file names).
fn lowercase(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() && !s.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.to_lowercase())
    }
}

/// The outcome of matching a whole roster.
#[derive(Debug, Default)]
pub struct Matches {
    /// For each roster row (same order): its photo, or why it has none.
    pub photos: Vec<Result<PhotoFile, Finding>>,
    /// Photo files (relative paths) that no roster row refers to.
    pub orphans: Vec<String>,
    /// With `pick = "best"`: the rows (by index in `photos`) that have several candidate
    /// photos, in path order; their entry in `photos` is the first of them.
    pub several: HashMap<usize, Vec<PhotoFile>>,
}

/// What matching found for one row: a photo, or (with `pick = "best"`) candidates to choose from.
#[derive(Debug)]
enum Found {
    One(PhotoFile),
    Several(Vec<PhotoFile>),
}

/// Matches every row to a photo. Rows that already have a finding are not matched, but their
/// files are not orphans either.
pub fn match_rows(rows: &[Row], index: &PhotoIndex) -> Matches {
    let mut claimed: HashSet<std::borrow::Cow<'_, str>> = HashSet::with_capacity(rows.len());
    for row in rows {
        let person = &row.person;
        if let Some(relative) = &person.photo {
            claimed.insert(relative.replace('\\', "/").into());
        } else {
            claimed.insert(lowercase(&person.id));
        }
    }
    // Each match reads a file's metadata: on every core, a share of the roster each (the
    // stat calls were most of a 100,000-person plan's time in the folder).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = rows.len().div_ceil(threads).max(4096);
    let photos = std::thread::scope(|scope| {
        let parts: Vec<_> = rows
            .chunks(share)
            .map(|part| scope.spawn(move || part.iter().map(|row| match_one(row, index)).collect()))
            .collect();
        let mut photos = Vec::with_capacity(rows.len());
        let mut several = HashMap::new();
        for part in parts {
            let part: Vec<_> = part.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            for found in part {
                photos.push(match found {
                    Ok(Found::One(photo)) => Ok(photo),
                    Ok(Found::Several(files)) => {
                        let first = files[0].clone();
                        several.insert(photos.len(), files);
                        Ok(first)
                    }
                    Err(f) => Err(f),
                });
            }
        }
        (photos, several)
    });
    let (photos, several) = photos;
    // The copies and the per-person folders of people on the roster are theirs, not orphans.
    let candidates: HashSet<&str> = claimed
        .iter()
        .flat_map(|id| {
            [&index.copies, &index.folders]
                .into_iter()
                .filter_map(|by| by.get(id.as_ref()))
                .flatten()
        })
        .map(|e| e.relative.as_str())
        .collect();
    let mut orphans: Vec<String> = index
        .by_stem
        .iter()
        .flat_map(|(stem, entries)| entries.iter().map(move |e| (stem, e)))
        .filter(|(stem, e)| {
            SUPPORTED_EXTENSIONS.contains(&e.extension.as_str())
                && !claimed.contains(stem.as_str())
                && !claimed.contains(e.relative.as_str())
                && !candidates.contains(e.relative.as_str())
        })
        .map(|(_, e)| e.relative.clone())
        .collect();
    orphans.sort();
    Matches {
        photos,
        orphans,
        several,
    }
}

/// One row's photo, or why it has none.
fn match_one(row: &Row, index: &PhotoIndex) -> Result<Found, Finding> {
    if let Some(f) = &row.finding {
        return Err(f.clone());
    }
    match &row.person.photo {
        Some(relative) => by_column(row, relative, index).map(Found::One),
        None if index.pick == Pick::Best => candidates(row, index),
        None => by_name(row, index).map(Found::One),
    }
}

/// With `pick = "best"`: every supported file that may be the person's photo, in path order.
/// One candidate is the photo, even a copy or a file in the person's folder; none is
/// `no_photo` (or `unsupported_format`) as with [`by_name`].
fn candidates(row: &Row, index: &PhotoIndex) -> Result<Found, Finding> {
    let id = lowercase(&row.person.id);
    let mut found: Vec<&Entry> = [&index.by_stem, &index.copies, &index.folders]
        .into_iter()
        .filter_map(|by| by.get(&*id))
        .flatten()
        .filter(|e| SUPPORTED_EXTENSIONS.contains(&e.extension.as_str()))
        .collect();
    found.sort_by(|a, b| a.relative.cmp(&b.relative));
    // `E1001/E1001.jpg` is both named and in the person's folder: one candidate.
    found.dedup_by(|a, b| a.relative == b.relative);
    match found.as_slice() {
        [] => return by_name(row, index).map(Found::One),
        [one] => return resolve(row, index, one).map(Found::One),
        _ => {}
    }
    found
        .into_iter()
        .map(|e| resolve(row, index, e))
        .collect::<Result<Vec<_>, _>>()
        .map(Found::Several)
}

fn by_column(row: &Row, relative: &str, index: &PhotoIndex) -> Result<PhotoFile, Finding> {
    let outside = |why: &str| {
        Finding::new(
            ReasonCode::PhotoOutsideFolder,
            format!("row {}: photo `{relative}` {why}", row.row),
        )
    };
    let rel = Path::new(relative);
    if rel.is_absolute() || relative.starts_with('/') || relative.starts_with('\\') {
        return Err(outside(
            "is an absolute path; give it relative to the photo folder",
        ));
    }
    if rel.components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::Prefix(_) | Component::RootDir
        )
    }) || relative.split(['/', '\\']).any(|p| p == "..")
    {
        return Err(outside("climbs out of the photo folder with `..`"));
    }
    let path = index.dir.join(rel);
    match path.canonicalize() {
        Ok(real) if !real.starts_with(&index.canonical_dir) => {
            Err(outside("is a link pointing outside the photo folder"))
        }
        Ok(_) => photo_file(row, path, relative.replace('\\', "/")),
        Err(_) => Err(Finding::new(
            ReasonCode::NoPhoto,
            format!(
                "row {}: the photo column names `{relative}`, which is not in {}",
                row.row,
                index.dir.display()
            ),
        )),
    }
}

fn by_name(row: &Row, index: &PhotoIndex) -> Result<PhotoFile, Finding> {
    let entries = index
        .by_stem
        .get(&*lowercase(&row.person.id))
        .map(Vec::as_slice)
        .unwrap_or_default();
    let supported: Vec<&Entry> = entries
        .iter()
        .filter(|e| SUPPORTED_EXTENSIONS.contains(&e.extension.as_str()))
        .collect();
    match supported.as_slice() {
        [one] => resolve(row, index, one),
        [] => {
            if let Some(e) = entries
                .iter()
                .find(|e| KNOWN_UNSUPPORTED.contains(&e.extension.as_str()))
            {
                return Err(Finding::new(
                    ReasonCode::UnsupportedFormat,
                    format!(
                        "row {}: `{}` is a .{} file, which is not supported: export it as JPEG",
                        row.row, e.relative, e.extension
                    ),
                ));
            }
            Err(Finding::new(
                ReasonCode::NoPhoto,
                format!(
                    "row {}: no photo named `{}.jpg` (or .png, .webp, ...) in {}",
                    row.row,
                    row.person.id,
                    index.dir.display()
                ),
            ))
        }
        many => Err(Finding::new(
            ReasonCode::AmbiguousPhoto,
            format!(
                "row {}: several photos match `{}`: {}",
                row.row,
                row.person.id,
                many.iter()
                    .map(|e| format!("`{}`", e.relative))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        )),
    }
}

/// The file of an entry the walk found.
fn resolve(row: &Row, index: &PhotoIndex, entry: &Entry) -> Result<PhotoFile, Finding> {
    let path = index.dir.join(&entry.relative);
    // Found by the walk and not a link: inside the folder, no need to resolve it.
    if !entry.link {
        return photo_file(row, path, entry.relative.clone());
    }
    match path.canonicalize() {
        Ok(real) if !real.starts_with(&index.canonical_dir) => Err(Finding::new(
            ReasonCode::PhotoOutsideFolder,
            format!(
                "row {}: `{}` is a link pointing outside the photo folder",
                row.row, entry.relative
            ),
        )),
        Ok(_) => photo_file(row, path, entry.relative.clone()),
        Err(e) => Err(Finding::new(
            ReasonCode::PhotoUnreadable,
            format!("row {}: `{}`: {e}", row.row, entry.relative),
        )),
    }
}

fn photo_file(row: &Row, path: PathBuf, relative: String) -> Result<PhotoFile, Finding> {
    let meta = std::fs::metadata(&path).map_err(|e| {
        Finding::new(
            ReasonCode::PhotoUnreadable,
            format!("row {}: `{relative}`: {e}", row.row),
        )
    })?;
    if !meta.is_file() {
        return Err(Finding::new(
            ReasonCode::PhotoUnreadable,
            format!("row {}: `{relative}` is not a file", row.row),
        ));
    }
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    Ok(PhotoFile {
        path,
        relative,
        size: meta.len(),
        mtime_ns,
    })
}

#[cfg(test)]
mod tests;
