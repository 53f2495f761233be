//! Benchmark of the photo pipeline on generated 12-megapixel phone-like JPEGs (3024x4032,
//! about 2.5 MB at quality 90, noise added so they compress like real photos), against a
//! Pillow baseline (benches/pillow_baseline.py) on the same files and output size.
//!
//! Run: `cargo bench --bench photos`. The photos are generated once into
//! `target/bench-photos/` (never committed). Counts: `FACESYNC_BENCH_PHOTOS` (photos per
//! throughput run, default 200) and `FACESYNC_BENCH_MEMORY` (photos for the peak-memory run,
//! default 1000) and `FACESYNC_BENCH_ROUNDS` (alternating facesync/Pillow rounds, default 3).
//! Peak memory is measured in a child process (this binary with `--memory N`) so that
//! generating the photos does not count. `--steps` runs only the one-thread step timings,
//! `--labelled` only the quality gate's labelled set (its detection rates) and `--whole`
//! only the first all-cores run (what to point a profiler at). `--duplicates` runs only the
//! duplicate check's figures (the face hash alone, the 100,000-person comparison, the labelled
//! set's detection rate), which every run prints first. `--pillow` runs only the alternating
//! rounds against Pillow.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use facesync::config::{Config, OutputFormat, PhotoConfig, Profile, QualityGate};
use facesync::photo::labelled::{self, Damage};
use facesync::photo::{self, PhotoStage, StageTimes};
use fast_image_resize as fr;
use futures::StreamExt as _;
use image::RgbImage;

const WIDTH: u32 = 3024;
const HEIGHT: u32 = 4032;
/// Distinct generated photos; the runs cycle through them (the page cache keeps reading cheap).
const DISTINCT: usize = 8;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--memory") {
        let n = args[i + 1].parse().expect("--memory N");
        memory_child(&photo_dir(), n);
        return;
    }
    let count = env_count("FACESYNC_BENCH_PHOTOS", 200);
    let memory_count = env_count("FACESYNC_BENCH_MEMORY", 1000);
    let dir = photo_dir();
    let files = ensure_photos(&dir);
    let mean_size = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum::<u64>()
        / files.len() as u64;
    println!("machine: {} cores, {}", cores(), cpu_model());
    println!("load average at start: {}", load_average());
    println!(
        "input: {DISTINCT} generated {WIDTH}x{HEIGHT} JPEGs, quality 90, {:.2} MB on average, in {}",
        mean_size as f64 / 1e6,
        dir.display()
    );
    if args.iter().any(|a| a == "--labelled") {
        labelled_set();
        return;
    }
    let vzi = vec![("vzicloud".to_string(), profile(1920, 1080, 1_572_864))];
    let both = vec![
        ("feishu".to_string(), profile(1080, 1440, 1_048_576)),
        vzi[0].clone(),
    ];

    let pillow_only = args.iter().any(|a| a == "--pillow");
    if !pillow_only {
        duplicates(&files, count.min(40));
    }
    if args.iter().any(|a| a == "--duplicates") {
        return;
    }
    println!(
        "\n== steps, one stage thread (VziCloud profile: 810x1080 out), {} photos, wall time ==",
        count.min(40)
    );
    if !args.iter().any(|a| a == "--whole") && !pillow_only {
        println!("-- quality gate on (the default) --");
        steps(&files, count.min(40), &vzi, &photos());
        println!("-- quality gate off --");
        let mut off = photos();
        off.quality = QualityGate::Off;
        steps(&files, count.min(40), &vzi, &off);
    }
    if args.iter().any(|a| a == "--steps") {
        // Only the one-thread step run: what a profiler (perf record) should look at.
        return;
    }
    if !args.iter().any(|a| a == "--whole") && !pillow_only {
        labelled_set();
    }

    println!("\n== whole pipeline, all cores (PhotoStage), {count} photos ==");
    let mut no_face = photos();
    no_face.face_check = false;
    let mut no_gate = photos();
    no_gate.quality = QualityGate::Off;
    let runs = [
        ("810x1080 (vzicloud), face check on", photos(), &vzi),
        ("810x1080, face check on, gate off", no_gate, &vzi),
        ("810x1080 (vzicloud), face check off", no_face.clone(), &vzi),
        ("both default targets, face check on", photos(), &both),
        ("both default targets, face check off", no_face, &both),
    ];
    let only_first = args.iter().any(|a| a == "--whole");
    for (name, p, profiles) in runs.into_iter().filter(|_| !pillow_only) {
        let (rate, cpu) = whole(&files, count, p, profiles);
        println!(
            "{name:<40} {rate:6.1} photos/s measured   {cpu:5.1} ms CPU a photo = {:5.1} photos/s on {} idle cores",
            cores() as f64 * 1000.0 / cpu,
            cores()
        );
        if only_first {
            // Only the first whole run (with --whole): what a profiler should look at.
            return;
        }
    }

    if !pillow_only {
        println!("\n== peak memory, {memory_count} photos, both targets, face check on ==");
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--memory", &memory_count.to_string()])
            .output()
            .expect("the bench re-runs itself");
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }

    println!(
        "\n== Pillow baseline (benches/pillow_baseline.py): draft decode, same output size, both cores =="
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pillow_baseline.py");
    let pillow = |filter: &str, throughput_only: bool| -> Option<f64> {
        let mut command = Command::new("python3");
        command.arg(&script).arg(&dir).args([
            "--count",
            &count.to_string(),
            "--box",
            "1920x1080",
            "--filter",
            filter,
        ]);
        if throughput_only {
            command.arg("--throughput-only");
        }
        let out = command.output().ok().filter(|o| o.status.success())?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !throughput_only {
            for line in text.lines().filter(|l| !l.starts_with("cpu_ms_per_photo=")) {
                println!("{line}");
            }
        }
        text.lines()
            .find_map(|l| l.strip_prefix("cpu_ms_per_photo="))
            .and_then(|v| v.parse().ok())
    };
    if pillow("bilinear", false).is_none() {
        println!("(the Pillow baseline did not run: needs python3 with Pillow)");
        return;
    }

    // The machine is shared: its speed drifts by 10% or more over minutes. So facesync and
    // Pillow run in alternating rounds and the medians are compared.
    let rounds = env_count("FACESYNC_BENCH_ROUNDS", 3);
    println!(
        "\n== facesync (810x1080, face check on) against Pillow (no face check), {rounds} alternating rounds of {count} photos, CPU ms a photo =="
    );
    let filters = ["bilinear", "bicubic", "lanczos"];
    let mut ours = Vec::new();
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); filters.len()];
    for round in 1..=rounds {
        let (_, cpu) = whole(&files, count, photos(), &vzi);
        ours.push(cpu);
        let mut line = format!("round {round}: facesync {cpu:5.1}");
        for (i, filter) in filters.iter().enumerate() {
            if let Some(ms) = pillow(filter, true) {
                theirs[i].push(ms);
                line += &format!("   pillow {filter} {ms:5.1}");
            }
        }
        println!("{line}");
    }
    let ours = median(&mut ours);
    let rate = |ms: f64| cores() as f64 * 1000.0 / ms;
    println!(
        "median: facesync with the face check {ours:5.1} ms = {:5.1} photos/s on {} idle cores",
        rate(ours),
        cores()
    );
    for (filter, mut ms) in filters.iter().zip(theirs) {
        if ms.is_empty() {
            continue;
        }
        let ms = median(&mut ms);
        println!(
            "median: Pillow {filter:<8} (no face check) {ms:5.1} ms = {:5.1} photos/s: facesync does {:.2}x its photos a second",
            rate(ms),
            ms / ours
        );
    }
    println!("\nload average at end: {}", load_average());
}

/// The quality gate's detection rates on its labelled set (the one its tests hold it to, see
/// `facesync::photo::labelled`): every portrait in fixtures/faces as it is, and one copy of
/// each with each damage, through `prepare` with the defaults and three targets' profiles.
fn labelled_set() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/faces");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    names.sort();
    let p = photos();
    let mut lobby = profile(720, 960, 200_000);
    lobby.min_short_side = 400;
    let targets = vec![
        ("feishu".to_string(), profile(1080, 1440, 1_048_576)),
        ("vzicloud".to_string(), profile(1920, 1080, 1_572_864)),
        ("lobby".to_string(), lobby),
    ];
    println!(
        "\n== quality gate, labelled set: {} portraits of fixtures/faces and a damaged copy of each, defaults, 3 targets; CPU ms a photo, whole prepare() ==",
        names.len()
    );
    let originals: Vec<RgbImage> = names
        .iter()
        .map(|n| image::open(n).unwrap().into_rgb8())
        .collect();
    // CPU time is counted in ticks of 10 ms: each set is timed over a few runs.
    const RUNS: usize = 5;
    let cost = |files: &[Vec<u8>]| {
        let started = process_cpu();
        for _ in 0..RUNS {
            for bytes in files {
                let _ = photo::prepare(bytes, &p, &targets);
            }
        }
        (process_cpu() - started) * 1000.0 / (RUNS * files.len()) as f64
    };
    let files: Vec<Vec<u8>> = originals.iter().map(labelled::jpeg).collect();
    let passed = files
        .iter()
        .filter(|bytes| photo::prepare(bytes, &p, &targets).is_ok())
        .count();
    let ms = cost(&files);
    println!(
        "{:<12} {passed} of {} passed{:<28} {ms:5.1} ms CPU a photo",
        "originals",
        originals.len(),
        ""
    );
    for damage in Damage::ALL {
        let copies: Vec<Vec<u8>> = originals
            .iter()
            .map(|o| labelled::jpeg(&damage.apply(o, &p)))
            .collect();
        let (mut right, mut wrong, mut passed) = (0, Vec::new(), 0);
        for bytes in &copies {
            match photo::prepare(bytes, &p, &targets) {
                Ok(_) => passed += 1,
                Err(f) if f.code == damage.expected() => right += 1,
                Err(f) => wrong.push(f.code.to_string()),
            }
        }
        let ms = cost(&copies);
        let refused = format!(
            "{right} of {} refused as {}",
            copies.len(),
            damage.expected()
        );
        println!(
            "{:<12} {refused:<40} {ms:5.1} ms CPU a photo{}{}",
            format!("{damage:?}").to_lowercase(),
            if wrong.is_empty() {
                String::new()
            } else {
                format!("; other reasons: {}", wrong.join(", "))
            },
            if passed == 0 {
                String::new()
            } else {
                format!("; {passed} passed")
            },
        );
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn photos() -> PhotoConfig {
    Config::parse("[roster]\npath = \"r.csv\"\n", Path::new("/x/config.toml"))
        .unwrap()
        .photos
}

fn profile(max_width: u32, max_height: u32, max_bytes: u64) -> Profile {
    Profile {
        format: OutputFormat::Jpeg,
        max_width,
        max_height,
        max_bytes,
        min_quality: 60,
        min_short_side: 0,
        requirements: facesync::config::Requirements::DEFAULT,
    }
}

fn photo_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-photos")
}

/// Phone-like photos: a real portrait filling the frame, with sensor-like noise.
fn ensure_photos(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let files: Vec<PathBuf> = (0..DISTINCT)
        .map(|i| dir.join(format!("phone-{i}.jpg")))
        .collect();
    if files.iter().all(|f| f.exists()) {
        return files;
    }
    let face_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/photos/E1001.jpg");
    let face = image::open(&face_path).unwrap().into_rgb8();
    // The largest 3:4 part of the portrait, stretched to the phone's frame.
    let crop_w = (face.height() * 3 / 4).min(face.width());
    let src = fr::images::ImageRef::new(
        face.width(),
        face.height(),
        face.as_raw(),
        fr::PixelType::U8x3,
    )
    .unwrap();
    let mut big = fr::images::Image::new(WIDTH, HEIGHT, fr::PixelType::U8x3);
    fr::Resizer::new()
        .resize(
            &src,
            &mut big,
            &fr::ResizeOptions::new()
                .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::CatmullRom))
                .crop(
                    f64::from((face.width() - crop_w) / 2),
                    0.0,
                    f64::from(crop_w),
                    f64::from(face.height()),
                ),
        )
        .unwrap();
    let clean = big.into_vec();
    for (i, path) in files.iter().enumerate() {
        let mut pixels = clean.clone();
        let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ (i as u64 + 1);
        for p in &mut pixels {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state % 17) as i32 - 8;
            *p = (i32::from(*p) + noise).clamp(0, 255) as u8;
        }
        let image = RgbImage::from_raw(WIDTH, HEIGHT, pixels).unwrap();
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
        encoder
            .encode(
                image.as_raw(),
                WIDTH as u16,
                HEIGHT as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .unwrap();
        std::fs::write(path, out).unwrap();
    }
    files
}

/// The duplicate check (`duplicate_photo`): what `sync`'s pre-pass costs a photo it has no face
/// hash for, what comparing 100,000 people costs, and the labelled set's detection rate.
fn duplicates(files: &[PathBuf], n: usize) {
    println!("\n== duplicate photos ==");
    let p = photos();
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    photo::face_hash_of(&bytes[0], &p).expect("the generated photos have a face");
    let cpu_before = process_cpu();
    let started = Instant::now();
    for i in 0..n {
        photo::face_hash_of(&bytes[i % bytes.len()], &p).expect("a face");
    }
    let (ms, rate) = per_photo(started.elapsed(), n);
    let cpu = (process_cpu() - cpu_before) * 1000.0 / n as f64;
    println!(
        "{:<40} {ms:6.1} ms   {rate:6.1} photos/s   {cpu:5.1} ms CPU a photo",
        "face hash alone (sync's pre-pass)"
    );

    // What the pre-pass gives back: the photo stage takes its faces instead of searching.
    let hints: Vec<_> = bytes
        .iter()
        .map(|b| photo::face_hash_hinted(b, &p).1)
        .collect();
    let profiles = vec![("vzicloud".to_string(), profile(1920, 1080, 1_572_864))];
    for (what, hinted) in [
        ("photo stage, searching", false),
        ("photo stage, the pre-pass's faces", true),
    ] {
        let cpu_before = process_cpu();
        for i in 0..n {
            let k = i % bytes.len();
            let hint = hints[k].as_ref().filter(|_| hinted);
            photo::prepare_hinted(&bytes[k], &p, &profiles, hint)
                .1
                .expect("prepared");
        }
        let cpu = (process_cpu() - cpu_before) * 1000.0 / n as f64;
        println!("{what:<40} {cpu:5.1} ms CPU a photo (810x1080)");
    }

    // 100,000 random hashes, 200 of them copies: the multi-index's time.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut hashes: Vec<photo::FaceHash> = (0..100_000).map(|_| photo::FaceHash(next())).collect();
    for k in 0..200 {
        let flipped = hashes[k * 97].0 ^ (1 << (next() % 64)) ^ (1 << (next() % 64));
        hashes.push(photo::FaceHash(flipped));
    }
    let started = Instant::now();
    let pairs = facesync::plan::duplicates::near_pairs(&hashes);
    println!(
        "{:<40} {:6.1} ms   {} pairs found",
        "compare 100,200 face hashes",
        started.elapsed().as_secs_f64() * 1000.0,
        pairs.len()
    );

    // The labelled set: each portrait of fixtures/faces and copies of it (re-saved, halved,
    // brighter, trimmed, as PNG) must match; photos of different portraits must not.
    let faces = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/faces");
    let mut labelled: Vec<(usize, photo::FaceHash)> = Vec::new();
    let mut copies_total = 0;
    let mut caught = 0;
    for (k, name) in ["astronaut", "obama", "obama2", "biden"].iter().enumerate() {
        let original = std::fs::read(faces.join(format!("{name}.jpg"))).unwrap();
        let hash = photo::face_hash_of(&original, &p).expect("a portrait has a face");
        labelled.push((k, hash));
        for copy in copies_of(&original) {
            copies_total += 1;
            if let Some(h) = photo::face_hash_of(&copy, &p) {
                caught += usize::from(h.same_photo(hash));
                labelled.push((k, h));
            }
        }
    }
    let (mut different, mut false_matches) = (0, 0);
    for (i, (a, ha)) in labelled.iter().enumerate() {
        for (b, hb) in &labelled[i + 1..] {
            if a != b {
                different += 1;
                false_matches += usize::from(ha.same_photo(*hb));
            }
        }
    }
    println!(
        "duplicate_photo: {caught}/{copies_total} pairs caught, {false_matches}/{different} false (labelled set: fixtures/faces and copies)"
    );
}

/// A photo's copies as an HR folder may hold them.
fn copies_of(bytes: &[u8]) -> Vec<Vec<u8>> {
    let image = image::load_from_memory(bytes).unwrap().into_rgb8();
    let (w, h) = image.dimensions();
    let jpeg = |image: &RgbImage, quality: u8| {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(image)
            .unwrap();
        out
    };
    let half = image::imageops::resize(&image, w / 2, h / 2, image::imageops::FilterType::Triangle);
    let mut brighter = image.clone();
    for px in brighter.pixels_mut() {
        for c in px.0.iter_mut() {
            *c = (f32::from(*c) * 1.1).round().min(255.0) as u8;
        }
    }
    let trimmed = image::imageops::crop_imm(&image, 6, 4, w - 10, h - 8).to_image();
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png).unwrap();
    vec![
        jpeg(&image, 30),
        jpeg(&half, 90),
        jpeg(&brighter, 90),
        jpeg(&trimmed, 90),
        png.into_inner(),
    ]
}

fn per_photo(d: Duration, n: usize) -> (f64, f64) {
    let ms = d.as_secs_f64() * 1000.0 / n as f64;
    (ms, 1000.0 / ms)
}

/// Each step's time on one thread, as `prepare` spends it.
fn steps(files: &[PathBuf], n: usize, profiles: &[(String, Profile)], p: &PhotoConfig) {
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    // One warm-up photo: the face model is loaded on first use.
    photo::prepare(&bytes[0], p, profiles).unwrap();
    let mut times = StageTimes::default();
    let cpu_before = process_cpu();
    let started = Instant::now();
    for i in 0..n {
        let out = photo::prepare_timed(&bytes[i % bytes.len()], p, profiles, &mut times)
            .unwrap_or_else(|f| panic!("a generated photo failed: {f}"));
        assert_eq!((out[0].width, out[0].height), (810, 1080));
    }
    let whole = started.elapsed();
    let cpu = (process_cpu() - cpu_before) * 1000.0 / n as f64;
    for (name, d) in [
        ("decode (DCT-scaled to 1512x2016)", times.decode),
        ("face check", times.face_check),
        ("quality gate (landmarks, measures)", times.quality),
        ("resize (Lanczos3 to 810x1080)", times.resize),
        ("encode (JPEG, quality search)", times.encode),
        ("whole prepare()", whole),
    ] {
        let (ms, rate) = per_photo(d, n);
        println!("{name:<40} {ms:6.1} ms   {rate:6.1} photos/s");
    }
    // jpeg-decoder runs its IDCT on helper threads: the CPU time is more than the wall time.
    println!(
        "{:<40} {cpu:6.1} ms CPU a photo, helper threads included",
        ""
    );
}

/// Photos a second through the stage on every core, and CPU milliseconds a photo.
fn whole(
    files: &[PathBuf],
    n: usize,
    p: PhotoConfig,
    profiles: &[(String, Profile)],
) -> (f64, f64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let stage = PhotoStage::new(p);
    let cpu_before = process_cpu();
    let started = Instant::now();
    runtime.block_on(async {
        let jobs = (0..n).map(|i| {
            let stage = stage.clone();
            let path = files[i % files.len()].clone();
            let profiles = profiles.to_vec();
            async move { stage.prepare_file(path, profiles).await }
        });
        let mut results = futures::stream::iter(jobs).buffer_unordered(cores() * 2);
        while let Some(r) = results.next().await {
            r.unwrap_or_else(|f| panic!("a generated photo failed: {f}"));
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu_before;
    (n as f64 / wall, cpu * 1000.0 / n as f64)
}

/// The child of the peak-memory run: only the pipeline, nothing generated.
fn memory_child(dir: &Path, n: usize) {
    let files: Vec<PathBuf> = (0..DISTINCT)
        .map(|i| dir.join(format!("phone-{i}.jpg")))
        .collect();
    let both = vec![
        ("feishu".to_string(), profile(1080, 1440, 1_048_576)),
        ("vzicloud".to_string(), profile(1920, 1080, 1_572_864)),
    ];
    let started = Instant::now();
    let (rate, _) = whole(&files, n, photos(), &both);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: unknown");
    println!(
        "{n} photos in {:.0} s ({rate:.1} photos/s); peak resident memory (VmHWM): {}",
        started.elapsed().as_secs_f64(),
        peak.trim_start_matches("VmHWM:").trim()
    );
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// User + system CPU seconds of this process so far (Linux; clock ticks of 1/100 s).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
