"""Pillow baseline for `cargo bench --bench photos`: the same photos, the same output size, on
every core, with Pillow's fastest path for big JPEGs (draft mode: libjpeg-turbo decodes at a
reduced DCT scale). No face check.

Usage: python3 benches/pillow_baseline.py DIR [--count N] [--box 1920x1080] [--filter bilinear]
       [--throughput-only]

The last line printed is always `cpu_ms_per_photo=X` (for the Rust bench to read).
"""
import argparse
import io
import multiprocessing
import os
import resource
import time
from pathlib import Path

from PIL import Image

# Bicubic is Pillow's default for resize().
FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}


def fit(w, h, mw, mh):
    """Largest size of w x h's aspect inside mw x mh, never larger (as facesync's `fit`)."""
    k = min(mw / w, mh / h, 1.0)
    if k >= 1.0:
        return w, h
    return max(1, min(mw, round(w * k))), max(1, min(mh, round(h * k)))


def work(job):
    path, box, resample = job
    steps = [0.0, 0.0, 0.0]
    t = time.perf_counter()
    img = Image.open(path)
    size = fit(*img.size, *box)
    img.draft("RGB", size)
    img = img.convert("RGB")
    steps[0] = time.perf_counter() - t
    t = time.perf_counter()
    img = img.resize(size, resample)
    steps[1] = time.perf_counter() - t
    t = time.perf_counter()
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    steps[2] = time.perf_counter() - t
    return steps, len(out.getvalue()), img.size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--box", default="1920x1080")
    ap.add_argument("--filter", default="bilinear", choices=FILTERS)
    ap.add_argument("--throughput-only", action="store_true")
    args = ap.parse_args()
    box = tuple(int(v) for v in args.box.split("x"))
    files = sorted(str(p) for p in Path(args.dir).glob("*.jpg"))
    jobs = [(files[i % len(files)], box, FILTERS[args.filter]) for i in range(args.count)]

    # Steps, one process.
    if not args.throughput_only:
        n = min(40, args.count)
        work(jobs[0])
        totals = [0.0, 0.0, 0.0]
        for job in jobs[:n]:
            steps, _, size = work(job)
            totals = [a + b for a, b in zip(totals, steps)]
        parts = ", ".join(
            f"{name} {1000 * t / n:.1f} ms"
            for name, t in zip(("draft decode", f"resize ({args.filter})", "encode"), totals)
        )
        print(
            f"pillow, one core, {size[0]}x{size[1]}: {parts}; {1000 * sum(totals) / n:.1f} ms a photo"
        )

    # Throughput, every core.
    cores = os.cpu_count() or 1
    t = time.perf_counter()
    with multiprocessing.Pool(cores) as pool:
        for _ in pool.imap_unordered(work, jobs, chunksize=4):
            pass
    wall = time.perf_counter() - t
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = children.ru_utime + children.ru_stime
    per_photo = 1000 * cpu / args.count
    print(
        f"pillow {args.filter:<8} all {cores} cores: {args.count / wall:6.1f} photos/s measured   "
        f"{per_photo:5.1f} ms CPU a photo = {cores * 1000 / per_photo:5.1f} photos/s on {cores} idle cores"
    )
    print(f"cpu_ms_per_photo={per_photo:.2f}")


if __name__ == "__main__":
    main()
