//! Offline face detection with the SeetaFace frontal model (bundled in `models/`, loaded from
//! the binary itself: nothing is read or downloaded at run time).

use std::sync::OnceLock;

use image::GrayImage;

static MODEL_BYTES: &[u8] = include_bytes!("../../models/seeta_fd_frontal_v1.0.bin");

fn model() -> &'static rustface::Model {
    static MODEL: OnceLock<rustface::Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        rustface::read_model(MODEL_BYTES)
            .expect("the bundled face model is valid (checked by tests)")
    })
}

/// A detected face, in the pixel coordinates of the image given to [`detect`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub score: f64,
}

/// Finds frontal faces in a grey image. Faces smaller than 20 pixels are not found, so callers
/// hand in an image scaled so that the faces they care about are larger than that.
pub fn detect(image: &GrayImage) -> Vec<FaceBox> {
    if image.width() < 20 || image.height() < 20 {
        return Vec::new();
    }
    let mut detector = rustface::create_detector_with_model(model().clone());
    detector.set_min_face_size(20);
    detector.set_score_thresh(2.0);
    detector.set_pyramid_scale_factor(0.8);
    detector.set_slide_window_step(4, 4);
    let data = rustface::ImageData::new(image.as_raw(), image.width(), image.height());
    detector
        .detect(&data)
        .into_iter()
        .map(|f| {
            let b = f.bbox();
            FaceBox {
                x: b.x(),
                y: b.y(),
                width: b.width(),
                height: b.height(),
                score: f.score(),
            }
        })
        .collect()
}
