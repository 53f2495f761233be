//! Matching cases on real folders in a temp dir.

use std::path::Path;

use super::*;
use crate::config::Pick;
use crate::roster::{Person, Row};

fn row(n: usize, id: &str, photo: Option<&str>) -> Row {
    Row {
        row: n,
        person: Person {
            id: id.into(),
            photo: photo.map(str::to_string),
            ..Person::default()
        },
        finding: None,
    }
}

fn folder(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        let p = dir.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }
    dir
}

/// For each row: Ok(relative path) or Err(reason code).
fn check(
    files: &[&str],
    recursive: bool,
    rows: &[Row],
    expected: &[Result<&str, ReasonCode>],
    orphans: &[&str],
) {
    let dir = folder(files);
    let index = PhotoIndex::scan(dir.path(), recursive).unwrap();
    let m = match_rows(rows, &index);
    let got: Vec<Result<&str, ReasonCode>> = m
        .photos
        .iter()
        .map(|p| p.as_ref().map(|f| f.relative.as_str()).map_err(|f| f.code))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(m.orphans, orphans);
}

#[test]
fn by_file_name_case_insensitive_id_and_extension() {
    check(
        &["E1.JPG", "e2.png", "E3.WebP", "E4.tiff"],
        false,
        &[
            row(2, "e1", None),
            row(3, "E2", None),
            row(4, "E3", None),
            row(5, "E4", None),
        ],
        &[Ok("E1.JPG"), Ok("e2.png"), Ok("E3.WebP"), Ok("E4.tiff")],
        &[],
    );
}

#[test]
fn no_photo_two_photos_and_orphans() {
    check(
        &["E1.jpg", "E1.png", "E9.jpg", "notes.txt", ".hidden.jpg"],
        false,
        &[row(2, "E1", None), row(3, "E2", None)],
        &[Err(ReasonCode::AmbiguousPhoto), Err(ReasonCode::NoPhoto)],
        &["E9.jpg"],
    );
}

#[test]
fn the_ambiguous_finding_names_both_files() {
    let dir = folder(&["E1.jpg", "E1.jpeg"]);
    let index = PhotoIndex::scan(dir.path(), false).unwrap();
    let m = match_rows(&[row(2, "E1", None)], &index);
    let msg = &m.photos[0].as_ref().unwrap_err().message;
    assert!(msg.contains("E1.jpg") && msg.contains("E1.jpeg"), "{msg}");
}

#[test]
fn heic_only_is_unsupported_with_advice() {
    check(
        &["E1.HEIC"],
        false,
        &[row(2, "E1", None)],
        &[Err(ReasonCode::UnsupportedFormat)],
        &[],
    );
}

#[test]
fn sub_folders_only_when_recursive() {
    check(
        &["a/E1.jpg"],
        false,
        &[row(2, "E1", None)],
        &[Err(ReasonCode::NoPhoto)],
        &[],
    );
    check(
        &["a/E1.jpg", "b/c/E2.jpg"],
        true,
        &[row(2, "E1", None)],
        &[Ok("a/E1.jpg")],
        &["b/c/E2.jpg"],
    );
    check(
        &["a/E1.jpg", "b/E1.jpg"],
        true,
        &[row(2, "E1", None)],
        &[Err(ReasonCode::AmbiguousPhoto)],
        &[],
    );
}

#[test]
fn by_photo_column_inside_the_folder() {
    check(
        &["team/alice.jpg", "E2.jpg"],
        true,
        &[row(2, "E1", Some("team/alice.jpg")), row(3, "E2", None)],
        &[Ok("team/alice.jpg"), Ok("E2.jpg")],
        &[],
    );
}

#[test]
fn photo_column_paths_that_leave_the_folder() {
    check(
        &["E1.jpg"],
        false,
        &[
            row(2, "A", Some("../secret.jpg")),
            row(3, "B", Some("/etc/passwd")),
            row(4, "C", Some("sub/../../x.jpg")),
            row(5, "D", Some("missing.jpg")),
        ],
        &[
            Err(ReasonCode::PhotoOutsideFolder),
            Err(ReasonCode::PhotoOutsideFolder),
            Err(ReasonCode::PhotoOutsideFolder),
            Err(ReasonCode::NoPhoto),
        ],
        &["E1.jpg"],
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_pointing_outside_the_folder_is_refused() {
    let outside = folder(&["real.jpg"]);
    let dir = folder(&[]);
    std::os::unix::fs::symlink(outside.path().join("real.jpg"), dir.path().join("E1.jpg")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("real.jpg"), dir.path().join("link.jpg"))
        .unwrap();
    let index = PhotoIndex::scan(dir.path(), false).unwrap();
    let m = match_rows(
        &[row(2, "E1", None), row(3, "E2", Some("link.jpg"))],
        &index,
    );
    for p in &m.photos {
        assert_eq!(p.as_ref().unwrap_err().code, ReasonCode::PhotoOutsideFolder);
    }
}

#[test]
fn rows_with_findings_are_not_matched_and_their_files_are_not_orphans() {
    let mut dup = row(2, "E1", None);
    dup.finding = Some(Finding::new(ReasonCode::DuplicateId, "dup"));
    check(
        &["E1.jpg"],
        false,
        &[dup],
        &[Err(ReasonCode::DuplicateId)],
        &[],
    );
}

#[test]
fn a_missing_folder_is_an_error_naming_it() {
    let err = PhotoIndex::scan(Path::new("/nonexistent/photos"), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/photos"), "{err}");
}

#[test]
fn a_hundred_thousand_files_index_and_match() {
    let dir = tempfile::tempdir().unwrap();
    let n = 100_000;
    for i in 0..n {
        std::fs::File::create(dir.path().join(format!("P{i}.jpg"))).unwrap();
    }
    let rows: Vec<Row> = (0..n).map(|i| row(i + 2, &format!("p{i}"), None)).collect();
    let index = PhotoIndex::scan(dir.path(), false).unwrap();
    let m = match_rows(&rows, &index);
    assert!(m.photos.iter().all(|p| p.is_ok()));
    assert!(m.orphans.is_empty());
}

/// With `pick = "best"`: for each row, its candidates' relative paths (one: the photo), or the
/// reason code; and the orphans.
fn check_best(
    files: &[&str],
    recursive: bool,
    rows: &[Row],
    expected: &[Result<&[&str], ReasonCode>],
    orphans: &[&str],
) {
    let dir = folder(files);
    let index = PhotoIndex::scan_for(dir.path(), recursive, Pick::Best).unwrap();
    let m = match_rows(rows, &index);
    let got: Vec<Result<Vec<&str>, ReasonCode>> = m
        .photos
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let p = p.as_ref().map_err(|f| f.code)?;
            Ok(match m.several.get(&i) {
                Some(files) => {
                    assert_eq!(files[0], *p, "a row's photo is its first candidate");
                    files.iter().map(|f| f.relative.as_str()).collect()
                }
                None => vec![p.relative.as_str()],
            })
        })
        .collect();
    let expected: Vec<Result<Vec<&str>, ReasonCode>> =
        expected.iter().map(|e| e.map(<[&str]>::to_vec)).collect();
    assert_eq!(got, expected);
    assert_eq!(m.orphans, orphans);
}

#[test]
fn pick_best_takes_every_shape_of_several_photos_as_candidates() {
    // Two extensions, a copy as file managers name it, and (recursive) the same name in two
    // folders and a folder named after the person; path order; other people's files untouched.
    check_best(
        &[
            "E1.jpg",
            "E1 (2).jpg",
            "e1(3).PNG",
            "E2.png",
            "E2.jpeg",
            "E3 (2).jpg",
            "E4 (x).jpg",
            "notes.txt",
        ],
        false,
        &[row(2, "E1", None), row(3, "E2", None), row(4, "E3", None)],
        &[
            Ok(&["E1 (2).jpg", "E1.jpg", "e1(3).PNG"]),
            Ok(&["E2.jpeg", "E2.png"]),
            Ok(&["E3 (2).jpg"]),
        ],
        &["E4 (x).jpg"],
    );
    check_best(
        &[
            "E1/front.jpg",
            "E1/E1.jpg",
            "E1/old/side.jpg",
            "E1/notes.txt",
            "a/E2.jpg",
            "b/E2.jpg",
            "E3/only.jpg",
            "E9/x.jpg",
        ],
        true,
        &[row(2, "E1", None), row(3, "E2", None), row(4, "E3", None)],
        &[
            Ok(&["E1/E1.jpg", "E1/front.jpg"]),
            Ok(&["a/E2.jpg", "b/E2.jpg"]),
            Ok(&["E3/only.jpg"]),
        ],
        &["E1/old/side.jpg", "E9/x.jpg"],
    );
}

#[test]
fn pick_best_without_recursive_does_not_look_in_sub_folders() {
    check_best(
        &["E1.jpg", "E1/front.jpg"],
        false,
        &[row(2, "E1", None)],
        &[Ok(&["E1.jpg"])],
        &[],
    );
}

#[test]
fn pick_ambiguous_leaves_copies_and_folders_alone() {
    // Today's behaviour: a copy is an orphan, a folder named after the person is not looked in.
    check(
        &["E1.jpg", "E1 (2).jpg", "E2/front.jpg"],
        true,
        &[row(2, "E1", None), row(3, "E2", None)],
        &[Ok("E1.jpg"), Err(ReasonCode::NoPhoto)],
        &["E1 (2).jpg", "E2/front.jpg"],
    );
}

#[test]
fn copy_names() {
    for (stem, id) in [
        ("e1 (2)", Some("e1")),
        ("e1(12)", Some("e1")),
        ("e1 ()", None),
        ("e1 (a)", None),
        ("(2)", None),
        ("e1", None),
    ] {
        assert_eq!(copy_of(stem), id, "{stem}");
    }
}
