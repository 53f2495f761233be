//! scratch
use fast_image_resize as fr;
use image::{GrayImage, RgbImage};
use std::time::Instant;

fn generate(seed: u64) -> Vec<u8> {
    let face = image::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/demo/photos/E1001.jpg"
    ))
    .unwrap()
    .to_rgb8();
    let mut big = RgbImage::new(3024, 4032);
    let mut r = fr::Resizer::new();
    rs(
        &mut r,
        &face,
        &mut big,
        &fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear))
            .fit_into_destination(None),
    )
    .unwrap();
    let mut s = seed | 1;
    for p in big.as_mut().iter_mut() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let n = (s % 17) as i32 - 8;
        *p = (*p as i32 + n).clamp(0, 255) as u8;
    }
    let mut out = Vec::new();
    {
        let mut e = jpeg_encoder::Encoder::new(&mut out, 90);
        e.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
        e
    }
    .encode(big.as_raw(), 3024, 4032, jpeg_encoder::ColorType::Rgb)
    .unwrap();
    out
}

fn rs(
    r: &mut fr::Resizer,
    src: &image::ImageBuffer<impl image::Pixel<Subpixel = u8>, Vec<u8>>,
    dst: &mut image::ImageBuffer<impl image::Pixel<Subpixel = u8>, Vec<u8>>,
    o: &fr::ResizeOptions,
) -> Result<(), fr::ResizeError> {
    let pt = if src.as_raw().len() == (src.width() * src.height() * 3) as usize {
        fr::PixelType::U8x3
    } else {
        fr::PixelType::U8
    };
    let s = fr::images::ImageRef::new(src.width(), src.height(), src.as_raw(), pt).unwrap();
    let (w, h) = dst.dimensions();
    let mut d = fr::images::Image::from_slice_u8(w, h, &mut *dst, pt).unwrap();
    r.resize(&s, &mut d, o)
}

fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    s.split_whitespace().next().unwrap().parse::<f64>().unwrap() / 1e9
}

fn t<T>(name: &str, n: u32, mut f: impl FnMut() -> T) -> T {
    let mut last = None;
    let s = Instant::now();
    let c = cpu();
    for _ in 0..n {
        last = Some(f());
    }
    println!(
        "{name}: {:.1} ms wall, {:.1} ms cpu",
        s.elapsed().as_secs_f64() * 1000.0 / n as f64,
        (cpu() - c) * 1000.0 / n as f64
    );
    last.unwrap()
}

fn main() {
    let jpg = generate(7);
    println!("size {}", jpg.len());
    std::fs::write("/tmp/ph/gen.jpg", &jpg).unwrap();
    let half = t("jpeg-decoder 1/2", 5, || {
        let mut d = jpeg_decoder::Decoder::new(&jpg[..]);
        let (w, h) = d.scale(1512, 2016).unwrap();
        RgbImage::from_raw(w as u32, h as u32, d.decode().unwrap()).unwrap()
    });
    t("jpeg-decoder 1/4", 5, || {
        let mut d = jpeg_decoder::Decoder::new(&jpg[..]);
        d.scale(756, 1008).unwrap();
        d.decode().unwrap()
    });
    t("jpeg-decoder full", 3, || {
        let mut d = jpeg_decoder::Decoder::new(&jpg[..]);
        d.decode().unwrap()
    });
    t("image(zune) full", 3, || {
        image::load_from_memory(&jpg).unwrap()
    });
    let mut r = fr::Resizer::new();
    for alg in [
        fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3),
        fr::ResizeAlg::Convolution(fr::FilterType::CatmullRom),
        fr::ResizeAlg::Convolution(fr::FilterType::Bilinear),
    ] {
        let out = t(&format!("resize {alg:?} 1512x2016->810x1080"), 10, || {
            let mut dst = RgbImage::new(810, 1080);
            rs(
                &mut r,
                &half,
                &mut dst,
                &fr::ResizeOptions::new().resize_alg(alg),
            )
            .unwrap();
            dst
        });
        if let fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3) = alg {
            std::fs::write("/tmp/ph/out.raw", out.as_raw()).unwrap();
        }
    }
    let small = {
        let mut dst = RgbImage::new(810, 1080);
        rs(&mut r, &half, &mut dst, &fr::ResizeOptions::new()).unwrap();
        dst
    };
    for q in [90u8, 85] {
        let o = t(&format!("jpeg-encoder q{q} 810x1080"), 10, || {
            let mut o = Vec::new();
            {
                let mut e = jpeg_encoder::Encoder::new(&mut o, q);
                e.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
                e
            }
            .encode(small.as_raw(), 810, 1080, jpeg_encoder::ColorType::Rgb)
            .unwrap();
            o
        });
        println!("  bytes {}", o.len());
        let o = t(&format!("image encoder q{q} 810x1080"), 5, || {
            let mut o = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut o, q)
                .encode_image(&small)
                .unwrap();
            o
        });
        println!("  bytes {}", o.len());
    }
    for short in [160u32, 200, 300, 400] {
        let gw = short;
        let gh = short * 4 / 3;
        let mut g = GrayImage::new(gw, gh);
        let grey = image::DynamicImage::ImageRgb8(half.clone()).to_luma8();
        rs(
            &mut r,
            &grey,
            &mut g,
            &fr::ResizeOptions::new()
                .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear)),
        )
        .unwrap();
        let faces = t(&format!("detect {gw}x{gh}"), 5, || {
            facesync::photo::face::detect(&g)
        });
        println!("  {faces:?}");
    }
    let model =
        rustface::read_model(&include_bytes!("../models/seeta_fd_frontal_v1.0.bin")[..]).unwrap();
    let grey = image::DynamicImage::ImageRgb8(half.clone()).to_luma8();
    let mut g = GrayImage::new(400, 533);
    rs(
        &mut r,
        &grey,
        &mut g,
        &fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear)),
    )
    .unwrap();
    let mut imgs = vec![("gen", g)];
    for f in [
        "E1001.jpg",
        "E1003.jpg",
        "E1014.png",
        "e1011.jpg",
        "E9999.jpg",
    ] {
        imgs.push((
            f,
            image::open(format!(
                "{}/fixtures/demo/photos/{f}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
            .to_luma8(),
        ));
    }
    for (step, pyr, thr) in [
        (4u32, 0.8f32, 2.0f64),
        (6, 0.8, 2.0),
        (8, 0.8, 2.0),
        (4, 0.7, 2.0),
        (6, 0.7, 2.0),
        (8, 0.7, 2.0),
    ] {
        for (name, g) in &imgs {
            let mut d = rustface::create_detector_with_model(model.clone());
            d.set_min_face_size(20);
            d.set_score_thresh(thr);
            d.set_pyramid_scale_factor(pyr);
            d.set_slide_window_step(step, step);
            let data = rustface::ImageData::new(g.as_raw(), g.width(), g.height());
            let f = t(
                &format!("step {step} pyr {pyr} {name} {}x{}", g.width(), g.height()),
                3,
                || d.detect(&data),
            );
            println!(
                "   {:?}",
                f.iter()
                    .map(|f| (f.bbox().width(), f.score() as i32))
                    .collect::<Vec<_>>()
            );
        }
    }
    t("to_luma 1512x2016", 5, || {
        image::DynamicImage::ImageRgb8(half.clone()).to_luma8()
    });
}
