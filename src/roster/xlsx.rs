//! XLSX (and other spreadsheet) rosters through calamine. Numeric cells such as employee
//! numbers read as text without a trailing ".0".

use std::path::Path;

use calamine::{Data, Reader, open_workbook_auto};

use super::{RosterError, Table};

pub(super) fn read_table(path: &Path, sheet: Option<&str>) -> Result<Table, RosterError> {
    let unreadable = |message: String| RosterError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    let mut workbook = open_workbook_auto(path).map_err(|e| unreadable(e.to_string()))?;
    let names = workbook.sheet_names().to_vec();
    let name = match sheet {
        Some(wanted) => names
            .iter()
            .find(|n| n.as_str() == wanted)
            .cloned()
            .ok_or_else(|| {
                unreadable(format!(
                    "no sheet named `{wanted}` (roster.sheet); the sheets are: {}",
                    names.join(", ")
                ))
            })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| unreadable("the workbook has no sheets".into()))?,
    };
    let range = workbook
        .worksheet_range(&name)
        .map_err(|e| unreadable(format!("sheet `{name}`: {e}")))?;
    // Row numbers as the spreadsheet shows them, even when the used range starts lower down.
    let first_row = range.start().map(|(r, _)| r as usize + 1).unwrap_or(1);
    let first_col = range.start().map(|(_, c)| c as usize).unwrap_or(0);
    let mut rows = range.rows().enumerate().map(|(i, cells)| {
        let mut values: Vec<String> = vec![String::new(); first_col];
        values.extend(cells.iter().map(cell_text));
        (first_row + i, values)
    });
    let header = rows.next().map(|(_, h)| h).unwrap_or_default();
    Ok(Table {
        header,
        rows: rows.collect(),
    })
}

/// A cell as the text an admin sees: integers without ".0", dates as ISO text.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => d.to_string(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_the_text_an_admin_typed() {
        assert_eq!(cell_text(&Data::Float(1001.0)), "1001");
        assert_eq!(cell_text(&Data::Float(13800138000.0)), "13800138000");
        assert_eq!(cell_text(&Data::Float(1.5)), "1.5");
        assert_eq!(cell_text(&Data::Int(7)), "7");
        assert_eq!(cell_text(&Data::String("  E01 ".into())), "E01");
        assert_eq!(cell_text(&Data::Empty), "");
    }
}
