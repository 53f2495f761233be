//! The quality gate's labelled set: copies of a good portrait, each with one controlled damage
//! and the reason the gate must refuse it with. The gate's tests (`tests/quality.rs`) hold
//! every copy of fixtures/faces to its reason; `cargo bench --bench photos` prints the same
//! set's detection rates. Not part of the pipeline: nothing else calls it.

use image::RgbImage;

use super::decode::{self, Decoded};
use super::face::FaceBox;
use super::quality::{self, Measures};
use super::{check, normalize};
use crate::config::PhotoConfig;
use crate::reason::ReasonCode;

/// One controlled damage, and the reason it must be refused with. Each is sized from the
/// original's own measures, so it crosses the default requirement by a clear margin while the
/// detector still finds the face (a damage that hides the face is `no_face`, another test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// Gaussian blur, sigma a tenth of the distance between the eyes.
    Blur,
    /// Everything darkened so the face's mean brightness is about 38.
    Darken,
    /// Brightened and burnt out so most of the face is white.
    Overexpose,
    /// Turned so the eye line leans 30 to 34 degrees.
    Rotate,
    /// Shrunk until the eyes are 20 pixels apart (on a grey canvas of the smallest photo
    /// facesync accepts, 200 px on the shorter side).
    Downscale,
    /// A turn to one side (the side it already turns to) simulated by resampling columns: the
    /// near half of the face widened, the far half narrowed, the nose moved off the middle of
    /// the eyes, as on a head turned by 30 to 40 degrees.
    Turn,
}

impl Damage {
    pub const ALL: [Damage; 6] = [
        Damage::Blur,
        Damage::Darken,
        Damage::Overexpose,
        Damage::Rotate,
        Damage::Downscale,
        Damage::Turn,
    ];

    /// The reason the gate must refuse a copy with this damage.
    pub fn expected(self) -> ReasonCode {
        match self {
            Damage::Blur => ReasonCode::FaceBlurry,
            Damage::Darken => ReasonCode::FaceTooDark,
            Damage::Overexpose => ReasonCode::FaceTooBright,
            Damage::Rotate => ReasonCode::FaceTilted,
            Damage::Downscale => ReasonCode::EyesTooClose,
            Damage::Turn => ReasonCode::FaceTurned,
        }
    }

    /// A damaged copy of `image`, a portrait in which `photos`' face check finds one face.
    ///
    /// # Panics
    /// If it does not: the set is made from good portraits only.
    pub fn apply(self, image: &RgbImage, photos: &PhotoConfig) -> RgbImage {
        let m = measures(image, photos);
        let map = |f: &dyn Fn(f32) -> f32| {
            let mut out = image.clone();
            for p in out.pixels_mut() {
                for c in p.0.iter_mut() {
                    *c = f(f32::from(*c)).round().clamp(0.0, 255.0) as u8;
                }
            }
            out
        };
        match self {
            Damage::Blur => image::imageops::blur(image, m.eye_distance / 10.0),
            Damage::Darken => map(&|v| v * 38.0 / m.face_luma),
            Damage::Overexpose => map(&|v| (v - m.face_luma) * 1.1 + 250.0),
            // The detector finds faces up to 30 to 35 degrees from upright, not always: the
            // first lean of these it finds (one it misses is `no_face`, tested elsewhere).
            Damage::Rotate => [32.0f32, -32.0, 30.0, -30.0, 34.0, -34.0]
                .into_iter()
                .map(|lean| normalize::rotate(image, m.roll - lean, eyes_middle(&m)))
                .find(|r| check::single_face(&decoded(r, photos).pixels, photos).is_ok())
                .expect("the detector finds one of the leaning copies"),
            Damage::Downscale => {
                let k = 20.0 / m.eye_distance;
                let (w, h) = (
                    (image.width() as f32 * k).round() as u32,
                    (image.height() as f32 * k).round() as u32,
                );
                let small =
                    image::imageops::resize(image, w, h, image::imageops::FilterType::Triangle);
                let mut canvas = RgbImage::from_pixel(w.max(200), h.max(200), image::Rgb([128; 3]));
                image::imageops::overlay(
                    &mut canvas,
                    &small,
                    i64::from((w.max(200) - w) / 2),
                    i64::from((h.max(200) - h) / 2),
                );
                canvas
            }
            Damage::Turn => turn(image, &m),
        }
    }
}

/// `image` as the JPEG file the set's copies are checked as (quality 92).
pub fn jpeg(image: &RgbImage) -> Vec<u8> {
    normalize::jpeg(image, 92)
}

/// What the gate measures on `image`'s one face.
pub(crate) fn measures(image: &RgbImage, photos: &PhotoConfig) -> Measures {
    let (decoded, face) = decoded_and_face(image, photos);
    quality::measure(&decoded, &face)
}

fn decoded_and_face(image: &RgbImage, photos: &PhotoConfig) -> (Decoded, FaceBox) {
    let decoded = decoded(image, photos);
    let face = check::single_face(&decoded.pixels, photos).expect("one face");
    (decoded, face)
}

fn decoded(image: &RgbImage, photos: &PhotoConfig) -> Decoded {
    let bytes = jpeg(image);
    let header = decode::header(&bytes, photos).expect("a JPEG we made");
    decode::decode(&bytes, &header, photos, header.upright_size()).expect("decodes")
}

fn eyes_middle(m: &Measures) -> (f32, f32) {
    let l = &m.landmarks;
    (
        (l.left_eye.0 + l.right_eye.0) / 2.0,
        (l.left_eye.1 + l.right_eye.1) / 2.0,
    )
}

/// See [`Damage::Turn`]. In a column's distance `u` from the nose, positive towards the side
/// the face already turns to: the nose moves from 0 to `p`, the half [0, reach] is squeezed
/// into [p, reach] and the half [-reach, 0] stretched over [-reach, p].
fn turn(image: &RgbImage, m: &Measures) -> RgbImage {
    let nose = m.landmarks.nose.0;
    let side = if m.yaw > 0.0 { 1.0 } else { -1.0 };
    let reach = 1.6 * m.eye_distance;
    let p = 0.55 * reach;
    let mut out = image.clone();
    for x in 0..image.width() {
        let u = (x as f32 - nose) * side;
        let src = if u >= p && u < reach {
            (u - p) / (reach - p) * reach
        } else if u > -reach && u < p {
            -reach + (u + reach) * reach / (reach + p)
        } else {
            continue;
        };
        let sx = (nose + src * side)
            .round()
            .clamp(0.0, (image.width() - 1) as f32) as u32;
        for y in 0..image.height() {
            out.put_pixel(x, y, *image.get_pixel(sx, y));
        }
    }
    out
}
