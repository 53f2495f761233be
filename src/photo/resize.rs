//! Resizing with fast_image_resize (SIMD convolution; several times faster than
//! `image::imageops::resize`, which matters at twelve megapixels a photo).

use std::cell::RefCell;

use fast_image_resize as fr;
use image::{GrayImage, RgbImage};

thread_local! {
    // A resizer keeps its intermediate image (the horizontal pass, about 2 MB for a photo's luma)
    // between calls: one per thread saves allocating it, and the kernel clearing its pages,
    // for every plane of every photo.
    static RESIZER: RefCell<fr::Resizer> = RefCell::new(fr::Resizer::new());
}

/// `src` (or the part `options` crops) resized into `dst`.
fn resize(
    src: &fr::images::ImageRef<'_>,
    dst: &mut fr::images::Image<'_>,
    options: &fr::ResizeOptions,
) {
    RESIZER.with(|resizer| {
        let mut resizer = resizer.borrow_mut();
        resizer
            .resize(src, dst, options)
            .expect("source and destination have the same pixel type");
        // What a rare huge RGB image needed must not stay resident.
        if resizer.size_of_internal_buffers() > KEPT_BYTES {
            resizer.reset_internal_buffers();
        }
    });
}

/// The most a thread's resizer keeps between calls: a phone photo's planes need under 4 MB.
const KEPT_BYTES: usize = 8 << 20;

/// A rectangle of an image, in its pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Region {
    pub(crate) left: u32,
    pub(crate) top: u32,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

impl Region {
    pub(crate) fn whole(image: &RgbImage) -> Region {
        Region::of(image.width(), image.height())
    }

    /// Left, top, width and height, as the resizer's crop takes them.
    fn bounds(self) -> [f64; 4] {
        [self.left, self.top, self.width, self.height].map(f64::from)
    }

    /// All of a `width` x `height` image.
    pub(crate) fn of(width: u32, height: u32) -> Region {
        Region {
            left: 0,
            top: 0,
            width,
            height,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quality {
    /// Lanczos3: what is sent to a target.
    Best,
    /// Bilinear: thumbnails for the face detector, which does not need sharp edges.
    Fast,
}

/// `region` of `image` resized to `width` x `height`.
pub(crate) fn rgb(
    image: &RgbImage,
    region: Region,
    width: u32,
    height: u32,
    quality: Quality,
) -> RgbImage {
    let src = fr::images::ImageRef::new(
        image.width(),
        image.height(),
        image.as_raw(),
        fr::PixelType::U8x3,
    )
    .expect("an RgbImage's buffer has 3 bytes a pixel");
    let mut dst = fr::images::Image::new(width.max(1), height.max(1), fr::PixelType::U8x3);
    let [left, top, w, h] = region.bounds();
    let options = fr::ResizeOptions::new()
        .resize_alg(algorithm(quality))
        .crop(left, top, w, h);
    resize(&src, &mut dst, &options);
    RgbImage::from_raw(dst.width(), dst.height(), dst.into_vec())
        .expect("the destination has 3 bytes a pixel")
}

/// A grey image resized (bilinear: only the face detector sees these).
pub(crate) fn grey(image: &GrayImage, width: u32, height: u32) -> GrayImage {
    let whole = [
        0.0,
        0.0,
        f64::from(image.width()),
        f64::from(image.height()),
    ];
    plane(image, whole, width, height, Quality::Fast)
}

/// `region` (left, top, width, height; fractions allowed) of a grey image resized (bilinear,
/// which averages over the whole source when shrinking).
pub(crate) fn grey_region(
    image: &GrayImage,
    region: [f64; 4],
    width: u32,
    height: u32,
) -> GrayImage {
    plane(image, region, width, height, Quality::Fast)
}

/// `region` (left, top, width, height; fractions allowed) of one plane resized.
fn plane(
    image: &GrayImage,
    region: [f64; 4],
    width: u32,
    height: u32,
    quality: Quality,
) -> GrayImage {
    let src = fr::images::ImageRef::new(
        image.width(),
        image.height(),
        image.as_raw(),
        fr::PixelType::U8,
    )
    .expect("a GrayImage's buffer has 1 byte a pixel");
    let mut dst = fr::images::Image::new(width.max(1), height.max(1), fr::PixelType::U8);
    let [left, top, w, h] = region;
    resize(
        &src,
        &mut dst,
        &fr::ResizeOptions::new()
            .resize_alg(algorithm(quality))
            .crop(left, top, w, h),
    );
    GrayImage::from_raw(dst.width(), dst.height(), dst.into_vec())
        .expect("the destination has 1 byte a pixel")
}

/// `region` of a picture held as a JPEG's planes (luma, and Cb/Cr at their subsampling),
/// resized to `width` x `height` and only then converted to RGB: a quarter of the conversion
/// work of converting first, and chroma is upsampled by the resize filter itself. `quality`
/// is the luma's filter; chroma always gets the bilinear one.
pub(crate) fn planes(
    y: &GrayImage,
    chroma: Option<&[GrayImage; 2]>,
    region: Region,
    width: u32,
    height: u32,
    quality: Quality,
) -> RgbImage {
    let luma_region = region.bounds();
    let luma = plane(y, luma_region, width, height, quality);
    match chroma {
        None => {
            let rgb = luma.as_raw().iter().flat_map(|&l| [l, l, l]).collect();
            RgbImage::from_raw(luma.width(), luma.height(), rgb)
                .expect("the buffer has 3 bytes a pixel")
        }
        Some([cb, cr]) => {
            let chroma_region = chroma_region(y, cb, luma_region);
            // Chroma has half the detail to begin with and the eye sees little of it: the
            // triangle filter (libjpeg's own choice for upsampling it) at a third of the cost.
            let cb = plane(cb, chroma_region, width, height, Quality::Fast);
            let cr = plane(cr, chroma_region, width, height, Quality::Fast);
            super::jpeg::ycbcr_to_rgb(&luma, &cb, &cr)
        }
    }
}

/// A picture at its output size as the planes a 4:2:0 JPEG stores: luma at full size, Cb and
/// Cr at half size each way (rounded up).
pub(crate) struct Ycbcr {
    pub(crate) y: GrayImage,
    pub(crate) cb: GrayImage,
    pub(crate) cr: GrayImage,
}

/// `region` of a colour JPEG's planes resized to `width` x `height` for a 4:2:0 JPEG: luma with
/// `quality`'s filter, chroma (bilinear) straight to half the output's size, which is what the
/// encoder keeps of it. No colour conversion either way, and a quarter of the chroma work of
/// [`planes`].
pub(crate) fn ycbcr(
    y: &GrayImage,
    [cb, cr]: &[GrayImage; 2],
    region: Region,
    width: u32,
    height: u32,
    quality: Quality,
) -> Ycbcr {
    let luma_region = region.bounds();
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    // An odd output size gives chroma half a pixel more than luma: the region grows to match.
    let (kw, kh) = (
        f64::from(2 * cw) / f64::from(width),
        f64::from(2 * ch) / f64::from(height),
    );
    let [cl, ct, w, h] = chroma_region(y, cb, luma_region);
    let chroma_region = [
        cl,
        ct,
        (w * kw).min(f64::from(cb.width()) - cl),
        (h * kh).min(f64::from(cb.height()) - ct),
    ];
    Ycbcr {
        y: plane(y, luma_region, width, height, quality),
        cb: plane(cb, chroma_region, cw, ch, Quality::Fast),
        cr: plane(cr, chroma_region, cw, ch, Quality::Fast),
    }
}

/// A region of luma (left, top, width, height) in the chroma planes' pixels: chroma is exactly
/// 1 or 2 times smaller than luma in each direction.
fn chroma_region(y: &GrayImage, cb: &GrayImage, [left, top, w, h]: [f64; 4]) -> [f64; 4] {
    let fx = f64::from(y.width()) / f64::from(cb.width());
    let fy = f64::from(y.height()) / f64::from(cb.height());
    [left / fx, top / fy, w / fx, h / fy]
}

fn algorithm(quality: Quality) -> fr::ResizeAlg {
    match quality {
        Quality::Best => fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3),
        Quality::Fast => fr::ResizeAlg::Convolution(fr::FilterType::Bilinear),
    }
}
