//! Decoding: recognise the format, check the limits from the header, decode once (JPEGs at a
//! reduced DCT scale when the outputs are smaller), apply the EXIF orientation and bring every
//! input to upright 8-bit RGB.
//!
//! Every way a file can be unfit becomes a [`Finding`]; nothing here panics on bad input (the
//! callers also catch panics from the decoders, which are not ours).
//!
//! This is the one place that reads orientation: `orientation` knows the forms writers store
//! EXIF in beyond what the `image` crate reads, and `fill_order` undoes TIFF FillOrder 2,
//! which the `tiff` crate ignores.

mod fill_order;
mod orientation;

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use super::resize::{self, Quality, Region};
use crate::config::PhotoConfig;
use crate::reason::{Finding, ReasonCode};

/// What the header says, before any pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Header {
    pub(crate) format: ImageFormat,
    /// Stored size, before the orientation is applied.
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) orientation: Orientation,
}

impl Header {
    /// The size once the orientation is applied.
    pub(crate) fn upright_size(&self) -> (u32, u32) {
        if swaps_axes(self.orientation) {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// A decoded, upright image, possibly at a reduced scale of the source.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) pixels: Pixels,
    /// The source's upright size at full resolution (what "never upscale" is measured against).
    pub(crate) source_width: u32,
}

/// The decoded pixels: 8-bit RGB, or a JPEG's own planes (converted to RGB only once resized).
#[derive(Debug)]
pub(crate) enum Pixels {
    Rgb(RgbImage),
    Planes {
        y: GrayImage,
        /// Cb and Cr; see [`super::jpeg::Planes`].
        chroma: Option<[GrayImage; 2]>,
        /// Luma at 1/8 of the source's size, when `y` is larger; see [`super::jpeg::Planes`].
        dc: Option<GrayImage>,
    },
}

impl Pixels {
    /// Width and height (of the luma plane for planes).
    pub(crate) fn dimensions(&self) -> (u32, u32) {
        match self {
            Pixels::Rgb(image) => image.dimensions(),
            Pixels::Planes { y, .. } => y.dimensions(),
        }
    }
}

impl Decoded {
    pub(crate) fn dimensions(&self) -> (u32, u32) {
        self.pixels.dimensions()
    }

    /// `region` resized to `width` x `height`, as RGB (borrowed when nothing changes).
    pub(crate) fn rgb(
        &self,
        region: Region,
        width: u32,
        height: u32,
        quality: Quality,
    ) -> std::borrow::Cow<'_, RgbImage> {
        match &self.pixels {
            Pixels::Rgb(image)
                if (width, height) == (region.width, region.height)
                    && region == Region::whole(image) =>
            {
                std::borrow::Cow::Borrowed(image)
            }
            Pixels::Rgb(image) => {
                std::borrow::Cow::Owned(resize::rgb(image, region, width, height, quality))
            }
            Pixels::Planes { y, chroma, .. } => std::borrow::Cow::Owned(resize::planes(
                y,
                chroma.as_ref(),
                region,
                width,
                height,
                quality,
            )),
        }
    }
}

impl Decoded {
    /// `region` resized to `width` x `height` as a 4:2:0 JPEG's planes, when the picture is a
    /// colour JPEG's planes (`None` otherwise: use [`Decoded::rgb`]).
    pub(crate) fn ycbcr(
        &self,
        region: Region,
        width: u32,
        height: u32,
        quality: Quality,
    ) -> Option<resize::Ycbcr> {
        match &self.pixels {
            Pixels::Planes {
                y,
                chroma: Some(chroma),
                ..
            } => Some(resize::ycbcr(y, chroma, region, width, height, quality)),
            _ => None,
        }
    }
}

impl Drop for Decoded {
    /// The pixel buffers go back to this thread's pool for the next photo.
    fn drop(&mut self) {
        match std::mem::replace(&mut self.pixels, Pixels::Rgb(RgbImage::new(0, 0))) {
            Pixels::Rgb(image) => super::buffers::give(image.into_raw()),
            Pixels::Planes { y, chroma, .. } => {
                super::buffers::give(y.into_raw());
                for plane in chroma.into_iter().flatten() {
                    super::buffers::give(plane.into_raw());
                }
            }
        }
    }
}

fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn corrupt(message: impl Into<String>) -> Finding {
    Finding::new(ReasonCode::CorruptImage, message)
}

fn unsupported(message: impl Into<String>) -> Finding {
    Finding::new(ReasonCode::UnsupportedFormat, message)
}

/// Recognises the format from the first bytes (never from the file name).
pub(crate) fn sniff(bytes: &[u8]) -> Result<ImageFormat, Finding> {
    if bytes.is_empty() {
        return Err(corrupt("the file is empty (0 bytes)"));
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        let brand = String::from_utf8_lossy(&bytes[8..12]).into_owned();
        let what = match brand.as_str() {
            "avif" | "avis" => "an AVIF image",
            "heic" | "heix" | "hevc" | "hevx" | "heim" | "heis" | "mif1" | "msf1" => {
                "a HEIC/HEIF photo (the iPhone's default format)"
            }
            _ => "a video or ISO media file, not a photo",
        };
        return Err(unsupported(format!(
            "the file is {what}, which is not supported"
        )));
    }
    match image::guess_format(bytes) {
        Ok(
            f @ (ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Bmp
            | ImageFormat::Tiff
            | ImageFormat::Gif),
        ) => Ok(f),
        Ok(other) => Err(unsupported(format!(
            "the file is a {} image, which facesync does not read",
            other.extensions_str().first().unwrap_or(&"other")
        ))),
        Err(_) if looks_like_text(bytes) => Err(unsupported(
            "the file is text, not an image (it only has an image's file name)",
        )),
        Err(_) => Err(unsupported(
            "the file is not in any image format facesync reads (jpeg, png, webp, bmp, tiff, gif)",
        )),
    }
}

fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    std::str::from_utf8(head).is_ok_and(|s| {
        s.chars()
            .all(|c| !c.is_control() || c.is_ascii_whitespace())
    })
}

/// Reads the header: size and orientation, and checks the pixel limit before any decoding.
pub(crate) fn header(bytes: &[u8], photos: &PhotoConfig) -> Result<Header, Finding> {
    let format = sniff(bytes)?;
    let (width, height, orientation) = if format == ImageFormat::Jpeg {
        let mut d = jpeg_decoder::Decoder::new(bytes);
        d.read_info().map_err(|e| jpeg_error(&e))?;
        let info = d
            .info()
            .ok_or_else(|| corrupt("the JPEG has no image header"))?;
        let orientation = d
            .exif_data()
            .and_then(Orientation::from_exif_chunk)
            .unwrap_or(Orientation::NoTransforms);
        (u32::from(info.width), u32::from(info.height), orientation)
    } else {
        let mut decoder = reader(bytes, format, photos)?
            .into_decoder()
            .map_err(|e| image_error(format, &e))?;
        let (w, h) = decoder.dimensions();
        let orientation = match format {
            // The `image` crate reads only a bare TIFF structure from these chunks.
            ImageFormat::Png | ImageFormat::WebP => decoder
                .exif_metadata()
                .ok()
                .flatten()
                .and_then(|exif| orientation::from_exif(&exif))
                .or_else(|| {
                    (format == ImageFormat::Png)
                        .then(|| orientation::from_png_text(bytes))
                        .flatten()
                }),
            _ => decoder.orientation().ok(),
        }
        .unwrap_or(Orientation::NoTransforms);
        (w, h, orientation)
    };
    let pixels = u64::from(width) * u64::from(height);
    if pixels > photos.max_pixels {
        return Err(Finding::new(
            ReasonCode::ImageTooLarge,
            format!(
                "the image is {width}x{height} ({:.1} megapixels), over the limit of {:.1} megapixels (photos.max_pixels)",
                pixels as f64 / 1e6,
                photos.max_pixels as f64 / 1e6
            ),
        ));
    }
    if width == 0 || height == 0 {
        return Err(corrupt(format!(
            "the header says the image is {width}x{height}"
        )));
    }
    let short = width.min(height);
    if short < photos.min_short_side {
        return Err(Finding::new(
            ReasonCode::TooSmall,
            format!(
                "the image is {width}x{height}; its shorter side must be at least {} pixels (photos.min_short_side)",
                photos.min_short_side
            ),
        ));
    }
    Ok(Header {
        format,
        width,
        height,
        orientation,
    })
}

fn reader<'a>(
    bytes: &'a [u8],
    format: ImageFormat,
    photos: &PhotoConfig,
) -> Result<ImageReader<Cursor<&'a [u8]>>, Finding> {
    let mut r = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    // The pixel limit is checked from the header; this caps what a lying header or a
    // decoder's intermediate buffers can allocate (RGBA, 16 bits per channel).
    limits.max_alloc = Some(photos.max_pixels.saturating_mul(8).max(64 << 20));
    r.limits(limits);
    Ok(r)
}

/// Decodes the image at the smallest scale whose upright size is at least `need` (width,
/// height), never below full resolution for formats without scaled decoding.
pub(crate) fn decode(
    bytes: &[u8],
    header: &Header,
    photos: &PhotoConfig,
    need: (u32, u32),
) -> Result<Decoded, Finding> {
    let (source_width, _) = header.upright_size();
    let stored_need = if swaps_axes(header.orientation) {
        (need.1, need.0)
    } else {
        need
    };
    let pixels = if header.format == ImageFormat::Jpeg {
        decode_jpeg(bytes, header, photos, stored_need)?
    } else {
        let in_order = match header.format {
            ImageFormat::Tiff => fill_order::normalize(bytes)?,
            _ => None,
        };
        let bytes = in_order.as_deref().unwrap_or(bytes);
        let mut decoder = reader(bytes, header.format, photos)?
            .into_decoder()
            .map_err(|e| image_error(header.format, &e))?;
        // The orientation was read from the header already.
        let _ = decoder.orientation();
        let image =
            DynamicImage::from_decoder(decoder).map_err(|e| image_error(header.format, &e))?;
        Pixels::Rgb(to_rgb(image))
    };
    let o = header.orientation;
    let pixels = match pixels {
        Pixels::Rgb(image) => {
            let mut image = DynamicImage::ImageRgb8(image);
            image.apply_orientation(o);
            Pixels::Rgb(image.into_rgb8())
        }
        Pixels::Planes { y, chroma, dc } => Pixels::Planes {
            y: orient(y, o),
            chroma: chroma.map(|[cb, cr]| [orient(cb, o), orient(cr, o)]),
            dc: dc.map(|dc| orient(dc, o)),
        },
    };
    Ok(Decoded {
        pixels,
        source_width,
    })
}

fn orient(plane: GrayImage, orientation: Orientation) -> GrayImage {
    if orientation == Orientation::NoTransforms {
        return plane;
    }
    let mut plane = DynamicImage::ImageLuma8(plane);
    plane.apply_orientation(orientation);
    plane.into_luma8()
}

/// The smallest DCT scale, in eighths (1, 2, 4 or 8), whose output covers `need` in both
/// directions.
pub(crate) fn jpeg_eighths(width: u32, height: u32, need: (u32, u32)) -> u32 {
    [1, 2, 4]
        .into_iter()
        .find(|&e| (width * e).div_ceil(8) >= need.0 && (height * e).div_ceil(8) >= need.1)
        .unwrap_or(8)
}

/// The request that makes jpeg-decoder pick `eighths`: it takes the first scale at which
/// either side reaches the request, so asking for exactly this scale's size picks this scale.
fn jpeg_request(width: u32, height: u32, eighths: u32) -> (u16, u16) {
    let scaled = |len: u32| (len * eighths).div_ceil(8).min(65535) as u16;
    (scaled(width), scaled(height))
}

fn decode_jpeg(
    bytes: &[u8],
    header: &Header,
    photos: &PhotoConfig,
    need: (u32, u32),
) -> Result<Pixels, Finding> {
    let eighths = jpeg_eighths(header.width, header.height, need);
    if eighths < 8 {
        match super::jpeg::decode_scaled(bytes, eighths as usize, photos.max_pixels) {
            Ok(planes) => {
                return Ok(Pixels::Planes {
                    y: planes.y,
                    chroma: planes.chroma,
                    dc: planes.dc,
                });
            }
            // jpeg-decoder has the last word: it decodes what the fast path does not cover,
            // and names the damage in what neither can decode.
            Err(skip) => tracing::debug!(?skip, "JPEG fast path declined; using jpeg-decoder"),
        }
    }
    let mut d = jpeg_decoder::Decoder::new(bytes);
    d.set_max_decoding_buffer_size(
        usize::try_from(photos.max_pixels.saturating_mul(4)).unwrap_or(usize::MAX),
    );
    let (rw, rh) = jpeg_request(header.width, header.height, eighths);
    let (w, h) = d.scale(rw, rh).map_err(|e| jpeg_error(&e))?;
    let pixels = d.decode().map_err(|e| jpeg_error(&e))?;
    let info = d
        .info()
        .ok_or_else(|| corrupt("the JPEG has no image header"))?;
    let (w, h) = (u32::from(w), u32::from(h));
    let n = (w * h) as usize;
    use jpeg_decoder::PixelFormat;
    let rgb: Vec<u8> = match info.pixel_format {
        PixelFormat::RGB24 => pixels,
        PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        // Only lossless medical-style JPEGs decode to more than 8 bits; no camera makes them.
        PixelFormat::L16 => {
            return Err(unsupported(
                "the file is a lossless high-bit-depth JPEG: export it as an ordinary JPEG",
            ));
        }
        // jpeg-decoder undoes Adobe's inverted storage: these are ink amounts, 255 = full ink.
        PixelFormat::CMYK32 => pixels
            .chunks_exact(4)
            .flat_map(|p| {
                let white = 255 - u32::from(p[3]);
                let ch = |ink: u8| ((255 - u32::from(ink)) * white / 255) as u8;
                [ch(p[0]), ch(p[1]), ch(p[2])]
            })
            .collect(),
    };
    if rgb.len() != n * 3 {
        return Err(corrupt(format!(
            "the JPEG decoder returned {} bytes for a {w}x{h} image",
            rgb.len()
        )));
    }
    let image = RgbImage::from_raw(w, h, rgb)
        .ok_or_else(|| corrupt("the JPEG decoder returned a bad buffer"))?;
    Ok(Pixels::Rgb(image))
}

/// 8-bit RGB: alpha flattened onto white, 16-bit and grey converted.
pub(crate) fn to_rgb(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return match image {
            DynamicImage::ImageRgb8(i) => i,
            other => other.to_rgb8(),
        };
    }
    let rgba = image.to_rgba8();
    let (w, h) = rgba.dimensions();
    let raw: Vec<u8> = rgba
        .pixels()
        .flat_map(|p| {
            let a = u32::from(p[3]);
            let blend = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
            [blend(p[0]), blend(p[1]), blend(p[2])]
        })
        .collect();
    RgbImage::from_raw(w, h, raw).expect("the buffer has w*h*3 bytes")
}

fn jpeg_error(e: &jpeg_decoder::Error) -> Finding {
    match e {
        jpeg_decoder::Error::Unsupported(feature) => unsupported(format!(
            "the JPEG uses a feature facesync cannot decode ({feature:?}): re-save it as a standard JPEG"
        )),
        jpeg_decoder::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            corrupt(format!("the JPEG is truncated: {io}"))
        }
        other => corrupt(format!(
            "cannot decode the JPEG: {}",
            lower_first(&other.to_string())
        )),
    }
}

fn image_error(format: ImageFormat, e: &image::ImageError) -> Finding {
    let name = format
        .extensions_str()
        .first()
        .unwrap_or(&"image")
        .to_uppercase();
    match e {
        image::ImageError::Unsupported(u) => unsupported(format!(
            "this {name} uses a feature facesync cannot decode: {}",
            lower_first(&u.to_string())
        )),
        image::ImageError::Limits(l) => Finding::new(
            ReasonCode::ImageTooLarge,
            format!("decoding this {name} needs more memory than allowed: {l}"),
        ),
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            corrupt(format!("the {name} is truncated: {io}"))
        }
        other => corrupt(format!(
            "cannot decode the {name}: {}",
            lower_first(&other.to_string())
        )),
    }
}

/// Decoder messages start with a capital; ours are lower-case.
fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
