//! Normalizing for one target: the portrait crop, the size that fits the profile (never larger
//! than the source), and the encoder's search for the best quality within the byte budget.

use std::time::Instant;

use image::RgbImage;

use super::StageTimes;
use super::decode::Decoded;
use super::face::FaceBox;
use super::quality::Level;
use super::resize::{Quality, Region, Ycbcr};
use crate::config::{OutputFormat, Profile};
use crate::reason::{Finding, ReasonCode};

/// The JPEG quality tried first: above it files grow fast for no visible gain on a face.
pub(crate) const TOP_QUALITY: u8 = 90;

/// An encoded photo within a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Encoded {
    pub(crate) bytes: Vec<u8>,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// The largest size with the aspect of `width` x `height` inside `max_width` x `max_height`,
/// and never larger than `width` x `height` itself.
pub(crate) fn fit(width: u32, height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    let k = (f64::from(max_width) / f64::from(width))
        .min(f64::from(max_height) / f64::from(height))
        .min(1.0);
    if k >= 1.0 {
        return (width, height);
    }
    let w = ((f64::from(width) * k).round() as u32).clamp(1, max_width);
    let h = ((f64::from(height) * k).round() as u32).clamp(1, max_height);
    (w, h)
}

/// A head-and-shoulders 3:4 crop around `face`: `margin` face widths of room on each side and
/// above the face, the rest below for the shoulders; shrunk and moved to stay inside the image.
pub(crate) fn portrait(image_width: u32, image_height: u32, face: &FaceBox, margin: f32) -> Region {
    let (iw, ih) = (f64::from(image_width), f64::from(image_height));
    let fw = f64::from(face.width);
    let margin = f64::from(margin);
    let mut w = fw * (1.0 + 2.0 * margin);
    let mut h = w * 4.0 / 3.0;
    if w > iw || h > ih {
        // The largest 3:4 rectangle the image holds.
        (w, h) = if iw * 4.0 / 3.0 <= ih {
            (iw, iw * 4.0 / 3.0)
        } else {
            (ih * 3.0 / 4.0, ih)
        };
    }
    let centre = f64::from(face.x) + fw / 2.0;
    let left = (centre - w / 2.0).clamp(0.0, iw - w);
    let top = (f64::from(face.y) - margin * fw).clamp(0.0, ih - h);
    let (w, h) = (w.round().max(1.0) as u32, h.round().max(1.0) as u32);
    let left = (left.round() as u32).min(image_width - w.min(image_width));
    let top = (top.round() as u32).min(image_height - h.min(image_height));
    Region {
        left,
        top,
        width: w.min(image_width),
        height: h.min(image_height),
    }
}

/// The largest centred 3:4 crop, for `crop = "portrait"` when the face check is off and no
/// single face was found.
pub(crate) fn centred_portrait(image_width: u32, image_height: u32) -> Region {
    let (w, h) = if u64::from(image_width) * 4 <= u64::from(image_height) * 3 {
        (image_width, (u64::from(image_width) * 4 / 3) as u32)
    } else {
        ((u64::from(image_height) * 3 / 4) as u32, image_height)
    };
    let (w, h) = (w.max(1), h.max(1));
    Region {
        left: (image_width - w) / 2,
        top: (image_height - h) / 2,
        width: w,
        height: h,
    }
}

/// Encodes `region` of the decoded photo for `profile`: the largest size within the profile
/// (never above the source's own resolution), the best JPEG quality that fits `max_bytes`,
/// smaller sizes if even `min_quality` does not fit, down to `floor_short` pixels on the shorter
/// side. `target` names the profile in messages. With `level`, the picture is turned so the
/// eyes are level.
pub(crate) fn encode_for(
    decoded: &Decoded,
    region: Region,
    level: Option<Level>,
    profile: &Profile,
    floor_short: u32,
    target: &str,
    times: &mut StageTimes,
) -> Result<Encoded, Finding> {
    // The region's size in the source's own pixels: what "never upscale" means.
    let k = f64::from(decoded.source_width) / f64::from(decoded.dimensions().0);
    let source_w = ((f64::from(region.width) * k).round() as u32).max(1);
    let source_h = ((f64::from(region.height) * k).round() as u32).max(1);
    // The JPEG format stores sizes in 16 bits.
    let (mut w, mut h) = fit(
        source_w,
        source_h,
        profile.max_width.min(65_535),
        profile.max_height.min(65_535),
    );
    // Rounding can ask for a pixel more than the decoded region has.
    (w, h) = (w.min(region.width), h.min(region.height));
    if w.min(h) < profile.min_short_side {
        return Err(Finding::new(
            ReasonCode::TooSmall,
            format!(
                "{target}: the photo is {w}x{h} within {target}'s {}x{} at most, and {target} \
                 needs at least {} pixels on the shorter side \
                 (targets.{target}.profile.min_short_side)",
                profile.max_width, profile.max_height, profile.min_short_side
            ),
        ));
    }
    let floor_short = floor_short.max(profile.min_short_side).min(w.min(h));
    // A JPEG goes to the encoder as the planes it stores, when the picture is a JPEG's planes and
    // is not turned: no colour conversion either way.
    let planar = profile.format == OutputFormat::Jpeg && level.is_none();
    let (w, h, bytes) = loop {
        let attempt = match planar
            .then(|| {
                timed(&mut times.resize, || {
                    decoded.ycbcr(region, w, h, Quality::Best)
                })
            })
            .flatten()
        {
            Some(planes) => timed(&mut times.encode, || {
                fit_jpeg(|q| jpeg_ycbcr(&planes, q), profile)
            }),
            None => {
                let pixels = timed(&mut times.resize, || {
                    decoded.rgb(region, w, h, Quality::Best)
                });
                let levelled = timed(&mut times.quality, || {
                    level.map(|l| {
                        let (kx, ky) = (
                            w as f32 / region.width as f32,
                            h as f32 / region.height as f32,
                        );
                        let centre = (
                            (l.centre.0 - region.left as f32) * kx,
                            (l.centre.1 - region.top as f32) * ky,
                        );
                        rotate(&pixels, l.degrees, centre)
                    })
                });
                let pixels = levelled.as_ref().unwrap_or(&*pixels);
                timed(&mut times.encode, || match profile.format {
                    OutputFormat::Jpeg => fit_jpeg(|q| jpeg(pixels, q), profile),
                    OutputFormat::Png => {
                        let bytes = png(pixels);
                        if bytes.len() as u64 <= profile.max_bytes {
                            Ok(bytes)
                        } else {
                            Err(bytes.len())
                        }
                    }
                })
            }
        };
        let smallest = match attempt {
            Ok(bytes) => {
                return Ok(Encoded {
                    bytes,
                    width: w,
                    height: h,
                });
            }
            Err(smallest) => smallest,
        };
        match smaller(w, h, smallest, profile, floor_short) {
            Some(size) => (w, h) = size,
            None => break (w, h, smallest),
        }
    };
    let how = match profile.format {
        OutputFormat::Jpeg => format!(" at quality {}", profile.min_quality),
        OutputFormat::Png => String::new(),
    };
    Err(Finding::new(
        ReasonCode::CannotFit,
        format!(
            "{target}: even at {w}x{h}{how} the photo takes {bytes} bytes, over the limit of {} (targets.{target}.profile.max_bytes)",
            profile.max_bytes
        ),
    ))
}

/// `work`'s result, its time added to `total`.
fn timed<T>(total: &mut std::time::Duration, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = work();
    *total += started.elapsed();
    out
}

/// The next size to try when `w` x `h` took `smallest` bytes at best, over the profile's
/// budget; `None` below `floor_short` pixels on the shorter side.
fn smaller(
    w: u32,
    h: u32,
    smallest: usize,
    profile: &Profile,
    floor_short: u32,
) -> Option<(u32, u32)> {
    // Bytes grow about with the area: aim a little under the budget.
    let k = ((profile.max_bytes as f64 / smallest as f64).sqrt() * 0.9).clamp(0.5, 0.9);
    let (nw, nh) = (
        ((f64::from(w) * k).floor() as u32).max(1),
        ((f64::from(h) * k).floor() as u32).max(1),
    );
    (nw.min(nh) >= floor_short).then_some((nw, nh))
}

/// `image` turned by `degrees` about `centre` the way that levels a line at that angle: each
/// pixel takes the bilinear sample of where it was; beyond the edges, the edge pixel.
pub(crate) fn rotate(image: &RgbImage, degrees: f32, centre: (f32, f32)) -> RgbImage {
    let (w, h) = image.dimensions();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let src = image.as_raw();
    let (wi, hi) = (w as usize, h as usize);
    let mut out = vec![0u8; src.len()];
    for (y, row) in out.chunks_exact_mut(wi * 3).enumerate() {
        let dy = y as f32 - centre.1;
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let dx = x as f32 - centre.0;
            let sx = (centre.0 + dx * cos - dy * sin).clamp(0.0, (w - 1) as f32);
            let sy = (centre.1 + dx * sin + dy * cos).clamp(0.0, (h - 1) as f32);
            let (x0, y0) = (sx as usize, sy as usize);
            let (x1, y1) = ((x0 + 1).min(wi - 1), (y0 + 1).min(hi - 1));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            let at = |x: usize, y: usize, c: usize| f32::from(src[(y * wi + x) * 3 + c]);
            for (c, v) in px.iter_mut().enumerate() {
                let top = at(x0, y0, c) * (1.0 - fx) + at(x1, y0, c) * fx;
                let bottom = at(x0, y1, c) * (1.0 - fx) + at(x1, y1, c) * fx;
                *v = (top * (1.0 - fy) + bottom * fy + 0.5) as u8;
            }
        }
    }
    RgbImage::from_raw(w, h, out).expect("the buffer has the image's size")
}

/// The best quality JPEG (`jpeg` encodes at a quality) within the budget, or the size at
/// `min_quality` when none fits.
fn fit_jpeg(jpeg: impl Fn(u8) -> Vec<u8>, profile: &Profile) -> Result<Vec<u8>, usize> {
    let top = TOP_QUALITY.max(profile.min_quality);
    let best = jpeg(top);
    if best.len() as u64 <= profile.max_bytes {
        return Ok(best);
    }
    let mut low = jpeg(profile.min_quality);
    if low.len() as u64 > profile.max_bytes {
        return Err(low.len());
    }
    // Bisection: `lo` fits, `hi` does not.
    let (mut lo, mut hi) = (profile.min_quality, top);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let bytes = jpeg(mid);
        if bytes.len() as u64 <= profile.max_bytes {
            lo = mid;
            low = bytes;
        } else {
            hi = mid;
        }
    }
    Ok(low)
}

/// A baseline 4:2:0 JPEG with a JFIF header and nothing else: no EXIF, no GPS, no comment.
pub(crate) fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity((image.width() * image.height() / 4) as usize);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    // Chroma at half resolution, as every camera and libjpeg by default: a quarter smaller
    // files for no loss a face recogniser sees.
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder
        .encode(
            image.as_raw(),
            image.width() as u16,
            image.height() as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("encoding RGB into memory cannot fail for sizes within the profile");
    out
}

/// [`jpeg`] from the planes a 4:2:0 JPEG stores: the same file layout, nothing converted.
pub(crate) fn jpeg_ycbcr(planes: &Ycbcr, quality: u8) -> Vec<u8> {
    let (width, height) = planes.y.dimensions();
    let mut out = Vec::with_capacity((width * height / 4) as usize);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder
        .encode_image(Planar(planes))
        .expect("encoding planes into memory cannot fail for sizes within the profile");
    out
}

/// The encoder's view of [`Ycbcr`]: each row of the three planes, chroma given at the full
/// width (each sample twice, each row twice): the encoder's 2x2 subsampling keeps every other
/// sample of each row and column, which gives back exactly the half-size planes.
struct Planar<'a>(&'a Ycbcr);

impl jpeg_encoder::ImageBuffer for Planar<'_> {
    fn get_jpeg_color_type(&self) -> jpeg_encoder::JpegColorType {
        jpeg_encoder::JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.0.y.width() as u16
    }

    fn height(&self) -> u16 {
        self.0.y.height() as u16
    }

    fn fill_buffers(&self, row: u16, buffers: &mut [Vec<u8>; 4]) {
        let width = self.0.y.width() as usize;
        let row = usize::from(row);
        buffers[0].extend_from_slice(&self.0.y.as_raw()[row * width..][..width]);
        let half = self.0.cb.width() as usize;
        for (buffer, plane) in buffers[1..3].iter_mut().zip([&self.0.cb, &self.0.cr]) {
            let start = buffer.len();
            let samples = &plane.as_raw()[row / 2 * half..][..half];
            buffer.extend(samples.iter().flat_map(|&c| [c, c]));
            buffer.truncate(start + width);
        }
    }
}

/// A PNG with no ancillary chunks.
pub(crate) fn png(image: &RgbImage) -> Vec<u8> {
    use image::ImageEncoder as _;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Default,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(
        image.as_raw(),
        image.width(),
        image.height(),
        image::ExtendedColorType::Rgb8,
    )
    .expect("encoding RGB into memory cannot fail");
    out
}
