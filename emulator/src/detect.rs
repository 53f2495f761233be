//! Face detection for the emulator: rustface with the SeetaFace frontal model that facesync
//! bundles (`models/` at the repository root, compiled in; no copy of the file). The emulator's
//! own wrapper, not facesync's photo stage: the emulator shares no code with the product.

use std::cell::RefCell;
use std::sync::OnceLock;

use image::GrayImage;

static MODEL_BYTES: &[u8] = include_bytes!("../../models/seeta_fd_frontal_v1.0.bin");

/// The smallest face found, in pixels of the image given; rustface never enlarges.
const WINDOW: u32 = 40;

/// A face's box in the pixels of the image given to [`faces`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) x: i32,
    pub(crate) y: i32,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

fn model() -> &'static rustface::Model {
    static MODEL: OnceLock<rustface::Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        rustface::read_model(MODEL_BYTES).expect("the bundled face model is valid (tested)")
    })
}

thread_local! {
    // A detector keeps scratch buffers; one per blocking thread spares a model clone per upload
    // (the benches send thousands).
    static DETECTOR: RefCell<Option<Box<dyn rustface::Detector>>> = const { RefCell::new(None) };
}

/// Every frontal face in a grey image. A window step of 6 (SeetaFace's default is 4) is what
/// the emulator has always searched with: the same pictures pass and fail as before.
pub(crate) fn faces(image: &GrayImage) -> Vec<Found> {
    if image.width() < WINDOW || image.height() < WINDOW {
        return Vec::new();
    }
    DETECTOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let detector = slot.get_or_insert_with(|| {
            let mut d = rustface::create_detector_with_model(model().clone());
            d.set_min_face_size(WINDOW);
            d.set_score_thresh(2.0);
            d.set_pyramid_scale_factor(0.8);
            d.set_slide_window_step(6, 6);
            d
        });
        let data = rustface::ImageData::new(image.as_raw(), image.width(), image.height());
        detector
            .detect(&data)
            .into_iter()
            .map(|f| {
                let b = f.bbox();
                Found {
                    x: b.x(),
                    y: b.y(),
                    width: b.width(),
                    height: b.height(),
                }
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_loads_and_images_below_the_window_find_nothing() {
        let _ = model();
        assert!(faces(&GrayImage::new(39, 300)).is_empty());
        assert!(faces(&GrayImage::new(40, 40)).is_empty());
    }
}
