//! Roster cases: every encoding, delimiter and bad-row kind, each through a real file.

use std::path::PathBuf;

use super::*;
use crate::config::{Columns, Encoding, RosterConfig};

fn columns() -> Columns {
    Columns {
        id: "employee_id".into(),
        name: Some("name".into()),
        photo: None,
        email: None,
        mobile: None,
        target_ids: Default::default(),
    }
}

fn read_bytes(
    name: &str,
    bytes: &[u8],
    encoding: Encoding,
    delimiter: Option<u8>,
) -> Result<Roster, RosterError> {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    read(&RosterConfig {
        path,
        encoding,
        delimiter,
        sheet: None,
        columns: columns(),
    })
}

/// `expected`: (row, id, name, finding code) per row.
fn check(bytes: &[u8], encoding: Encoding, expected: &[(usize, &str, &str, Option<ReasonCode>)]) {
    let roster = read_bytes("roster.csv", bytes, encoding, None).expect("roster should read");
    let got: Vec<(usize, &str, &str, Option<ReasonCode>)> = roster
        .rows
        .iter()
        .map(|r| {
            (
                r.row,
                r.person.id.as_str(),
                r.person.name.as_str(),
                r.finding.as_ref().map(|f| f.code),
            )
        })
        .collect();
    assert_eq!(got, expected);
}

fn gbk(text: &str) -> Vec<u8> {
    let (bytes, _, had_errors) = encoding_rs::GBK.encode(text);
    assert!(!had_errors);
    bytes.into_owned()
}

#[test]
fn utf8_plain() {
    check(
        b"employee_id,name\nE1,Alice\nE2,Bob\n",
        Encoding::Auto,
        &[(2, "E1", "Alice", None), (3, "E2", "Bob", None)],
    );
}

#[test]
fn utf8_with_bom_and_crlf() {
    check(
        "\u{feff}employee_id,name\r\nE1,张伟\r\nE2,王芳\r\n".as_bytes(),
        Encoding::Auto,
        &[(2, "E1", "张伟", None), (3, "E2", "王芳", None)],
    );
}

#[test]
fn gbk_detected_automatically() {
    check(
        &gbk("employee_id,name\r\nE1,张伟\r\nE2,欧阳娜娜\r\n"),
        Encoding::Auto,
        &[(2, "E1", "张伟", None), (3, "E2", "欧阳娜娜", None)],
    );
}

#[test]
fn gbk_set_explicitly() {
    check(
        &gbk("employee_id,name\nE1,李娜\n"),
        Encoding::Gbk,
        &[(2, "E1", "李娜", None)],
    );
    check(
        &gbk("employee_id,name\nE1,李娜\n"),
        Encoding::Gb18030,
        &[(2, "E1", "李娜", None)],
    );
}

#[test]
fn gb18030_four_byte_characters() {
    // U+20087 is outside GBK: GB18030 writes it in four bytes.
    let (bytes, _, had_errors) = encoding_rs::GB18030.encode("employee_id,name\nE1,𠂇\n");
    assert!(!had_errors);
    check(&bytes, Encoding::Auto, &[(2, "E1", "𠂇", None)]);
}

#[test]
fn utf16_with_bom_as_excel_unicode_text() {
    let text = "employee_id\tname\r\nE1\t张伟\r\n";
    let mut bytes = vec![0xff, 0xfe];
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    check(&bytes, Encoding::Auto, &[(2, "E1", "张伟", None)]);
}

#[test]
fn explicit_utf8_refuses_gbk_bytes_naming_the_line() {
    let err = read_bytes(
        "r.csv",
        &gbk("employee_id,name\nE1,张伟\n"),
        Encoding::Utf8,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("line 2") && err.contains("roster.encoding"),
        "{err}"
    );
}

#[test]
fn semicolon_and_tab_delimiters_are_detected() {
    check(
        b"employee_id;name\nE1;Alice\n",
        Encoding::Auto,
        &[(2, "E1", "Alice", None)],
    );
    check(
        b"employee_id\tname\nE1\tAlice\n",
        Encoding::Auto,
        &[(2, "E1", "Alice", None)],
    );
}

#[test]
fn a_set_delimiter_wins_over_detection() {
    let roster = read_bytes(
        "r.csv",
        b"employee_id;name;x,y,z\nE1;A,B;q\n",
        Encoding::Auto,
        Some(b';'),
    )
    .unwrap();
    assert_eq!(roster.rows[0].person.name, "A,B");
}

#[test]
fn quoted_fields_hold_commas_and_newlines_and_values_are_trimmed() {
    check(
        b"employee_id,name\n  E1 ,\"Chen, Bob\"\nE2,\"two\nlines\"\n\nE3,  Carol  \n",
        Encoding::Auto,
        &[
            (2, "E1", "Chen, Bob", None),
            (3, "E2", "two\nlines", None),
            (5, "E3", "Carol", None),
        ],
    );
}

#[test]
fn headers_match_case_insensitively_and_columns_in_any_order() {
    check(
        b"Name,EMPLOYEE_ID,dept\nAlice,E1,x\n",
        Encoding::Auto,
        &[(2, "E1", "Alice", None)],
    );
}

#[test]
fn missing_ids_are_findings_with_their_row() {
    let roster = read_bytes(
        "r.csv",
        b"employee_id,name\nE1,A\n,B\n  ,C\n",
        Encoding::Auto,
        None,
    )
    .unwrap();
    let codes: Vec<_> = roster
        .rows
        .iter()
        .map(|r| r.finding.as_ref().map(|f| f.code))
        .collect();
    assert_eq!(
        codes,
        vec![
            None,
            Some(ReasonCode::MissingId),
            Some(ReasonCode::MissingId)
        ]
    );
    let f = roster.rows[1].finding.as_ref().unwrap();
    assert!(f.message.contains("row 3"), "{}", f.message);
    assert_eq!(roster.rows[1].person.id, "#row3");
}

#[test]
fn every_copy_of_a_duplicate_id_is_flagged_case_insensitively() {
    let roster = read_bytes(
        "r.csv",
        b"employee_id,name\nE1,A\nE2,B\ne1,C\n",
        Encoding::Auto,
        None,
    )
    .unwrap();
    let codes: Vec<_> = roster
        .rows
        .iter()
        .map(|r| r.finding.as_ref().map(|f| f.code))
        .collect();
    assert_eq!(
        codes,
        vec![
            Some(ReasonCode::DuplicateId),
            None,
            Some(ReasonCode::DuplicateId)
        ]
    );
    assert!(
        roster.rows[0]
            .finding
            .as_ref()
            .unwrap()
            .message
            .contains("rows 2, 4")
    );
}

#[test]
fn short_rows_and_blank_lines_do_not_abort_the_roster() {
    check(
        b"employee_id,name,dept\nE1\n\n,,\nE2,B,x,extra\n",
        Encoding::Auto,
        &[(2, "E1", "", None), (5, "E2", "B", None)],
    );
}

#[test]
fn a_roster_without_the_id_column_names_the_columns_it_has() {
    let err = read_bytes("r.csv", b"staff_no,name\n1,A\n", Encoding::Auto, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("employee_id") && err.contains("`staff_no`, `name`"),
        "{err}"
    );
    assert!(err.contains("roster.columns.id"), "{err}");
}

#[test]
fn each_targets_id_column_is_read_into_its_own_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    std::fs::write(
        &path,
        "employee_id,name,Feishu ID,Lobby No\nE1,A,ou_1,17\nE2,B,,\n",
    )
    .unwrap();
    let mut columns = columns();
    columns.target_ids = BTreeMap::from([
        ("feishu".to_string(), "feishu id".to_string()),
        ("lobby".to_string(), "Lobby No".to_string()),
    ]);
    let config = RosterConfig {
        path,
        encoding: Encoding::Auto,
        delimiter: None,
        sheet: None,
        columns,
    };
    let roster = read(&config).unwrap();
    let ids: Vec<_> = roster.rows.iter().map(|r| &r.person.target_ids).collect();
    assert_eq!(
        ids,
        [
            &BTreeMap::from([
                ("feishu".to_string(), "ou_1".to_string()),
                ("lobby".to_string(), "17".to_string()),
            ]),
            &BTreeMap::new(),
        ]
    );
    let mut missing = config.clone();
    missing
        .columns
        .target_ids
        .insert("gate2".into(), "Gate No".into());
    let err = read(&missing).unwrap_err().to_string();
    assert!(
        err.contains("roster.columns.gate2_user_id") && err.contains("`Gate No`"),
        "{err}"
    );
}

#[test]
fn an_empty_file_has_no_header() {
    let err = read_bytes("r.csv", b"", Encoding::Auto, None).unwrap_err();
    assert!(matches!(err, RosterError::NoHeader { .. }), "{err}");
}

#[test]
fn a_missing_file_names_the_path() {
    let err = read(&RosterConfig {
        path: "/nonexistent/roster.csv".into(),
        encoding: Encoding::Auto,
        delimiter: None,
        sheet: None,
        columns: columns(),
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("/nonexistent/roster.csv"), "{err}");
}

#[test]
fn xlsx_first_sheet_and_named_sheet_with_numeric_ids() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/rosters/roster.xlsx");
    let mut config = RosterConfig {
        path,
        encoding: Encoding::Auto,
        delimiter: None,
        sheet: None,
        columns: columns(),
    };
    let first = read(&config).unwrap();
    let ids: Vec<_> = first
        .rows
        .iter()
        .map(|r| (r.row, r.person.id.as_str(), r.person.name.as_str()))
        .collect();
    assert_eq!(
        ids,
        vec![
            (2, "1001", "张伟"),
            (3, "1002", "Alice Martin"),
            (4, "E1003", "王芳")
        ]
    );
    config.sheet = Some("Contractors".into());
    let named = read(&config).unwrap();
    assert_eq!(named.rows[0].person.id, "C1");
    config.sheet = Some("Nope".into());
    let err = read(&config).unwrap_err().to_string();
    assert!(err.contains("Nope") && err.contains("Contractors"), "{err}");
}
