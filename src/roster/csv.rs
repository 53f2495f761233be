//! CSV rosters: encoding (UTF-8 with or without BOM, UTF-16 with BOM, GBK/GB18030) and
//! delimiter detection, then the `csv` crate for quoting, CRLF and embedded newlines.

use std::borrow::Cow;

use crate::config::Encoding;

use super::Table;

/// Decodes the bytes and splits them into a table. The error is a message for an admin.
pub(super) fn read_table(
    bytes: &[u8],
    encoding: Encoding,
    delimiter: Option<u8>,
) -> Result<Table, String> {
    let text = decode(bytes, encoding)?;
    let delimiter = delimiter.unwrap_or_else(|| detect_delimiter(&text));
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(r)) => r.iter().map(|f| f.trim().to_string()).collect(),
        Some(Err(e)) => return Err(format!("the header row cannot be parsed: {e}")),
        None => Vec::new(),
    };
    let mut rows = Vec::new();
    // Spreadsheet numbering: a record's row is its first line, less the line breaks held
    // inside quoted fields of the records before it (a spreadsheet shows those in one cell).
    let mut breaks_inside_fields = 0;
    let (mut line, mut counted_to) = (1, 0);
    for record in records {
        let record = record.map_err(|e| format!("a row cannot be parsed: {e}"))?;
        // The physical line the record starts on, counted from its byte offset (linear: the
        // count carries on from the previous record).
        let mut start = record.position().map_or(counted_to, |p| p.byte() as usize);
        // The reader may place a record at the line break (or blank lines) before it.
        while matches!(text.as_bytes().get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        line += text.as_bytes()[counted_to..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        counted_to = start;
        let row = line - breaks_inside_fields;
        breaks_inside_fields += record
            .iter()
            .map(|f| f.matches('\n').count())
            .sum::<usize>();
        rows.push((row, record.iter().map(|f| f.trim().to_string()).collect()));
    }
    Ok(Table { header, rows })
}

/// Text of the file. `auto`: a BOM decides; else UTF-8 if it is valid, else GB18030 (a superset
/// of GBK, which is what Excel writes in Chinese locales).
fn decode(bytes: &[u8], encoding: Encoding) -> Result<Cow<'_, str>, String> {
    let by_name = match encoding {
        Encoding::Auto => None,
        Encoding::Utf8 => Some(encoding_rs::UTF_8),
        Encoding::Gbk => Some(encoding_rs::GBK),
        Encoding::Gb18030 => Some(encoding_rs::GB18030),
    };
    if let Some(enc) = by_name {
        let (text, had_errors) = enc.decode_with_bom_removal(bytes);
        if had_errors {
            return Err(format!(
                "the file is not valid {} (line {}): check `roster.encoding` (auto, utf-8, gbk, gb18030)",
                enc.name(),
                first_bad_line(bytes, enc)
            ));
        }
        return Ok(text);
    }
    if let Some((enc, bom_len)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, had_errors) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        if had_errors {
            return Err(format!(
                "the file starts with a {} byte-order mark but is not valid {} (line {})",
                enc.name(),
                enc.name(),
                first_bad_line(&bytes[bom_len..], enc)
            ));
        }
        return Ok(text);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Cow::Borrowed(text));
    }
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(format!(
            "the file is neither UTF-8 nor GBK/GB18030 (line {}): save it as CSV UTF-8 and set `roster.encoding`",
            first_bad_line(bytes, encoding_rs::UTF_8)
        ));
    }
    Ok(text)
}

/// The 1-based line of the first byte that does not decode, for the error message.
fn first_bad_line(bytes: &[u8], enc: &'static encoding_rs::Encoding) -> usize {
    let mut line = 1;
    for chunk in bytes.split_inclusive(|&b| b == b'\n') {
        let (_, had_errors) = enc.decode_without_bom_handling(chunk);
        if had_errors {
            return line;
        }
        line += 1;
    }
    line
}

/// The delimiter the header line uses most: comma, semicolon or tab (comma on a tie).
fn detect_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    let count = |c: char| header.chars().filter(|&x| x == c).count();
    let candidates = [(b',', count(',')), (b';', count(';')), (b'\t', count('\t'))];
    candidates
        .iter()
        .fold(
            (b',', 0),
            |best, &(d, n)| if n > best.1 { (d, n) } else { best },
        )
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_are_detected_from_the_header() {
        assert_eq!(detect_delimiter("a,b,c\n1;2;3"), b',');
        assert_eq!(detect_delimiter("a;b;c\n"), b';');
        assert_eq!(detect_delimiter("a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter("single"), b',');
        assert_eq!(detect_delimiter("\"a,x\";b;c"), b';');
    }

    #[test]
    fn undecodable_bytes_name_the_line() {
        let bytes = b"id,name\n1,ok\n2,\xff\xff\xff\n";
        let err = decode(bytes, Encoding::Utf8).unwrap_err();
        assert!(err.contains("line 3"), "{err}");
    }
}
