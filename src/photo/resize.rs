//! Resizing with fast_image_resize (SIMD convolution; several times faster than
//! `image::imageops::resize`, which matters at twelve megapixels a photo).

use fast_image_resize as fr;
use image::{GrayImage, RgbImage};

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
        Region {
            left: 0,
            top: 0,
            width: image.width(),
            height: image.height(),
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
    let options = fr::ResizeOptions::new()
        .resize_alg(algorithm(quality))
        .crop(
            f64::from(region.left),
            f64::from(region.top),
            f64::from(region.width),
            f64::from(region.height),
        );
    fr::Resizer::new()
        .resize(&src, &mut dst, &options)
        .expect("source and destination have the same pixel type");
    RgbImage::from_raw(dst.width(), dst.height(), dst.into_vec())
        .expect("the destination has 3 bytes a pixel")
}

/// A grey image resized (bilinear: only the face detector sees these).
pub(crate) fn grey(image: &GrayImage, width: u32, height: u32) -> GrayImage {
    let src = fr::images::ImageRef::new(
        image.width(),
        image.height(),
        image.as_raw(),
        fr::PixelType::U8,
    )
    .expect("a GrayImage's buffer has 1 byte a pixel");
    let mut dst = fr::images::Image::new(width.max(1), height.max(1), fr::PixelType::U8);
    fr::Resizer::new()
        .resize(
            &src,
            &mut dst,
            &fr::ResizeOptions::new().resize_alg(algorithm(Quality::Fast)),
        )
        .expect("source and destination have the same pixel type");
    GrayImage::from_raw(dst.width(), dst.height(), dst.into_vec())
        .expect("the destination has 1 byte a pixel")
}

fn algorithm(quality: Quality) -> fr::ResizeAlg {
    match quality {
        Quality::Best => fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3),
        Quality::Fast => fr::ResizeAlg::Convolution(fr::FilterType::Bilinear),
    }
}
