//! The face check: exactly one face, big enough, else a finding that says which way it failed.
//!
//! Detection cost grows with the square of the image given to the detector, and the detector
//! only sees faces of at least [`face::WINDOW`] pixels. So it runs coarse to fine: first on a
//! small thumbnail that finds the large faces of ordinary portraits cheaply, then, only when
//! needed, on a larger one limited to the smaller faces the first pass could not see (a second
//! face of similar size, or a face too small to pass).

use image::{GrayImage, RgbImage};

use super::decode::Pixels;
use super::face::{self, FaceBox};
use super::resize;
use crate::config::PhotoConfig;
use crate::reason::{Finding, ReasonCode};

/// A face at least this fraction of the largest face's width counts as "of similar size":
/// two people side by side. Smaller faces are bystanders and do not make a photo invalid.
pub(crate) const SIMILAR: f64 = 0.6;

/// The shorter side of the first, cheap pass: it finds faces of at least a quarter of the
/// photo's shorter side.
const COARSE_SHORT: u32 = 160;

/// The shorter side of the grey thumbnail both passes usually start from.
pub(crate) const BASE_SHORT: u32 = 320;

/// Faces smaller than this fraction of `min_face_fraction` are not searched for: below it a
/// photo is `no_face` rather than `face_too_small`.
const SEARCH_BELOW_MIN: f64 = 0.6;

/// The smallest face fraction searched for, whatever the settings.
fn search_floor(photos: &PhotoConfig) -> f64 {
    (f64::from(photos.min_face_fraction) * SEARCH_BELOW_MIN).max(0.02)
}

/// The shorter side the decoded image needs so the finest pass can run at full size.
pub(crate) fn needed_short_side(photos: &PhotoConfig) -> u32 {
    (f64::from(face::WINDOW) / search_floor(photos)).ceil() as u32
}

/// The single face of a photo, in the image's pixel coordinates, or why there is not one.
pub(crate) fn single_face(pixels: &Pixels, photos: &PhotoConfig) -> Result<FaceBox, Finding> {
    let faces = find_faces(pixels, photos);
    let (w, h) = pixels.dimensions();
    classify(&faces, w.min(h), photos)
}

/// Every face found, largest first, in the image's pixel coordinates. A JPEG's block means or
/// luma plane are shrunk as they are; RGB is shrunk first and then turned grey.
pub(crate) fn find_faces(pixels: &Pixels, photos: &PhotoConfig) -> Vec<FaceBox> {
    find(pixels, photos, false).expect("not limited to the base thumbnail")
}

/// [`find_faces`] when it needs no more than the base thumbnail ([`BASE_SHORT`] pixels on the
/// shorter side), which it then takes from `pixels` as they are; `None` when a face smaller
/// than the base thumbnail shows needs a search at a larger size. For an image of at least
/// [`BASE_SHORT`] pixels (a JPEG's block means), the answer is the one [`find_faces`] gives on
/// the photo at any larger size whose base thumbnail comes from those means too.
pub(crate) fn find_faces_in_base(pixels: &Pixels, photos: &PhotoConfig) -> Option<Vec<FaceBox>> {
    find(pixels, photos, true)
}

fn find(pixels: &Pixels, photos: &PhotoConfig, base_only: bool) -> Option<Vec<FaceBox>> {
    let (w, h) = pixels.dimensions();
    let short = w.min(h);
    let base_short = short.min(BASE_SHORT);
    let thumbnail = |short: u32| match pixels {
        Pixels::Planes { y, .. } => grey_thumbnail(y, short),
        Pixels::Rgb(image) => grey_thumbnail_rgb(image, short),
    };
    let base = match pixels {
        // A JPEG's block means are a thumbnail already: shrinking them costs a sixteenth of
        // shrinking the luma plane, for the same picture at this size to within a level or two.
        Pixels::Planes { dc: Some(dc), .. } if dc.width().min(dc.height()) >= base_short => {
            grey_thumbnail(dc, base_short)
        }
        _ => thumbnail(base_short),
    };
    let coarse_short = base_short.min(COARSE_SHORT);
    let coarse = if coarse_short < base_short {
        grey_thumbnail(&base, coarse_short)
    } else {
        base.clone()
    };
    let found = face::detect(&coarse);
    // The largest face's share of the shorter side, measured in the coarse image itself: the
    // same whatever size the photo was decoded at, so that the search below is too.
    let largest = found.iter().map(|f| f.width).max();
    let mut faces = scaled(found, w, coarse.width());
    faces.sort_by_key(|f| std::cmp::Reverse(f.width));

    // Faces below this fraction of the shorter side were too small for the coarse pass.
    let coarse_reach = f64::from(face::WINDOW) / f64::from(coarse_short);
    let wanted = match largest {
        Some(width) => SIMILAR * f64::from(width) / f64::from(coarse_short),
        None => search_floor(photos),
    }
    .max(search_floor(photos));
    let fine_short = ((f64::from(face::WINDOW) / wanted).ceil() as u32).min(short);
    if wanted < coarse_reach && fine_short > coarse_short {
        if base_only && fine_short > base_short {
            return None;
        }
        let fine = if fine_short <= base_short {
            grey_thumbnail(&base, fine_short)
        } else {
            thumbnail(fine_short)
        };
        // Only the pyramid levels larger than the coarse image: with the coarse pass's own
        // levels they make one pyramid with the detector's own steps, and no level is searched
        // twice. (Levels of about the coarse image's size again found the coarse pass's faces
        // a second time, for half of this pass's cost.)
        let max_face = fine_levels_up_to(fine_short, coarse_short);
        for f in scaled(face::detect_up_to(&fine, max_face), w, fine.width()) {
            if !faces.iter().any(|g| same_face(g, &f)) {
                faces.push(f);
            }
        }
        faces.sort_by_key(|f| std::cmp::Reverse(f.width));
    }
    Some(faces)
}

/// The largest face the fine pass (an image whose shorter side is `fine_short`) looks for, so
/// that its pyramid stops at the last level larger than the coarse pass's image: the detector
/// keeps the levels at scales of at least `WINDOW / max_face`. The next level down would be at
/// most the coarse image's size, so the step from the last level to the coarse image is the
/// pyramid's own (give or take the 2% that a whole pixel of `max_face` makes).
fn fine_levels_up_to(fine_short: u32, coarse_short: u32) -> u32 {
    let exact = f64::from(face::WINDOW) * f64::from(fine_short) / f64::from(coarse_short);
    (exact.ceil() as u32 - 1).max(face::WINDOW)
}

/// The verdict on the faces found (largest first) in an image whose shorter side is `short`.
pub(crate) fn classify(
    faces: &[FaceBox],
    short: u32,
    photos: &PhotoConfig,
) -> Result<FaceBox, Finding> {
    let Some(&largest) = faces.first() else {
        return Err(Finding::new(ReasonCode::NoFace, "no face found"));
    };
    let similar = faces
        .iter()
        .filter(|f| f64::from(f.width) >= SIMILAR * f64::from(largest.width))
        .count();
    if similar >= 2 {
        return Err(Finding::new(
            ReasonCode::MultipleFaces,
            format!("{similar} faces of similar size found"),
        ));
    }
    let fraction = f64::from(largest.width) / f64::from(short);
    // The setting is an f32: compare at its precision, so 0.1 means 0.1.
    if (fraction as f32) < photos.min_face_fraction {
        return Err(Finding::new(
            ReasonCode::FaceTooSmall,
            format!(
                "the face is {:.0}% of the photo's shorter side; at least {:.0}% is needed (photos.min_face_fraction)",
                fraction * 100.0,
                f64::from(photos.min_face_fraction) * 100.0
            ),
        ));
    }
    Ok(largest)
}

/// Two detections of one face: the centre of either lies inside the other.
fn same_face(a: &FaceBox, b: &FaceBox) -> bool {
    let inside = |p: &FaceBox, q: &FaceBox| {
        let cx = p.x + p.width as i32 / 2;
        let cy = p.y + p.height as i32 / 2;
        cx >= q.x && cx <= q.x + q.width as i32 && cy >= q.y && cy <= q.y + q.height as i32
    };
    inside(a, b) || inside(b, a)
}

/// Maps boxes found in an image `from_width` wide to one `to_width` wide.
pub(crate) fn scaled(faces: Vec<FaceBox>, to_width: u32, from_width: u32) -> Vec<FaceBox> {
    let k = f64::from(to_width) / f64::from(from_width);
    faces
        .into_iter()
        .map(|f| FaceBox {
            x: (f64::from(f.x) * k).round() as i32,
            y: (f64::from(f.y) * k).round() as i32,
            width: (f64::from(f.width) * k).round() as u32,
            height: (f64::from(f.height) * k).round() as u32,
            score: f.score,
        })
        .collect()
}

fn thumbnail_size(w: u32, h: u32, short: u32) -> (u32, u32) {
    if w <= h {
        (
            short,
            (u64::from(h) * u64::from(short) / u64::from(w)).max(1) as u32,
        )
    } else {
        (
            (u64::from(w) * u64::from(short) / u64::from(h)).max(1) as u32,
            short,
        )
    }
}

/// A grey thumbnail whose shorter side is `short`: shrunk in colour first, so the colour to
/// grey conversion runs on the small image only.
fn grey_thumbnail_rgb(image: &RgbImage, short: u32) -> GrayImage {
    let (w, h) = thumbnail_size(image.width(), image.height(), short);
    let small = if (w, h) == image.dimensions() {
        image.clone()
    } else {
        resize::rgb(
            image,
            resize::Region::whole(image),
            w,
            h,
            resize::Quality::Fast,
        )
    };
    image::DynamicImage::ImageRgb8(small).into_luma8()
}

fn grey_thumbnail(image: &GrayImage, short: u32) -> GrayImage {
    let (w, h) = thumbnail_size(image.width(), image.height(), short);
    resize::grey(image, w, h)
}
