//! The quality gate: measures of the one face a photo holds, and the verdict of a target's
//! requirements on them, said so that the person in the photo knows what to change.
//!
//! The measures come from the face box the face check found and five landmarks
//! ([`super::landmarks`]): the eye line gives the distance between the eyes and the roll, the
//! nose against the eyes and the mouth gives yaw and pitch, and a small grey copy of the face
//! gives sharpness and exposure. All of it runs on the decoded photo, in about two
//! milliseconds; nothing here decodes, encodes or looks at a file.

use serde::{Deserialize, Serialize};

use super::decode::Decoded;
use super::face::FaceBox;
use super::landmarks::{self, Landmarks};
use super::resize::{Quality as Resampling, Region};
use crate::config::Requirements;
use crate::reason::{Finding, ReasonCode};

/// The side of the grey copy of the face that sharpness and exposure are measured on: fixed,
/// so that sharpness is relative to the face's size, not the photo's.
const PROBE: u32 = 64;

/// A face pixel this dark or darker is clipped to black.
const BLACK: u8 = 8;
/// A face pixel this bright or brighter is clipped to white.
const WHITE: u8 = 247;
/// More than this share of the face clipped is too dark (or too bright) whatever the mean.
const MAX_CLIPPED: f32 = 0.5;

/// A roll below this many degrees is left as it is: the landmarks place the eye line to a
/// degree or two, and levelling would soften the photo and cost a pass over it for nothing.
pub(crate) const LEVEL_FROM: f32 = 3.0;

/// What was measured on a photo's face, for one target (the eye distance is at the size that
/// target receives). Angles are in degrees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Between the eye centres, in pixels of the photo as sent to this target.
    pub eye_distance: f32,
    /// The eye line's angle before any levelling; positive: the head leans towards the
    /// person's left shoulder (the right of the picture).
    pub roll: f32,
    /// The roll levelled before the crop (0: none), so the photo is sent upright.
    pub levelled: f32,
    /// Left/right turn, estimated from the nose between the eyes; positive: turned to the
    /// person's left (the nose towards the right of the picture).
    pub yaw: f32,
    /// Up/down tilt, estimated from the nose between the eye line and the mouth; positive:
    /// the chin raised. An estimate only: no requirement is placed on it.
    pub pitch: f32,
    /// Variance of the Laplacian of a 64x64 grey copy of the face, relative to the face's own
    /// contrast, times 100: about 40 and above for a sharp face, under 10 for a blurred one.
    pub sharpness: f32,
    /// Mean luma of the face, 0 to 255.
    pub face_luma: f32,
    /// Share of the face's pixels clipped to black and to white.
    pub dark_share: f32,
    pub bright_share: f32,
    /// Share of the frame's area the face box covers, and its centre as fractions of the
    /// frame's width and height (before any crop).
    pub face_fill: f32,
    pub face_centre: [f32; 2],
    /// The landmark network's confidence that there is a face, 0 to 1.
    pub landmark_score: f32,
    /// The measures outside this target's requirements, as reason codes (empty: passes).
    pub failing: Vec<ReasonCode>,
}

impl Eq for Quality {}

/// What one face measures, in the decoded photo's own pixels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measures {
    pub(crate) landmarks: Landmarks,
    /// The square the face hash crops ([`landmark_square`]), found on the way.
    pub(crate) hash_square: (f32, f32, f32),
    pub(crate) eye_distance: f32,
    pub(crate) roll: f32,
    pub(crate) yaw: f32,
    pub(crate) pitch: f32,
    pub(crate) sharpness: f32,
    pub(crate) face_luma: f32,
    pub(crate) dark_share: f32,
    pub(crate) bright_share: f32,
    pub(crate) face_fill: f32,
    pub(crate) face_centre: [f32; 2],
}

/// Measures the face `face` of `decoded`.
pub(crate) fn measure(decoded: &Decoded, face: &FaceBox) -> Measures {
    let (w, h) = decoded.dimensions();
    let (landmarks, hash_square) = find_landmarks(decoded, face);
    let geometry = Geometry::of(&landmarks);
    let probe = decoded.rgb(
        clamp(decoded, face_square(face, 1.0)),
        PROBE,
        PROBE,
        Resampling::Fast,
    );
    let luma: Vec<u8> = probe.pixels().map(|p| luma(p.0)).collect();
    let (face_luma, dark_share, bright_share) = exposure(&luma);
    let cx = face.x as f32 + face.width as f32 / 2.0;
    let cy = face.y as f32 + face.height as f32 / 2.0;
    Measures {
        landmarks,
        hash_square,
        eye_distance: geometry.eye_distance,
        roll: geometry.roll,
        yaw: geometry.yaw,
        pitch: geometry.pitch,
        sharpness: sharpness(&luma, PROBE as usize),
        face_luma,
        dark_share,
        bright_share,
        face_fill: (face.width as f32 * face.height as f32) / (w as f32 * h as f32),
        face_centre: [cx / w as f32, cy / h as f32],
    }
}

impl Measures {
    /// The measures for a target that receives the photo scaled by `scale` (output pixels per
    /// decoded pixel), levelled by `levelled` degrees, checked against `requirements`.
    pub(crate) fn for_target(
        &self,
        scale: f32,
        levelled: f32,
        requirements: &Requirements,
    ) -> Quality {
        let mut q = Quality {
            eye_distance: round1(self.eye_distance * scale),
            roll: round1(self.roll),
            levelled: round1(levelled),
            yaw: round1(self.yaw),
            pitch: round1(self.pitch),
            sharpness: round1(self.sharpness),
            face_luma: round1(self.face_luma),
            dark_share: round3(self.dark_share),
            bright_share: round3(self.bright_share),
            face_fill: round3(self.face_fill),
            face_centre: [round3(self.face_centre[0]), round3(self.face_centre[1])],
            landmark_score: round3(self.landmarks.score),
            failing: Vec::new(),
        };
        q.failing = failing(&q, self.roll - levelled, requirements);
        q
    }
}

/// The measures outside `r`, in the order they are reported (the first is the finding).
fn failing(q: &Quality, residual_roll: f32, r: &Requirements) -> Vec<ReasonCode> {
    let mut out = Vec::new();
    if q.eye_distance < r.min_eye_distance as f32 {
        out.push(ReasonCode::EyesTooClose);
    }
    if q.yaw.abs() > r.max_yaw as f32 {
        out.push(ReasonCode::FaceTurned);
    }
    if residual_roll.abs() > r.max_roll as f32 {
        out.push(ReasonCode::FaceTilted);
    }
    if q.sharpness < r.min_sharpness as f32 {
        out.push(ReasonCode::FaceBlurry);
    }
    if q.face_luma < r.min_face_luma as f32 || q.dark_share > MAX_CLIPPED {
        out.push(ReasonCode::FaceTooDark);
    }
    if q.face_luma > r.max_face_luma as f32 || q.bright_share > MAX_CLIPPED {
        out.push(ReasonCode::FaceTooBright);
    }
    out
}

/// The finding for the first failing measure of `q`, with the value, the limit and what to do;
/// `target` names the profile whose requirement it is.
pub(crate) fn finding(q: &Quality, r: &Requirements, target: &str) -> Option<Finding> {
    let code = *q.failing.first()?;
    let key = |k: &str| format!("targets.{target}.profile.{k}");
    let message = match code {
        ReasonCode::EyesTooClose => format!(
            "{target}: the eyes are {:.0} pixels apart in the photo {target} receives; at least {} \
             are needed ({}): take the photo closer, the face filling more of the frame, or at a \
             higher resolution",
            q.eye_distance,
            r.min_eye_distance,
            key("min_eye_distance")
        ),
        ReasonCode::FaceTurned => format!(
            "{target}: face the camera; the head is turned about {:.0} degrees to the {} (at most \
             {} allowed, {})",
            q.yaw.abs(),
            if q.yaw > 0.0 { "left" } else { "right" },
            r.max_yaw,
            key("max_yaw")
        ),
        ReasonCode::FaceTilted => format!(
            "{target}: hold the head upright; it leans about {:.0} degrees towards the {} shoulder \
             (at most {} allowed, {}; up to {} is levelled automatically, {})",
            q.roll.abs(),
            if q.roll > 0.0 { "left" } else { "right" },
            r.max_roll,
            key("max_roll"),
            r.level_max_roll,
            key("level_max_roll")
        ),
        ReasonCode::FaceBlurry => format!(
            "{target}: the face is blurred (sharpness {:.0}, at least {} needed, {}): hold the \
             camera still, focus on the face, and retake in more light",
            q.sharpness,
            r.min_sharpness,
            key("min_sharpness")
        ),
        ReasonCode::FaceTooDark => format!(
            "{target}: the face is too dark (mean brightness {:.0} of 255, at least {} needed, {}; \
             {:.0}% of it black): retake facing a window or a lamp, not with the light behind",
            q.face_luma,
            r.min_face_luma,
            key("min_face_luma"),
            q.dark_share * 100.0
        ),
        ReasonCode::FaceTooBright => format!(
            "{target}: the face is overexposed (mean brightness {:.0} of 255, at most {} allowed, \
             {}; {:.0}% of it white): retake without flash or direct sunlight on the face",
            q.face_luma,
            r.max_face_luma,
            key("max_face_luma"),
            q.bright_share * 100.0
        ),
        _ => unreachable!("only quality codes are failing measures"),
    };
    Some(Finding::new(code, message))
}

/// A rotation applied before the crop so the eyes are level: `degrees` (the measured roll)
/// about `centre`, in the decoded photo's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Level {
    pub(crate) degrees: f32,
    pub(crate) centre: (f32, f32),
}

/// The levelling a photo with these measures gets under `requirements`, if any.
pub(crate) fn level(m: &Measures, requirements: &Requirements) -> Option<Level> {
    let roll = m.roll.abs();
    (roll >= LEVEL_FROM && roll <= requirements.level_max_roll as f32).then(|| {
        let l = &m.landmarks;
        Level {
            degrees: m.roll,
            centre: (
                (l.left_eye.0 + l.right_eye.0) / 2.0,
                (l.left_eye.1 + l.right_eye.1) / 2.0,
            ),
        }
    })
}

/// The eye line, and the nose and mouth against it.
struct Geometry {
    eye_distance: f32,
    roll: f32,
    yaw: f32,
    pitch: f32,
}

impl Geometry {
    fn of(l: &Landmarks) -> Geometry {
        let (dx, dy) = (l.right_eye.0 - l.left_eye.0, l.right_eye.1 - l.left_eye.1);
        let eye_distance = dx.hypot(dy).max(1.0);
        let roll = dy.atan2(dx);
        // Into the face's own frame: x along the eye line from its middle, y down the face.
        let mid = (
            (l.left_eye.0 + l.right_eye.0) / 2.0,
            (l.left_eye.1 + l.right_eye.1) / 2.0,
        );
        let (cos, sin) = (roll.cos(), roll.sin());
        let local = |p: (f32, f32)| {
            let (x, y) = (p.0 - mid.0, p.1 - mid.1);
            (x * cos + y * sin, -x * sin + y * cos)
        };
        let nose = local(l.nose);
        let mouth = {
            let (a, b) = (local(l.mouth_left), local(l.mouth_right));
            ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0)
        };
        // The nose tip stands about half the eye distance in front of the eyes: turned by
        // `yaw`, it moves sideways by that times sin(yaw) while the eyes close up by cos(yaw).
        let yaw = (2.0 * nose.0 / eye_distance).atan().to_degrees();
        // Frontal, the nose tip sits a little over half way from the eye line to the mouth.
        let down = nose.1 / mouth.1.max(1.0);
        let pitch = ((0.55 - down) * 120.0).clamp(-60.0, 60.0);
        Geometry {
            eye_distance,
            roll: roll.to_degrees(),
            yaw,
            pitch,
        }
    }
}

/// Up to four passes of the landmark network: on a square around the detector's box; on a square
/// around the eyes and mouth it found, framed as the network was trained; and, for a face that
/// leans, on that square turned upright (twice if the first turn left a lean) (the network places the eyes of a leaning face less
/// well: its estimate of the lean is refined by what it finds on the upright copy).
/// Also returns the square the face hash crops ([`landmark_square`]), which the first two
/// passes give.
fn find_landmarks(decoded: &Decoded, face: &FaceBox) -> (Landmarks, (f32, f32, f32)) {
    let passes = two_passes(decoded, face);
    let Some(square) = passes.square else {
        return (passes.landmarks, passes.hash_square);
    };
    let mut roll = Geometry::of(&passes.landmarks).roll;
    let mut best = passes.landmarks;
    // The network underestimates a large lean: a second turn takes up what the first left.
    for _ in 0..2 {
        if roll.abs() < UPRIGHT_FROM {
            break;
        }
        let Some(upright) = upright_landmarks(decoded, square, roll) else {
            break;
        };
        let found = Geometry::of(&upright).roll;
        best = upright;
        if (found - roll).abs() < UPRIGHT_FROM {
            break;
        }
        roll = found;
    }
    (best, passes.hash_square)
}

/// What the first two passes of the landmark network find.
struct TwoPasses {
    /// The second pass's landmarks (the first's when they frame nothing).
    landmarks: Landmarks,
    /// The square the second pass ran on, if it ran.
    square: Option<(f32, f32, f32)>,
    /// The square the face hash crops: the second pass's framing, else the last square.
    hash_square: (f32, f32, f32),
}

fn two_passes(decoded: &Decoded, face: &FaceBox) -> TwoPasses {
    let start = face_square(face, 1.15);
    let first = landmarks_in(decoded, start);
    let Some(square) = framed(&first) else {
        return TwoPasses {
            landmarks: first,
            square: None,
            hash_square: start,
        };
    };
    let second = landmarks_in(decoded, square);
    let hash_square = framed(&second).unwrap_or(square);
    TwoPasses {
        landmarks: second,
        square: Some(square),
        hash_square,
    }
}

/// From this lean on (degrees), the landmarks are found again on an upright copy.
const UPRIGHT_FROM: f32 = 3.0;

/// The square MTCNN would hand its output network for a face with these points.
fn framed(l: &Landmarks) -> Option<(f32, f32, f32)> {
    let xs = [l.left_eye.0, l.right_eye.0, l.mouth_left.0, l.mouth_right.0];
    let ys = [l.left_eye.1, l.right_eye.1, l.mouth_left.1, l.mouth_right.1];
    let (x0, x1) = (min(&xs), max(&xs));
    let (y0, y1) = (min(&ys), max(&ys));
    let side = (x1 - x0).max(y1 - y0) * 2.1;
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0 + (y1 - y0) * 0.05);
    (side.is_finite() && side >= 8.0).then_some((cx - side / 2.0, cy - side / 2.0, side))
}

/// The landmarks of the face in `square`, found on a copy turned by `roll` degrees so the face
/// is upright, mapped back to the photo. `None` where the square runs off the photo (the copy
/// would be distorted).
fn upright_landmarks(
    decoded: &Decoded,
    (left, top, side): (f32, f32, f32),
    roll: f32,
) -> Option<Landmarks> {
    // A larger square, so that the upright inner one has no corner outside it.
    const OUTER: u32 = landmarks::INPUT * 3 / 2;
    let margin = side / 4.0;
    let outer = (left - margin, top - margin, side + 2.0 * margin);
    let region = clamp(decoded, outer);
    if region.left as f32 > outer.0 + 1.0
        || region.top as f32 > outer.1 + 1.0
        || (region.width as f32) < outer.2 - 2.0
        || (region.height as f32) < outer.2 - 2.0
    {
        return None;
    }
    let crop = decoded.rgb(region, OUTER, OUTER, Resampling::Fast);
    let c = OUTER as f32 / 2.0;
    let turned = super::normalize::rotate(&crop, roll, (c, c));
    let inset = (OUTER - landmarks::INPUT) / 2;
    let inner =
        image::imageops::crop_imm(&turned, inset, inset, landmarks::INPUT, landmarks::INPUT)
            .to_image();
    let found = landmarks::run(&inner).place(
        inset as f32,
        inset as f32,
        landmarks::INPUT as f32,
        landmarks::INPUT as f32,
    );
    // A point p of the turned copy came from c + R(roll)(p - c) of the crop.
    let (sin, cos) = roll.to_radians().sin_cos();
    let (kx, ky) = (
        region.width as f32 / OUTER as f32,
        region.height as f32 / OUTER as f32,
    );
    let back = |(x, y): (f32, f32)| {
        let (dx, dy) = (x - c, y - c);
        let (sx, sy) = (c + dx * cos - dy * sin, c + dx * sin + dy * cos);
        (region.left as f32 + sx * kx, region.top as f32 + sy * ky)
    };
    Some(Landmarks {
        left_eye: back(found.left_eye),
        right_eye: back(found.right_eye),
        nose: back(found.nose),
        mouth_left: back(found.mouth_left),
        mouth_right: back(found.mouth_right),
        score: found.score,
    })
}

fn min(v: &[f32]) -> f32 {
    v.iter().copied().fold(f32::INFINITY, f32::min)
}

fn max(v: &[f32]) -> f32 {
    v.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// Runs the network on the square (left, top, side), clamped to the image.
fn landmarks_in(decoded: &Decoded, square: (f32, f32, f32)) -> Landmarks {
    let region = clamp(decoded, square);
    let crop = decoded.rgb(region, landmarks::INPUT, landmarks::INPUT, Resampling::Fast);
    landmarks::run(&crop).place(
        region.left as f32,
        region.top as f32,
        region.width as f32,
        region.height as f32,
    )
}

/// The square (left, top, side) MTCNN would frame the face in, from the landmarks of two
/// passes (the second on the first's framing): the detector's box moves by a window step
/// between two sizes of one photo, this by a pixel or so (the face hash crops it). The
/// detector's box, squared, when the landmarks frame nothing.
pub(crate) fn landmark_square(decoded: &Decoded, face: &FaceBox) -> (f32, f32, f32) {
    two_passes(decoded, face).hash_square
}

/// A square around `face`, `k` times its larger side.
fn face_square(face: &FaceBox, k: f32) -> (f32, f32, f32) {
    let side = face.width.max(face.height) as f32 * k;
    let cx = face.x as f32 + face.width as f32 / 2.0;
    let cy = face.y as f32 + face.height as f32 / 2.0;
    (cx - side / 2.0, cy - side / 2.0, side)
}

/// The part of the square (left, top, side) inside the image, at least one pixel.
fn clamp(decoded: &Decoded, (left, top, side): (f32, f32, f32)) -> Region {
    let (w, h) = decoded.dimensions();
    let x0 = left.max(0.0).min(w as f32 - 1.0) as u32;
    let y0 = top.max(0.0).min(h as f32 - 1.0) as u32;
    let x1 = ((left + side).ceil().max(0.0) as u32).clamp(x0 + 1, w);
    let y1 = ((top + side).ceil().max(0.0) as u32).clamp(y0 + 1, h);
    Region {
        left: x0,
        top: y0,
        width: x1 - x0,
        height: y1 - y0,
    }
}

/// ITU-R BT.601 luma, as JPEG stores it.
fn luma([r, g, b]: [u8; 3]) -> u8 {
    ((299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b) + 500) / 1000) as u8
}

/// Mean luma, and the shares clipped to black and to white.
pub(crate) fn exposure(luma: &[u8]) -> (f32, f32, f32) {
    if luma.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let n = luma.len() as f32;
    let sum: u64 = luma.iter().map(|&v| u64::from(v)).sum();
    let dark = luma.iter().filter(|&&v| v <= BLACK).count() as f32;
    let bright = luma.iter().filter(|&&v| v >= WHITE).count() as f32;
    (sum as f32 / n, dark / n, bright / n)
}

/// Variance of the 4-neighbour Laplacian of a `side` x `side` grey image, over the image's own
/// variance (so a dim face is not taken for a blurred one), times 100.
pub(crate) fn sharpness(luma: &[u8], side: usize) -> f32 {
    if side < 3 || luma.len() < side * side {
        return 0.0;
    }
    let at = |x: usize, y: usize| f32::from(luma[y * side + x]);
    let (mut s, mut s2, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for y in 1..side - 1 {
        for x in 1..side - 1 {
            let l = f64::from(
                at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * at(x, y),
            );
            s += l;
            s2 += l * l;
            n += 1.0;
        }
    }
    let lap = s2 / n - (s / n).powi(2);
    let mean = luma.iter().map(|&v| f64::from(v)).sum::<f64>() / luma.len() as f64;
    let var = luma
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / luma.len() as f64;
    (100.0 * lap / var.max(1.0)) as f32
}

fn round1(v: f32) -> f32 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f32) -> f32 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(eyes: [(f32, f32); 2], nose: (f32, f32), mouth: [(f32, f32); 2]) -> Landmarks {
        Landmarks {
            left_eye: eyes[0],
            right_eye: eyes[1],
            nose,
            mouth_left: mouth[0],
            mouth_right: mouth[1],
            score: 1.0,
        }
    }

    /// A frontal face: eyes 60 px apart, the mouth 64 px below them, the nose between the eyes
    /// 55% of the way down to it.
    fn frontal() -> Landmarks {
        face(
            [(70.0, 100.0), (130.0, 100.0)],
            (100.0, 135.2),
            [(78.0, 164.0), (122.0, 164.0)],
        )
    }

    /// `l` turned by `degrees` about (100, 100).
    fn turned(l: &Landmarks, degrees: f32) -> Landmarks {
        let (sin, cos) = degrees.to_radians().sin_cos();
        let r = |(x, y): (f32, f32)| {
            let (dx, dy) = (x - 100.0, y - 100.0);
            (100.0 + dx * cos - dy * sin, 100.0 + dx * sin + dy * cos)
        };
        face(
            [r(l.left_eye), r(l.right_eye)],
            r(l.nose),
            [r(l.mouth_left), r(l.mouth_right)],
        )
    }

    #[test]
    fn geometry_of_the_landmarks() {
        let check = |l: Landmarks, eyes: f32, roll: f32, yaw: f32| {
            let g = Geometry::of(&l);
            assert!(
                (g.eye_distance - eyes).abs() < 0.01,
                "eyes {}",
                g.eye_distance
            );
            assert!((g.roll - roll).abs() < 0.01, "roll {}", g.roll);
            assert!((g.yaw - yaw).abs() < 0.1, "yaw {}", g.yaw);
        };
        check(frontal(), 60.0, 0.0, 0.0);
        // Leaning 10 degrees towards the person's left shoulder (the picture's right).
        check(turned(&frontal(), 10.0), 60.0, 10.0, 0.0);
        check(turned(&frontal(), -20.0), 60.0, -20.0, 0.0);
        // The nose a quarter of the eye distance to the picture's right: turned to the
        // person's left by atan(0.5).
        let mut left = frontal();
        left.nose.0 += 15.0;
        check(left, 60.0, 0.0, 26.57);
        // A turn measured the same whatever the lean.
        check(turned(&left, 15.0), 60.0, 15.0, 26.57);
        // The nose half way to the mouth's level: the chin is raised.
        let mut up = frontal();
        up.nose.1 = 120.0;
        assert!(Geometry::of(&up).pitch > 15.0);
        assert!(Geometry::of(&frontal()).pitch.abs() < 1.0);
    }

    #[test]
    fn sharpness_is_relative_to_size_and_contrast() {
        let n = PROBE as usize;
        let flat = vec![128u8; n * n];
        assert_eq!(sharpness(&flat, n), 0.0);
        let checker: Vec<u8> = (0..n * n)
            .map(|i| {
                if (i % n / 4 + i / n / 4).is_multiple_of(2) {
                    60
                } else {
                    180
                }
            })
            .collect();
        // The same pattern at a third of the contrast is as sharp.
        let faint: Vec<u8> = checker.iter().map(|&v| 100 + (v - 60) / 3).collect();
        let (a, b) = (sharpness(&checker, n), sharpness(&faint, n));
        assert!(a > 50.0, "{a}");
        assert!((a - b).abs() / a < 0.05, "{a} against {b}");
        // A smooth ramp has edges nowhere.
        let ramp: Vec<u8> = (0..n * n).map(|i| (i % n * 3) as u8).collect();
        assert!(sharpness(&ramp, n) < 1.0);
    }

    #[test]
    fn exposure_counts_the_clipped_shares() {
        let mut luma = vec![100u8; 50];
        luma.extend([0u8; 25]);
        luma.extend([255u8; 25]);
        let (mean, dark, bright) = exposure(&luma);
        assert!((mean - (100.0 * 50.0 + 255.0 * 25.0) / 100.0).abs() < 0.01);
        assert_eq!((dark, bright), (0.25, 0.25));
        assert_eq!(exposure(&[]), (0.0, 0.0, 0.0));
    }

    fn measures(roll: f32, yaw: f32) -> Measures {
        Measures {
            landmarks: frontal(),
            hash_square: (0.0, 0.0, 100.0),
            eye_distance: 60.0,
            roll,
            yaw,
            pitch: 0.0,
            sharpness: 40.0,
            face_luma: 120.0,
            dark_share: 0.0,
            bright_share: 0.0,
            face_fill: 0.1,
            face_centre: [0.5, 0.4],
        }
    }

    #[test]
    fn each_requirement_is_its_own_reason_with_value_limit_and_advice() {
        let r = Requirements::DEFAULT;
        let check = |m: Measures, scale: f32, code: Option<ReasonCode>, words: &[&str]| {
            let q = m.for_target(scale, 0.0, &r);
            let f = finding(&q, &r, "lobby");
            assert_eq!(f.as_ref().map(|f| f.code), code, "{q:?}");
            for w in words {
                let message = &f.as_ref().unwrap().message;
                assert!(message.contains(w), "{message} lacks {w}");
            }
        };
        check(measures(0.0, 0.0), 1.0, None, &[]);
        // 60 px in the source, sent at a third of its size.
        check(
            measures(0.0, 0.0),
            1.0 / 3.0,
            Some(ReasonCode::EyesTooClose),
            &[
                "20 pixels apart",
                "at least 30",
                "targets.lobby.profile.min_eye_distance",
            ],
        );
        check(
            measures(0.0, 31.0),
            1.0,
            Some(ReasonCode::FaceTurned),
            &[
                "face the camera",
                "about 31 degrees to the left",
                "at most 25",
            ],
        );
        check(
            measures(0.0, -40.0),
            1.0,
            Some(ReasonCode::FaceTurned),
            &["40 degrees to the right"],
        );
        check(
            measures(-28.0, 0.0),
            1.0,
            Some(ReasonCode::FaceTilted),
            &["about 28 degrees towards the right shoulder", "at most 25"],
        );
        let blurred = Measures {
            sharpness: 4.0,
            ..measures(0.0, 0.0)
        };
        check(
            blurred,
            1.0,
            Some(ReasonCode::FaceBlurry),
            &["sharpness 4", "at least 12"],
        );
        let dark = Measures {
            face_luma: 30.0,
            ..measures(0.0, 0.0)
        };
        check(
            dark,
            1.0,
            Some(ReasonCode::FaceTooDark),
            &["brightness 30", "at least 50"],
        );
        let burnt = Measures {
            face_luma: 180.0,
            bright_share: 0.6,
            ..measures(0.0, 0.0)
        };
        check(
            burnt,
            1.0,
            Some(ReasonCode::FaceTooBright),
            &["60% of it white"],
        );
        // A lean within level_max_roll is levelled, and what is left is what counts.
        let q = measures(12.0, 0.0).for_target(1.0, 12.0, &r);
        assert!(q.failing.is_empty());
        assert_eq!((q.roll, q.levelled), (12.0, 12.0));
        let lean = measures(12.0, 0.0);
        assert!(level(&lean, &r).is_some());
        assert!(level(&measures(1.0, 0.0), &r).is_none());
        assert!(level(&measures(20.0, 0.0), &r).is_none());
    }
}
