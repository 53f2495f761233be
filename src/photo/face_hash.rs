//! The face hash: a 64-bit perceptual hash of the face crop, so that one photo under two roster
//! ids is found however it was re-saved or resized (`duplicate_photo`).
//!
//! The face is cropped where its landmarks frame it (the square MTCNN would hand its output
//! network, from two landmark passes), enlarged by [`MARGIN`]: the detector's own box moves by
//! a window step between two sizes of one photo, which cost up to 20 bits on a re-saved copy.
//! The crop is resized to 32x32 grey; its 2-D DCT's 8x8 lowest frequencies but the DC (63 of
//! them) are each compared with their median: one bit each, bit 63 always 0 (so every hash has
//! 31 bits set and distances are even). The low frequencies keep the face's layout and drop
//! what a re-save, a resize or a brightness change alters (noise, sharpness, the mean).
//!
//! Measured (`face_hash::tests`, 2026-12-02, the face found as the pre-pass finds it): copies of
//! the four fixtures/faces portraits re-saved at JPEG quality 30, halved, made 10% brighter,
//! trimmed by a few pixels or saved as PNG differ from the original by 0 to 6 bits (20 copies:
//! 0 eleven times, 2 five times, 4 twice, 6 twice); `prepare`'s hash (decoded at the outputs'
//! size) and the pre-pass's (at the detector's) by at most 4 (the pre-pass now decodes a
//! phone-sized JPEG at 1/8: `the_pre_pass_finds_on_the_block_means_the_face_the_stage_finds`
//! holds that hash within 4 bits of the stage's too). Different photos: the portraits
//! 26 to 34 bits apart, the same man's two photos (obama, obama2) 28; the 7 small faces (about
//! 45 px) of the group photo at least 12; a mirrored copy 32. So two hashes at most
//! [`SAME_PHOTO`] = 8 bits apart are one photo: above every copy measured, below the closest
//! different faces.

use image::GrayImage;

use super::decode::{Decoded, Pixels};
use super::face::FaceBox;
use super::resize;

/// Two face hashes at most this many bits apart are one photo.
pub const SAME_PHOTO: u32 = 8;

/// The landmarks' square is enlarged by this fraction of its side before hashing: what is left
/// of its jitter is then a smaller part of the crop, and the hair line and jaw count too.
const MARGIN: f64 = 0.2;

/// The side of the grey square the DCT runs on.
const SIDE: usize = 32;

/// The frequencies kept in each direction.
const LOW: usize = 8;

/// A perceptual hash of a face crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaceHash(pub u64);

impl FaceHash {
    /// How many bits differ.
    pub fn distance(self, other: FaceHash) -> u32 {
        (self.0 ^ other.0).count_ones()
    }

    /// Within [`SAME_PHOTO`] bits: the same photo, re-saved, resized or lightly edited.
    pub fn same_photo(self, other: FaceHash) -> bool {
        self.distance(other) <= SAME_PHOTO
    }
}

/// The hash of `face` (in the decoded image's coordinates), cropped where its landmarks
/// frame it.
pub(crate) fn face_hash(decoded: &Decoded, face: &FaceBox) -> FaceHash {
    face_hash_in(decoded, super::quality::landmark_square(decoded, face))
}

/// The hash of the face whose landmarks frame the square (left, top, side)
/// ([`super::quality::landmark_square`], which the quality gate's measures carry).
pub(crate) fn face_hash_in(decoded: &Decoded, landmark_square: (f32, f32, f32)) -> FaceHash {
    let (w, h) = decoded.dimensions();
    let square = crop_square(w, h, landmark_square);
    let grey = match &decoded.pixels {
        Pixels::Planes { y, .. } => resize::grey_region(y, square, SIDE as u32, SIDE as u32),
        Pixels::Rgb(image) => {
            let [left, top, width, height] = square.map(|v| v.round() as u32);
            let small = resize::rgb(
                image,
                resize::Region {
                    left,
                    top,
                    width: width.clamp(1, w - left.min(w - 1)),
                    height: height.clamp(1, h - top.min(h - 1)),
                },
                SIDE as u32,
                SIDE as u32,
                resize::Quality::Fast,
            );
            image::DynamicImage::ImageRgb8(small).into_luma8()
        }
    };
    hash_of(&grey)
}

/// The square (left, top, side) enlarged by [`MARGIN`] about its centre, moved (then clipped)
/// to lie inside a `w` x `h` image: left, top, width, height.
fn crop_square(w: u32, h: u32, (left, top, side): (f32, f32, f32)) -> [f64; 4] {
    let (w, h) = (f64::from(w), f64::from(h));
    let cx = f64::from(left) + f64::from(side) / 2.0;
    let cy = f64::from(top) + f64::from(side) / 2.0;
    let side = (f64::from(side) * (1.0 + MARGIN)).clamp(1.0, w.min(h));
    let left = (cx - side / 2.0).clamp(0.0, w - side);
    let top = (cy - side / 2.0).clamp(0.0, h - side);
    [left, top, side, side]
}

/// The DCT hash of a [`SIDE`] x [`SIDE`] grey image.
fn hash_of(grey: &GrayImage) -> FaceHash {
    debug_assert_eq!(grey.dimensions(), (SIDE as u32, SIDE as u32));
    let basis = basis();
    // Rows first: each row's LOW lowest frequencies, then the columns of those.
    let mut rows = [[0f64; LOW]; SIDE];
    for (y, out) in rows.iter_mut().enumerate() {
        for (u, value) in out.iter_mut().enumerate() {
            *value = (0..SIDE)
                .map(|x| basis[u][x] * f64::from(grey.get_pixel(x as u32, y as u32).0[0]))
                .sum();
        }
    }
    let mut low = [0f64; LOW * LOW - 1];
    for v in 0..LOW {
        for u in 0..LOW {
            if (u, v) == (0, 0) {
                continue;
            }
            low[v * LOW + u - 1] = (0..SIDE).map(|y| basis[v][y] * rows[y][u]).sum();
        }
    }
    let mut sorted = low;
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let bits = low
        .iter()
        .enumerate()
        .filter(|&(_, &c)| c > median)
        .fold(0u64, |bits, (i, _)| bits | 1 << i);
    FaceHash(bits)
}

/// The DCT-II basis: `basis[u][x] = cos((2x + 1) u pi / 2N)` (unscaled: only signs and order
/// matter to the hash).
fn basis() -> &'static [[f64; SIDE]; LOW] {
    static BASIS: std::sync::OnceLock<[[f64; SIDE]; LOW]> = std::sync::OnceLock::new();
    BASIS.get_or_init(|| {
        let mut b = [[0f64; SIDE]; LOW];
        for (u, row) in b.iter_mut().enumerate() {
            for (x, value) in row.iter_mut().enumerate() {
                *value = (std::f64::consts::PI * (2 * x + 1) as f64 * u as f64 / (2 * SIDE) as f64)
                    .cos();
            }
        }
        b
    })
}

#[cfg(test)]
pub(crate) mod tests;
