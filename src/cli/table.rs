//! Plain-text tables for the terminal, aligned by display width (Chinese names take two columns
//! per character).

use std::borrow::Cow;

use unicode_width::UnicodeWidthStr;

/// A table: a header and rows of cells, owned or borrowed (a table of 200,000 drifts borrows
/// its cells from the report instead of copying them).
#[derive(Debug, Default)]
pub struct Table<'a> {
    header: Vec<Cow<'a, str>>,
    rows: Vec<Vec<Cow<'a, str>>>,
}

impl<'a> Table<'a> {
    pub fn new<I: IntoIterator<Item = S>, S: Into<Cow<'a, str>>>(header: I) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<I: IntoIterator<Item = S>, S: Into<Cow<'a, str>>>(&mut self, cells: I) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders with two spaces between columns; the last column is not padded.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out)
            .expect("writing to memory does not fail");
        String::from_utf8(out).expect("the cells are text")
    }

    /// [`Table::render`], written a line at a time.
    pub fn write_to(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let columns = self.header.len();
        let mut widths = vec![0; columns];
        for line in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in line.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.width());
            }
        }
        let mut text = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            text.clear();
            for (i, cell) in line.iter().enumerate().take(columns) {
                text.push_str(cell);
                if i + 1 < columns {
                    let pad = widths[i] - cell.width() + 2;
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", text.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_by_display_width() {
        let mut t = Table::new(["ID", "NAME", "ACTION"]);
        t.row(["E1", "张伟", "upload"]);
        t.row(["E1002", "Alice", "unchanged"]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        let col = |line: &str, word: &str| line[..line.find(word).unwrap()].width();
        assert_eq!(col(lines[0], "ACTION"), col(lines[1], "upload"));
        assert_eq!(col(lines[1], "upload"), col(lines[2], "unchanged"));
    }
}
