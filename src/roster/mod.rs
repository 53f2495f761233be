//! The HR roster: a CSV or XLSX export read into [`Person`]s.
//!
//! A bad row never aborts the roster: it becomes that row's [`Finding`] (missing id, duplicate
//! id). Only a roster that cannot be read at all (no file, no header, a mapped column missing)
//! is an error. This module never touches the photo folder, the state DB or the network.

mod csv;
mod xlsx;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::config::{Columns, RosterConfig};
use crate::reason::{Finding, ReasonCode};

/// One person as the roster describes them. Values are trimmed; empty cells are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Person {
    /// The employee id; for a row without one, a placeholder `#row<N>` that no real id equals
    /// in practice, so the finding can still be keyed and reported.
    pub id: String,
    pub name: String,
    pub photo: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
    /// The person's id at a target, from its id column (`roster.columns.<target>_user_id`),
    /// by target name; a target without an entry knows them as its kind decides.
    pub target_ids: BTreeMap<String, String>,
}

/// A roster row: the person, where they stand in the file, and what is wrong with the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The row number as a spreadsheet shows it (the header is row 1).
    pub row: usize,
    pub person: Person,
    pub finding: Option<Finding>,
}

/// A roster as read, in file order.
#[derive(Debug, Clone)]
pub struct Roster {
    pub file: PathBuf,
    pub rows: Vec<Row>,
}

/// A roster that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    #[error("cannot read roster {path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("roster {path} has no header row: the first row must name the columns")]
    NoHeader { path: PathBuf },
    #[error(
        "roster {path} has no column `{column}` (set by `{key}`); the columns it has are: {found}"
    )]
    MissingColumn {
        path: PathBuf,
        column: String,
        key: String,
        found: String,
    },
}

/// Raw cells of a table: a header and the data rows with their spreadsheet row numbers.
pub(crate) struct Table {
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<(usize, Vec<String>)>,
}

/// Reads the roster the config names.
pub fn read(config: &RosterConfig) -> Result<Roster, RosterError> {
    let path = &config.path;
    let table = if is_xlsx(path) {
        xlsx::read_table(path, config.sheet.as_deref())?
    } else {
        let bytes = std::fs::read(path).map_err(|e| RosterError::Unreadable {
            path: path.clone(),
            message: e.to_string(),
        })?;
        csv::read_table(&bytes, config.encoding, config.delimiter).map_err(|message| {
            RosterError::Unreadable {
                path: path.clone(),
                message,
            }
        })?
    };
    from_table(path, table, &config.columns)
}

fn is_xlsx(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        matches!(
            e.to_ascii_lowercase().as_str(),
            "xlsx" | "xlsm" | "xls" | "ods"
        )
    })
}

/// Maps a table's columns by header name and turns each row into a [`Row`].
fn from_table(path: &Path, table: Table, columns: &Columns) -> Result<Roster, RosterError> {
    if table.header.iter().all(|h| h.trim().is_empty()) {
        return Err(RosterError::NoHeader {
            path: path.to_path_buf(),
        });
    }
    let normalized: Vec<String> = table.header.iter().map(|h| normalize_header(h)).collect();
    let find = |key: &str, name: &str| -> Result<usize, RosterError> {
        let wanted = normalize_header(name);
        normalized
            .iter()
            .position(|h| *h == wanted)
            .ok_or_else(|| RosterError::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_string(),
                key: format!("roster.columns.{key}"),
                found: table
                    .header
                    .iter()
                    .filter(|h| !h.trim().is_empty())
                    .map(|h| format!("`{}`", h.trim()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    };
    let optional = |key: &str, name: &Option<String>| -> Result<Option<usize>, RosterError> {
        name.as_deref().map(|n| find(key, n)).transpose()
    };
    let id_col = find("id", &columns.id)?;
    let name_col = optional("name", &columns.name)?;
    let photo_col = optional("photo", &columns.photo)?;
    let target_cols = columns
        .target_ids
        .iter()
        .map(|(target, column)| Ok((target, find(&format!("{target}_user_id"), column)?)))
        .collect::<Result<Vec<_>, RosterError>>()?;
    let email_col = optional("email", &columns.email)?;
    let mobile_col = optional("mobile", &columns.mobile)?;

    let cell = |cells: &[String], col: Option<usize>| -> Option<String> {
        col.and_then(|c| cells.get(c))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };

    let mut rows = Vec::with_capacity(table.rows.len());
    for (row_no, cells) in table.rows {
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue; // blank lines at the end of an export are not people
        }
        let id = cell(&cells, Some(id_col));
        let finding = id.is_none().then(|| {
            Finding::new(
                ReasonCode::MissingId,
                format!("row {row_no}: the `{}` column is empty", columns.id),
            )
        });
        let person = Person {
            id: id.unwrap_or_else(|| format!("#row{row_no}")),
            name: cell(&cells, name_col).unwrap_or_default(),
            photo: cell(&cells, photo_col),
            email: cell(&cells, email_col),
            mobile: cell(&cells, mobile_col),
            target_ids: target_cols
                .iter()
                .filter_map(|(target, col)| Some(((*target).clone(), cell(&cells, Some(*col))?)))
                .collect(),
        };
        rows.push(Row {
            row: row_no,
            person,
            finding,
        });
    }
    flag_duplicates(&mut rows);
    Ok(Roster {
        file: path.to_path_buf(),
        rows,
    })
}

/// Header names compare trimmed, case-insensitive, without a BOM.
fn normalize_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}').trim().to_lowercase()
}

/// Every copy of an id that appears more than once is flagged, naming the other rows.
fn flag_duplicates(rows: &mut [Row]) {
    let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if r.finding.is_none() {
            by_id.entry(r.person.id.to_lowercase()).or_default().push(i);
        }
    }
    for indexes in by_id.values().filter(|v| v.len() > 1) {
        let row_numbers: Vec<String> = indexes.iter().map(|&i| rows[i].row.to_string()).collect();
        for &i in indexes {
            let r = &mut rows[i];
            r.finding = Some(Finding::new(
                ReasonCode::DuplicateId,
                format!(
                    "row {}: id `{}` appears in rows {}",
                    r.row,
                    r.person.id,
                    row_numbers.join(", ")
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests;
