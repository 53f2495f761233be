//! The face hash against copies of one photo (must match) and different photos (must not).

use std::path::Path;

use image::RgbImage;

use super::*;
use crate::config::{Config, PhotoConfig};
use crate::photo::{FaceSeen, decode, face, face_hash_of, normalize, prepare_hashed};

fn photos() -> PhotoConfig {
    Config::parse("[roster]\npath = \"r.csv\"\n", Path::new("/x/config.toml"))
        .unwrap()
        .photos
}

fn profiles() -> Vec<(String, crate::config::Profile)> {
    let profile = crate::config::Profile {
        format: crate::config::OutputFormat::Jpeg,
        max_width: 1080,
        max_height: 1440,
        max_bytes: 1_048_576,
        min_quality: 60,
        min_short_side: 0,
        requirements: crate::config::Requirements::DEFAULT,
    };
    vec![("feishu".to_string(), profile)]
}

fn fixture(path: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The face portraits: the public-domain photos of ../shared/data/faces that have a face,
/// as fixtures/make_faces.py made them.
const PORTRAITS: [&str; 4] = ["astronaut", "obama", "obama2", "biden"];

fn portrait(name: &str) -> Vec<u8> {
    fixture(&format!("faces/{name}.jpg"))
}

fn hash(bytes: &[u8]) -> FaceHash {
    face_hash_of(bytes, &photos()).unwrap_or_else(|| panic!("a face is found"))
}

fn rgb(bytes: &[u8]) -> RgbImage {
    image::load_from_memory(bytes).unwrap().into_rgb8()
}

/// The copies an HR folder holds of one photo: re-saved, resized, touched up, trimmed.
pub(crate) fn copies(bytes: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let image = rgb(bytes);
    let (w, h) = image.dimensions();
    let half = image::imageops::resize(&image, w / 2, h / 2, image::imageops::FilterType::Triangle);
    let mut brighter = image.clone();
    for p in brighter.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = (f32::from(*c) * 1.1).round().min(255.0) as u8;
        }
    }
    let trimmed = image::imageops::crop_imm(&image, 6, 4, w - 10, h - 8).to_image();
    vec![
        ("re-saved at quality 30", normalize::jpeg(&image, 30)),
        ("halved", normalize::jpeg(&half, 90)),
        ("10% brighter", normalize::jpeg(&brighter, 90)),
        ("trimmed by a few pixels", normalize::jpeg(&trimmed, 90)),
        ("as PNG", {
            let mut out = std::io::Cursor::new(Vec::new());
            image.write_to(&mut out, image::ImageFormat::Png).unwrap();
            out.into_inner()
        }),
    ]
}

#[test]
fn copies_of_one_photo_match() {
    let mut worst = 0;
    for name in PORTRAITS {
        let original = portrait(name);
        let h = hash(&original);
        for (what, copy) in copies(&original) {
            let d = h.distance(hash(&copy));
            eprintln!("{name} {what}: {d}");
            worst = worst.max(d);
            assert!(d <= SAME_PHOTO, "{name} {what}: {d} bits apart");
        }
    }
    eprintln!("copies: at most {worst} bits apart");
}

#[test]
fn different_photos_never_match() {
    let hashes: Vec<(String, FaceHash)> = PORTRAITS
        .iter()
        .map(|n| (n.to_string(), hash(&portrait(n))))
        .collect();
    let mut closest = u32::MAX;
    for (i, (a, ha)) in hashes.iter().enumerate() {
        for (b, hb) in &hashes[i + 1..] {
            let d = ha.distance(*hb);
            eprintln!("{a} vs {b}: {d}");
            closest = closest.min(d);
            assert!(!ha.same_photo(*hb), "{a} vs {b}: {d} bits apart");
        }
    }
    eprintln!("portraits: at least {closest} bits apart");
}

#[test]
fn the_faces_of_a_group_photo_are_all_different() {
    let bytes = fixture("images/group.jpg");
    let image = rgb(&bytes);
    let grey = image::DynamicImage::ImageRgb8(image.clone()).into_luma8();
    let faces = face::detect(&grey);
    assert!(faces.len() >= 6, "{} faces", faces.len());
    let decoded = decode::Decoded {
        pixels: decode::Pixels::Rgb(image),
        source_width: 620,
    };
    let hashes: Vec<FaceHash> = faces.iter().map(|f| face_hash(&decoded, f)).collect();
    let mut closest = u32::MAX;
    for (i, a) in hashes.iter().enumerate() {
        for b in &hashes[i + 1..] {
            closest = closest.min(a.distance(*b));
            assert!(!a.same_photo(*b), "{a:?} vs {b:?}");
        }
    }
    eprintln!("{} group faces: at least {closest} bits apart", faces.len());
}

#[test]
fn prepare_and_the_detector_sized_pass_agree() {
    // `prepare` decodes at the size the outputs need, the pre-pass at the detector's: the
    // hashes of one file come out (nearly) the same.
    for name in PORTRAITS {
        let bytes = portrait(name);
        let (seen, result) = prepare_hashed(&bytes, &photos(), &profiles());
        result.unwrap();
        let FaceSeen::Hashed(a) = seen else {
            panic!("{name}: {seen:?}")
        };
        let d = a.distance(hash(&bytes));
        assert!(d <= SAME_PHOTO / 2, "{name}: {d}");
    }
}

#[test]
fn no_face_no_hash() {
    assert_eq!(face_hash_of(&fixture("images/cat.jpg"), &photos()), None);
    assert_eq!(
        face_hash_of(&fixture("images/corrupt.jpg"), &photos()),
        None
    );
    assert_eq!(face_hash_of(b"not an image", &photos()), None);
    let (seen, _) = prepare_hashed(&fixture("images/cat.jpg"), &photos(), &[]);
    assert_eq!(seen, FaceSeen::NotFound);
    let off = PhotoConfig {
        face_check: false,
        ..photos()
    };
    let (seen, _) = prepare_hashed(&fixture("images/cat.jpg"), &off, &[]);
    assert_eq!(seen, FaceSeen::NotLooked);
}

#[test]
fn a_mirrored_photo_is_another_photo() {
    // Not a re-save: a mirror image is what a selfie camera makes, and it is rarely the HR
    // mix-up; the hash does not look for it.
    let bytes = portrait("obama");
    let mirrored = image::imageops::flip_horizontal(&rgb(&bytes));
    let d = hash(&bytes).distance(hash(&normalize::jpeg(&mirrored, 90)));
    eprintln!("mirrored: {d}");
    assert!(d > SAME_PHOTO, "{d}");
}
