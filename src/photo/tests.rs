//! The photo pipeline on real files (fixtures/images, made by fixtures/make_images.py): every
//! bad input gets its reason, every good input fits every profile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;

use super::*;
use crate::config::{Config, Crop, OutputFormat, PhotoConfig, Profile};
use crate::reason::ReasonCode;

mod quality;
mod reference;
mod variants;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/images")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The defaults, as a config without a [photos] section gives them.
fn gated() -> PhotoConfig {
    Config::parse("[roster]\npath = \"r.csv\"\n", Path::new("/x/config.toml"))
        .unwrap()
        .photos
}

/// The defaults with the quality gate off: the pipeline's fixtures are small (the eyes 25 px
/// apart, less in the tight profiles), and the gate has its own tests (`quality`).
fn photos() -> PhotoConfig {
    PhotoConfig {
        quality: crate::config::QualityGate::Off,
        ..gated()
    }
}

fn profile(format: OutputFormat, w: u32, h: u32, bytes: u64, q: u8) -> Profile {
    Profile {
        format,
        max_width: w,
        max_height: h,
        max_bytes: bytes,
        min_quality: q,
        min_short_side: 0,
        requirements: crate::config::Requirements::DEFAULT,
    }
}

/// The two default targets' profiles.
fn defaults() -> Vec<(String, Profile)> {
    vec![
        (
            "feishu".into(),
            profile(OutputFormat::Jpeg, 1080, 1440, 1_048_576, 60),
        ),
        (
            "vzicloud".into(),
            profile(OutputFormat::Jpeg, 1920, 1080, 1_572_864, 60),
        ),
    ]
}

/// Profiles that make the encoder work: small boxes, tight budgets, PNG.
fn demanding() -> Vec<(String, Profile)> {
    let mut all = defaults();
    all.extend([
        (
            "tiny".into(),
            profile(OutputFormat::Jpeg, 160, 120, 10_000, 50),
        ),
        (
            "tight".into(),
            profile(OutputFormat::Jpeg, 1000, 1000, 16_000, 60),
        ),
        (
            "png".into(),
            profile(OutputFormat::Png, 240, 240, 120_000, 60),
        ),
        (
            "wide".into(),
            profile(OutputFormat::Jpeg, 64, 4000, 20_000, 60),
        ),
    ]);
    all
}

const GOOD: &[&str] = &[
    "face.jpg",
    "progressive.jpg",
    "grey.jpg",
    "cmyk.jpg",
    "face.webp",
    "face.bmp",
    "face.tiff",
    "palette.png",
    "animated.gif",
    "rgb16.png",
    "grey16.png",
    "alpha.png",
    "orient-1.jpg",
    "orient-2.jpg",
    "orient-3.jpg",
    "orient-4.jpg",
    "orient-5.jpg",
    "orient-6.jpg",
    "orient-7.jpg",
    "orient-8.jpg",
];

fn check(name: &str, expected: Result<(), ReasonCode>) {
    let got = prepare(&read(name), &photos(), &defaults())
        .map(|_| ())
        .map_err(|f| f.code);
    assert_eq!(got, expected, "{name}");
}

#[test]
fn every_good_fixture_is_accepted() {
    for name in GOOD {
        check(name, Ok(()));
    }
}

#[test]
fn every_bad_input_gets_its_reason() {
    use ReasonCode::*;
    for (name, code) in [
        ("empty.jpg", CorruptImage),
        ("truncated.jpg", CorruptImage),
        ("corrupt.jpg", CorruptImage),
        ("text.jpg", UnsupportedFormat),
        ("iphone.heic", UnsupportedFormat),
        ("bomb.png", ImageTooLarge),
        ("bomb.jpg", ImageTooLarge),
        ("small.jpg", TooSmall),
        ("cat.jpg", NoFace),
        ("tiny-face.jpg", FaceTooSmall),
        ("two-faces.jpg", MultipleFaces),
        ("group.jpg", MultipleFaces),
    ] {
        check(name, Err(code));
    }
}

#[test]
fn formats_facesync_does_not_read_are_named() {
    let mut pnm = b"P6\n300 300\n255\n".to_vec();
    pnm.resize(pnm.len() + 300 * 300 * 3, 128);
    let avif = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf".to_vec();
    for (bytes, words) in [(pnm, "image, which facesync does not read"), (avif, "avif")] {
        let f = prepare(&bytes, &photos(), &defaults()).unwrap_err();
        assert_eq!(f.code, ReasonCode::UnsupportedFormat, "{f}");
        assert!(f.message.to_lowercase().contains(words), "{f}");
    }
}

fn message(name: &str) -> String {
    prepare(&read(name), &photos(), &defaults())
        .expect_err(name)
        .message
}

#[test]
fn findings_say_what_is_wrong_in_plain_words() {
    for (name, words) in [
        ("empty.jpg", &["empty"][..]),
        ("truncated.jpg", &["truncated"]),
        ("corrupt.jpg", &["jpeg"]),
        ("text.jpg", &["text, not an image"]),
        ("iphone.heic", &["heic"]),
        ("bomb.png", &["100000x100000", "photos.max_pixels"]),
        ("small.jpg", &["150x188", "photos.min_short_side"]),
        ("cat.jpg", &["no face found"]),
        ("tiny-face.jpg", &["%", "photos.min_face_fraction"]),
        ("group.jpg", &["faces of similar size"]),
    ] {
        let m = message(name);
        for w in words {
            assert!(m.to_lowercase().contains(w), "{name}: `{m}` lacks `{w}`");
        }
        assert!(
            m.starts_with(|c: char| !c.is_uppercase()),
            "{name}: `{m}` starts with a capital"
        );
    }
}

#[test]
fn the_file_size_limit_applies_before_decoding() {
    let mut p = photos();
    p.max_file_bytes = 1000;
    let f = prepare(&read("face.jpg"), &p, &defaults()).unwrap_err();
    assert_eq!(f.code, ReasonCode::ImageTooLarge);
    assert!(f.message.contains("photos.max_file_bytes"), "{f}");
}

/// Decodes an output and checks it against its profile.
fn check_within(name: &str, n: &Normalized, p: &Profile) -> RgbImage {
    let what = format!("{name} for {}", n.target);
    assert!(
        n.width <= p.max_width && n.height <= p.max_height,
        "{what}: {}x{}",
        n.width,
        n.height
    );
    assert!(
        n.bytes.len() as u64 <= p.max_bytes,
        "{what}: {} bytes",
        n.bytes.len()
    );
    assert_eq!(n.format, p.format, "{what}");
    assert_eq!(
        n.hash,
        blake3::hash(&n.bytes).to_hex().to_string(),
        "{what}"
    );
    let format = image::guess_format(&n.bytes).unwrap();
    let expected = match p.format {
        OutputFormat::Jpeg => image::ImageFormat::Jpeg,
        OutputFormat::Png => image::ImageFormat::Png,
    };
    assert_eq!(format, expected, "{what}");
    let segments = match p.format {
        OutputFormat::Jpeg => jpeg_segments(&n.bytes),
        OutputFormat::Png => png_chunks(&n.bytes),
    };
    for s in &segments {
        assert!(
            [
                "APP0", "DQT", "SOF", "DHT", "DRI", "SOS", "IHDR", "IDAT", "IEND"
            ]
            .contains(&s.as_str()),
            "{what}: the output carries a {s} segment: {segments:?}"
        );
    }
    let img = image::load_from_memory(&n.bytes).unwrap();
    assert_eq!((img.width(), img.height()), (n.width, n.height), "{what}");
    assert_eq!(img.color(), image::ColorType::Rgb8, "{what}");
    img.into_rgb8()
}

#[test]
fn every_good_fixture_fits_every_profile() {
    let profiles = demanding();
    for name in GOOD {
        let bytes = read(name);
        let out = prepare(&bytes, &photos(), &profiles).unwrap_or_else(|f| panic!("{name}: {f}"));
        assert_eq!(out.len(), profiles.len());
        let source = image::load_from_memory(&bytes).unwrap();
        let source_long = source.width().max(source.height());
        for (n, (target, p)) in out.iter().zip(&profiles) {
            assert_eq!(&n.target, target);
            check_within(name, n, p);
            // Never upscaled: the output's longer side is at most the source's.
            assert!(
                n.width.max(n.height) <= source_long,
                "{name} for {target}: upscaled"
            );
        }
    }
}

#[test]
fn an_unfittable_budget_is_cannot_fit_naming_the_target() {
    let profiles = vec![(
        "strict".into(),
        profile(OutputFormat::Png, 2000, 2000, 10_000, 60),
    )];
    let f = prepare(&read("face.jpg"), &photos(), &profiles).unwrap_err();
    assert_eq!(f.code, ReasonCode::CannotFit);
    assert!(
        f.message.contains("targets.strict.profile.max_bytes"),
        "{f}"
    );
}

#[test]
fn the_quality_search_keeps_the_largest_size_when_a_lower_quality_fits() {
    let big = profile(OutputFormat::Jpeg, 1000, 1000, 1_000_000, 60);
    let roomy = prepare(&read("face.jpg"), &photos(), &[("a".into(), big.clone())]).unwrap();
    let budget = roomy[0].bytes.len() as u64 * 3 / 4;
    let tight = Profile {
        max_bytes: budget,
        ..big
    };
    let out = prepare(&read("face.jpg"), &photos(), &[("a".into(), tight.clone())]).unwrap();
    check_within("face.jpg", &out[0], &tight);
    assert_eq!(
        (out[0].width, out[0].height),
        (roomy[0].width, roomy[0].height)
    );
}

#[test]
fn when_even_the_lowest_quality_is_too_big_the_photo_is_made_smaller() {
    let mut p = photos();
    p.min_short_side = 100;
    let strict = profile(OutputFormat::Jpeg, 1000, 1000, 10_000, 90);
    let out = prepare(&read("face.jpg"), &p, &[("a".into(), strict.clone())]).unwrap();
    check_within("face.jpg", &out[0], &strict);
    assert!(
        out[0].width < 300 && out[0].width >= 100,
        "{}",
        out[0].width
    );
}

/// The segments of a JPEG up to the image data: metadata (EXIF and XMP are APP1, ICC APP2,
/// comments COM) would show here.
fn jpeg_segments(bytes: &[u8]) -> Vec<String> {
    assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
    let mut at = 2;
    let mut names = Vec::new();
    loop {
        assert_eq!(bytes[at], 0xFF, "a marker at {at}");
        let marker = bytes[at + 1];
        let name = match marker {
            0xE0..=0xEF => format!("APP{}", marker - 0xE0),
            0xDB => "DQT".into(),
            0xC0..=0xC2 => "SOF".into(),
            0xC4 => "DHT".into(),
            0xDD => "DRI".into(),
            0xDA => "SOS".into(),
            0xFE => "COM".into(),
            other => format!("{other:#x}"),
        };
        names.push(name);
        if marker == 0xDA {
            return names;
        }
        at += 2 + usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
    }
}

fn png_chunks(bytes: &[u8]) -> Vec<String> {
    let mut at = 8;
    let mut names = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        names.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        at += 12 + len;
    }
    names
}

fn mean_difference(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

fn output(name: &str) -> RgbImage {
    let profiles = defaults();
    let out = prepare(&read(name), &photos(), &profiles[..1]).unwrap();
    check_within(name, &out[0], &profiles[0].1)
}

#[test]
fn every_exif_orientation_comes_out_upright() {
    let upright = output("orient-1.jpg");
    for n in 2..=8 {
        let name = format!("orient-{n}.jpg");
        let img = output(&name);
        assert_eq!(img.dimensions(), upright.dimensions(), "{name}");
        let d = mean_difference(&img, &upright);
        assert!(
            d < 6.0,
            "{name}: differs from the upright photo by {d:.1} on average"
        );
        let grey = image::DynamicImage::ImageRgb8(img).into_luma8();
        assert_eq!(face::detect(&grey).len(), 1, "{name}: no upright face");
    }
}

#[test]
fn cmyk_is_converted_not_inverted() {
    let d = mean_difference(&output("cmyk.jpg"), &output("face.jpg"));
    assert!(
        d < 12.0,
        "the CMYK photo differs from the RGB one by {d:.1} on average"
    );
}

#[test]
fn sixteen_bit_and_grey_inputs_come_out_as_8_bit_rgb() {
    let rgb16 = output("rgb16.png");
    let bmp = output("face.bmp");
    assert!(mean_difference(&rgb16, &bmp) < 4.0);
    let grey = output("grey16.png");
    let p = grey.get_pixel(100, 100);
    assert!(
        p[0].abs_diff(p[1]) <= 2 && p[1].abs_diff(p[2]) <= 2,
        "{p:?}"
    );
}

#[test]
fn alpha_is_flattened_onto_white() {
    let img = output("alpha.png");
    for (x, y) in [(0, 0), (img.width() - 1, 0), (0, img.height() - 1)] {
        let p = img.get_pixel(x, y);
        assert!(
            p.0.iter().all(|&c| c >= 245),
            "corner ({x}, {y}) is {p:?}, not white"
        );
    }
}

#[test]
fn only_the_first_gif_frame_counts() {
    let img = output("animated.gif");
    let p = img.get_pixel(img.width() / 2, img.height() / 2);
    assert!(
        !(p[2] > 200 && p[0] < 60),
        "the blue second frame came out: {p:?}"
    );
}

#[test]
fn a_portrait_crop_is_three_by_four_around_the_face() {
    let mut p = photos();
    p.crop = Crop::Portrait;
    let profiles = defaults();
    for name in ["face.jpg", "orient-6.jpg", "two-faces.jpg"] {
        let out = prepare(&read(name), &p, &profiles);
        if name == "two-faces.jpg" {
            assert_eq!(out.unwrap_err().code, ReasonCode::MultipleFaces);
            continue;
        }
        let out = out.unwrap();
        let img = check_within(name, &out[0], &profiles[0].1);
        let ratio = f64::from(img.width()) / f64::from(img.height());
        assert!(
            (ratio - 0.75).abs() < 0.02,
            "{name}: {}x{}",
            img.width(),
            img.height()
        );
        let faces = face::detect(&image::DynamicImage::ImageRgb8(img).into_luma8());
        assert_eq!(faces.len(), 1, "{name}");
    }
    // With the face check off, a photo without a face still gets a 3:4 crop.
    p.face_check = false;
    let out = prepare(&read("cat.jpg"), &p, &profiles).unwrap();
    assert_eq!((out[0].width, out[0].height), (150, 200));
}

#[test]
fn without_the_face_check_a_cat_is_normalized() {
    let mut p = photos();
    p.face_check = false;
    let out = prepare(&read("cat.jpg"), &p, &defaults()).unwrap();
    assert_eq!((out[0].width, out[0].height), (300, 200));
}

#[test]
fn the_face_verdict_weighs_sizes() {
    use ReasonCode::*;
    let faces = |widths: &[u32]| -> Vec<face::FaceBox> {
        widths
            .iter()
            .map(|&w| face::FaceBox {
                x: 0,
                y: 0,
                width: w,
                height: w,
                score: 10.0,
            })
            .collect()
    };
    // Widths (largest first) in a photo whose shorter side is 1000 pixels.
    for (widths, expected) in [
        (&[][..], Err(NoFace)),
        (&[300], Ok(300)),
        (&[300, 250], Err(MultipleFaces)),
        (&[300, 180], Err(MultipleFaces)),
        (&[300, 170], Ok(300)), // a bystander well behind
        (&[99], Err(FaceTooSmall)),
        (&[100], Ok(100)),
        (&[60, 50, 55], Err(MultipleFaces)), // a group of small faces
    ] {
        let got = check::classify(&faces(widths), 1000, &photos())
            .map(|f| f.width)
            .map_err(|f| f.code);
        assert_eq!(got, expected, "{widths:?}");
    }
}

#[test]
fn sizes_fit_the_box_and_never_grow() {
    use normalize::fit;
    for ((w, h, mw, mh), expected) in [
        ((3024, 4032, 1920, 1080), (810, 1080)),
        ((3024, 4032, 1080, 1440), (1080, 1440)),
        ((4032, 3024, 1920, 1080), (1440, 1080)),
        ((300, 400, 1920, 1080), (300, 400)),
        ((5000, 10, 100, 100), (100, 1)),
        ((10, 5000, 100, 100), (1, 100)),
    ] {
        assert_eq!(fit(w, h, mw, mh), expected, "{w}x{h} into {mw}x{mh}");
    }
}

#[test]
fn portrait_crops_stay_inside_the_image() {
    use normalize::portrait;
    use resize::Region;
    let face = |x, y, w| face::FaceBox {
        x,
        y,
        width: w,
        height: w,
        score: 10.0,
    };
    for ((iw, ih, f), expected) in [
        // Room all round: 2.2 face widths wide, 3:4, 0.6 face widths above the face.
        (
            (1000, 1000, face(400, 300, 100)),
            Region {
                left: 340,
                top: 240,
                width: 220,
                height: 293,
            },
        ),
        // Face at the top-left corner: moved inside.
        (
            (1000, 1000, face(0, 0, 100)),
            Region {
                left: 0,
                top: 0,
                width: 220,
                height: 293,
            },
        ),
        // Face as big as the photo: the largest 3:4 crop, centred on the face.
        (
            (400, 400, face(50, 50, 300)),
            Region {
                left: 50,
                top: 0,
                width: 300,
                height: 400,
            },
        ),
    ] {
        assert_eq!(portrait(iw, ih, &f, 0.6), expected, "{iw}x{ih} {f:?}");
    }
}

#[test]
fn jpegs_decode_at_the_smallest_dct_scale_that_covers_every_output() {
    for ((w, h, need), expected) in [
        ((3024, 4032, (810, 1080)), 4),
        ((3024, 4032, (1512, 2016)), 4),
        ((3024, 4032, (1513, 10)), 8),
        ((3024, 4032, (300, 300)), 1),
        ((3024, 4032, (378, 505)), 2),
        ((100, 100, (1, 1)), 1),
        ((100, 100, (13, 14)), 2),
    ] {
        assert_eq!(
            decode::jpeg_eighths(w, h, need),
            expected,
            "{w}x{h} for {need:?}"
        );
    }
}

#[test]
fn a_large_jpeg_is_decoded_small_and_still_fits() {
    // A 2400x3000 photo: decoded at half scale for the 810x1080 output.
    let face = image::load_from_memory(&read("face.jpg"))
        .unwrap()
        .into_rgb8();
    let big = resize::rgb(
        &face,
        resize::Region::whole(&face),
        2400,
        3000,
        resize::Quality::Best,
    );
    let bytes = normalize::jpeg(&big, 85);
    let header = decode::header(&bytes, &photos()).unwrap();
    let need = decode_size(&header, &photos(), &defaults()[1..]);
    assert_eq!(need, (864, 1080));
    let decoded = decode::decode(&bytes, &header, &photos(), need).unwrap();
    assert_eq!(decoded.dimensions(), (1200, 1500));
    let out = prepare(&bytes, &photos(), &defaults()).unwrap();
    assert_eq!((out[0].width, out[0].height), (1080, 1350));
    assert_eq!((out[1].width, out[1].height), (864, 1080));
}

#[test]
fn targets_with_the_same_profile_share_one_encoding() {
    let mut profiles = defaults();
    profiles.push(("copy".into(), profiles[0].1.clone()));
    let out = prepare(&read("face.jpg"), &photos(), &profiles).unwrap();
    assert_eq!(out[0].bytes, out[2].bytes);
    assert_eq!(out[2].target, "copy");
}

mod stage {
    use super::*;

    #[tokio::test]
    async fn the_stage_takes_the_pre_pass_faces_for_that_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("E1.jpg");
        let bytes = phone_sized("obama.jpg");
        std::fs::write(&path, &bytes).unwrap();
        let p = gated();
        let (hash, hint) = PhotoStage::new(p.clone())
            .face_hash_file(path.clone())
            .await;
        let hint = hint.expect("a portrait's face is found in the block means");
        assert!(hint.modified.is_some());
        let profiles = defaults()[1..].to_vec();
        let with = |hint: FaceHint| {
            PhotoStage::new(p.clone()).with_hints(Arc::new(HashMap::from([(path.clone(), hint)])))
        };
        // The pre-pass's faces give what searching again gives.
        let (seen, out) = with(hint.clone())
            .prepare_file_hashed(path.clone(), profiles.clone())
            .await;
        let (searched_seen, searched) = PhotoStage::new(p.clone())
            .prepare_file_hashed(path.clone(), profiles.clone())
            .await;
        let (out, searched) = (out.unwrap(), searched.unwrap());
        assert_eq!(
            (out[0].width, out[0].height),
            (searched[0].width, searched[0].height)
        );
        let (FaceSeen::Hashed(a), FaceSeen::Hashed(b)) = (seen, searched_seen) else {
            panic!("{seen:?} {searched_seen:?}")
        };
        assert!(a.distance(b) <= 2, "{} bits", a.distance(b));
        assert!(hash.expect("a face").distance(a) <= 4);
        // The stage takes the hint as it is (it does not search): a hint without faces is
        // `no_face`...
        let empty = FaceHint {
            faces: Vec::new(),
            ..hint.clone()
        };
        let (_, refused) = with(empty.clone())
            .prepare_file_hashed(path.clone(), profiles.clone())
            .await;
        assert_eq!(refused.unwrap_err().code, ReasonCode::NoFace);
        // ...but only for the file it was made from: another length or modification time (the
        // file was replaced or edited), or another path, is searched again.
        let stale = FaceHint {
            len: hint.len + 1,
            ..empty.clone()
        };
        let (_, searched) = with(stale)
            .prepare_file_hashed(path.clone(), profiles.clone())
            .await;
        assert!(searched.is_ok());
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
            .unwrap();
        let (_, searched) = with(empty.clone())
            .prepare_file_hashed(path.clone(), profiles.clone())
            .await;
        assert!(searched.is_ok());
        let other = dir.path().join("E2.jpg");
        std::fs::write(&other, &bytes).unwrap();
        let (_, searched) = with(empty).prepare_file_hashed(other, profiles).await;
        assert!(searched.is_ok());
    }

    #[tokio::test]
    async fn the_stage_reads_bounds_and_prepares_files() {
        let stage = PhotoStage::with_parallelism(photos(), 1);
        let runs = GOOD.iter().map(|name| {
            let stage = stage.clone();
            async move { stage.prepare_file(fixture(name), defaults()).await }
        });
        for (name, result) in GOOD.iter().zip(futures::future::join_all(runs).await) {
            assert_eq!(result.map(|o| o.len()), Ok(2), "{name}");
        }
        let missing = stage
            .prepare_file(fixture("no-such.jpg"), defaults())
            .await
            .unwrap_err();
        assert_eq!(missing.code, ReasonCode::PhotoUnreadable);
        let mut p = photos();
        p.max_file_bytes = 100;
        let small = PhotoStage::new(p);
        let big = small
            .prepare_file(fixture("face.jpg"), defaults())
            .await
            .unwrap_err();
        assert_eq!(big.code, ReasonCode::ImageTooLarge);
    }
}

/// A YCCK JPEG (CMYK stored as YCbCr + K, what Photoshop writes): made at test time from the
/// CMYK fixture's own samples with jpeg-encoder, then read through the pipeline like any photo.
#[test]
fn ycck_is_converted_like_cmyk() {
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(read("cmyk.jpg")));
    let cmyk = decoder.decode().expect("the CMYK fixture decodes");
    let info = decoder.info().expect("decoded info");
    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::CMYK32);
    let mut ycck = Vec::new();
    jpeg_encoder::Encoder::new(&mut ycck, 90)
        .encode(
            &cmyk,
            info.width,
            info.height,
            jpeg_encoder::ColorType::CmykAsYcck,
        )
        .expect("YCCK encodes");
    // It really is YCCK: the Adobe segment's colour transform is 2.
    let adobe = ycck
        .windows(5)
        .position(|w| w == b"Adobe")
        .expect("an Adobe APP14 segment");
    assert_eq!(ycck[adobe + 11], 2, "Adobe transform: 2 means YCCK");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ycck.jpg");
    std::fs::write(&path, &ycck).unwrap();
    let profiles = defaults();
    let out = prepare(&std::fs::read(&path).unwrap(), &photos(), &profiles[..1]).unwrap();
    let img = check_within("ycck.jpg", &out[0], &profiles[0].1);
    let d = mean_difference(&img, &output("cmyk.jpg"));
    assert!(
        d < 6.0,
        "the YCCK photo differs from the CMYK one by {d:.1} on average"
    );
}

/// The JPEG fast path keeps planes, which are oriented one by one: for every EXIF orientation
/// and a region that is not the whole photo, they must give the same picture as the RGB path
/// (jpeg-decoder at the same scale, oriented as RGB).
#[test]
fn planes_and_rgb_agree_for_every_orientation_and_region() {
    for n in 1..=8 {
        let name = format!("orient-{n}.jpg");
        let bytes = read(&name);
        let header = decode::header(&bytes, &photos()).unwrap();
        let (w, h) = header.upright_size();
        // Half size: the fast path decodes it.
        let need = (w / 2, h / 2);
        let planes = decode::decode(&bytes, &header, &photos(), need).unwrap();
        assert!(
            matches!(planes.pixels, decode::Pixels::Planes { .. }),
            "{name}: the fast path took it"
        );
        let mut rgb = image::load_from_memory(&bytes).unwrap();
        rgb.apply_orientation(header.orientation);
        let rgb = rgb.into_rgb8();
        let (pw, ph) = planes.dimensions();
        // An off-centre region, as a portrait crop would take, at a size of its own.
        let region = resize::Region {
            left: pw / 5,
            top: ph / 7,
            width: pw / 2,
            height: ph / 2,
        };
        let (ow, oh) = (region.width * 3 / 4, region.height * 3 / 4);
        let ours = planes.rgb(region, ow, oh, resize::Quality::Best);
        // The same region of the full-size RGB decode (twice the coordinates).
        let full = resize::Region {
            left: region.left * 2,
            top: region.top * 2,
            width: region.width * 2,
            height: region.height * 2,
        };
        let theirs = resize::rgb(&rgb, full, ow, oh, resize::Quality::Best);
        let se: f64 = ours
            .as_raw()
            .iter()
            .zip(theirs.as_raw())
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        let psnr = 10.0 * (255.0f64.powi(2) / (se / ours.as_raw().len() as f64)).log10();
        assert!(psnr > 30.0, "{name}: {psnr:.1} dB against the RGB path");
    }
}

#[test]
fn a_jpeg_sent_from_its_planes_is_as_true_to_the_photo_as_the_rgb_path() {
    // The planes go to the encoder as they are, chroma resized straight to half size (the RGB
    // path upsamples chroma to full size and the encoder keeps every other sample). Against the
    // photo decoded at full size and resized by the same filter, the planar file must be at
    // least as close as the RGB path's, at even and odd sizes, for a region, in every
    // orientation; and the file a JPEG of the same layout and size.
    let mut names: Vec<String> = (1..=8).map(|n| format!("orient-{n}.jpg")).collect();
    names.push("face.jpg".into());
    for name in names {
        let bytes = read(&name);
        let header = decode::header(&bytes, &photos()).unwrap();
        let (w, h) = header.upright_size();
        let decoded = decode::decode(&bytes, &header, &photos(), (w / 2, h / 2)).unwrap();
        let mut full = image::load_from_memory(&bytes).unwrap();
        full.apply_orientation(header.orientation);
        let full = full.into_rgb8();
        let (dw, dh) = decoded.dimensions();
        let whole = resize::Region::of(dw, dh);
        let part = resize::Region {
            left: dw / 5 + 1,
            top: dh / 7 + 1,
            width: dw / 2 + 1,
            height: dh / 2 + 1,
        };
        for (region, ow, oh) in [(whole, dw, dh), (whole, dw / 2 + 1, dh / 2), (part, 61, 83)] {
            let what = format!("{name} {region:?} to {ow}x{oh}");
            let planes = decoded
                .ycbcr(region, ow, oh, resize::Quality::Best)
                .unwrap();
            assert_eq!(planes.y.dimensions(), (ow, oh));
            assert_eq!(planes.cb.dimensions(), (ow.div_ceil(2), oh.div_ceil(2)));
            let planar = normalize::jpeg_ycbcr(&planes, 90);
            let rgb = normalize::jpeg(&decoded.rgb(region, ow, oh, resize::Quality::Best), 90);
            assert_eq!(jpeg_segments(&planar), jpeg_segments(&rgb), "{what}");
            let a = image::load_from_memory(&planar).unwrap().into_rgb8();
            let b = image::load_from_memory(&rgb).unwrap().into_rgb8();
            assert_eq!(a.dimensions(), (ow, oh), "{what}");
            // The same region of the full-size decode (twice the coordinates, to a pixel).
            let k = f64::from(full.width()) / f64::from(dw);
            let scaled = |v: u32| (f64::from(v) * k).round() as u32;
            let source = resize::Region {
                left: scaled(region.left),
                top: scaled(region.top),
                width: scaled(region.width).min(full.width() - scaled(region.left)),
                height: scaled(region.height).min(full.height() - scaled(region.top)),
            };
            let truth = resize::rgb(&full, source, ow, oh, resize::Quality::Best);
            let (planar_off, rgb_off) = (mean_difference(&a, &truth), mean_difference(&b, &truth));
            assert!(
                planar_off <= rgb_off * 1.05 + 0.1,
                "{what}: {planar_off:.2} levels off the photo, the RGB path {rgb_off:.2}"
            );
        }
    }
}

/// A fixtures/faces portrait enlarged to a phone photo's size (shorter side 2,600, so that its
/// 1/8 is more than the face check's base thumbnail), as a JPEG.
fn phone_sized(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/faces");
    let small = image::open(dir.join(name)).unwrap().into_rgb8();
    let k = 2600.0 / f64::from(small.width().min(small.height()));
    let (w, h) = (
        (f64::from(small.width()) * k) as u32,
        (f64::from(small.height()) * k) as u32,
    );
    let big = resize::rgb(
        &small,
        resize::Region::whole(&small),
        w,
        h,
        resize::Quality::Fast,
    );
    normalize::jpeg(&big, 90)
}

#[test]
fn the_pre_pass_finds_on_the_block_means_the_face_the_stage_finds() {
    // A phone-sized JPEG (shorter side 2,600: its 1/8 is at least the base thumbnail): the
    // duplicate pre-pass decodes only its block means, the stage decodes at half size. Both
    // take the face check's base thumbnail from the same means, so they find the same face, and
    // their face hashes agree within what the hash's own tests allow between sizes.
    // The astronaut's face is small for a portrait: it needs a finer search than the base
    // thumbnail, so the pre-pass decodes it at the detector's size instead.
    for (name, in_base) in [("obama.jpg", true), ("astronaut.jpg", false)] {
        let bytes = phone_sized(name);
        let p = gated();
        let (w, h) = decode::header(&bytes, &p).unwrap().upright_size();
        let header = decode::header(&bytes, &p).unwrap();
        let need = means_size(&header).expect("large enough for the means");
        let means = decode::decode(&bytes, &header, &p, need).unwrap();
        // A decode at 1/8 crops a subsampled direction to an even size.
        let (mw, mh) = means.dimensions();
        assert!(w.div_ceil(8) - mw <= 1 && h.div_ceil(8) - mh <= 1);
        let found = check::find_faces_in_base(&means.pixels, &p);
        assert_eq!(found.is_some(), in_base, "{name}");
        let half = decode::decode(&bytes, &header, &p, (w / 2, h / 2)).unwrap();
        assert!(matches!(
            half.pixels,
            decode::Pixels::Planes { dc: Some(_), .. }
        ));
        let stage = check::find_faces(&half.pixels, &p);
        assert!(!stage.is_empty(), "{name}");
        let scale = f64::from(half.dimensions().0) / f64::from(means.dimensions().0);
        if let Some(found) = found {
            assert_eq!(found.len(), stage.len(), "{name}");
            for (a, b) in found.iter().zip(&stage) {
                // The same box, each rounded to its own image's pixels.
                let near = |x: i64, y: i64| (x as f64 * scale - y as f64).abs() <= scale;
                assert!(
                    near(a.x.into(), b.x.into())
                        && near(a.y.into(), b.y.into())
                        && near(a.width.into(), b.width.into()),
                    "{name}: {a:?} at 1/8 against {b:?} at 1/2"
                );
            }
        }
        let pre_pass = face_hash_of(&bytes, &p).expect("a face");
        let (seen, prepared) = prepare_hashed(&bytes, &p, &defaults()[1..]);
        prepared.unwrap_or_else(|f| panic!("{name}: {f:?}"));
        let FaceSeen::Hashed(staged) = seen else {
            panic!("{name}: the stage hashed no face")
        };
        assert!(
            pre_pass.distance(staged) <= 4,
            "{name}: {} bits between the pre-pass's hash and the stage's",
            pre_pass.distance(staged)
        );
    }
}

#[test]
fn the_face_hash_is_the_same_with_the_gate_on_or_off() {
    // With the gate on, the hash crops the square the gate's own landmark passes found (no
    // passes of its own); off, it runs those passes itself. The hash must not depend on it.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/faces");
    for name in ["obama.jpg", "biden.jpg", "astronaut.jpg", "obama2.jpg"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let hash = |p: &PhotoConfig| match prepare_hashed(&bytes, p, &defaults()[1..]).0 {
            FaceSeen::Hashed(h) => h,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(hash(&gated()), hash(&photos()), "{name}");
    }
}
