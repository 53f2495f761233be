"""The independent reference decoder for src/photo/tests/reference.rs (Pillow: libjpeg-turbo,
libpng, libwebp, libtiff, its own BMP and GIF readers; none of the Rust decoders facesync uses).

    python3 tests/reference/pillow_decode.py --check       exits 0 when Pillow can be imported
    python3 tests/reference/pillow_decode.py FILE...

Each FILE is decoded as facesync means to: EXIF orientation applied, the first frame only,
alpha flattened onto white, 16-bit scaled to 8, CMYK to RGB; the result goes to FILE.rgb
("<width> <height>\\n" then the RGB bytes, row by row), or, when Pillow cannot read the file,
the reason to FILE.err. When FILE.draft exists ("<eighths> <width> <height>": the DCT scale
and the stored size facesync decodes a JPEG at), libjpeg decodes at that scale and the
picture is cut to that size, as facesync does.
"""
import os
import sys

if sys.argv[1:] == ["--check"]:
    import PIL  # noqa: F401

    sys.exit(0)

from PIL import Image, ImageOps


def upright_rgb(path):
    with Image.open(path) as im:
        if os.path.exists(path + ".draft"):
            with open(path + ".draft") as f:
                eighths, width, height = (int(v) for v in f.read().split())
            # Pillow picks the DCT scale from min(stored // requested) over both sides.
            scale = 8 // eighths
            im.draft(None, (im.width // scale, im.height // scale))
            im.load()
            if not (0 <= im.width - width <= 1 and 0 <= im.height - height <= 1):
                raise ValueError(f"libjpeg decoded {im.size} for facesync's {width}x{height}")
            # facesync's fast path drops an odd last row or column of a subsampled JPEG, so
            # its chroma is exactly half; the same crop, before the orientation, as there.
            im = im.crop((0, 0, width, height))
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode.startswith("I;16") or im.mode == "I":
            # Pillow's convert clips 16-bit grey to 255; facesync scales it.
            im = im.convert("I").point(lambda v: v * (1 / 257)).convert("L")
        if im.mode in ("P", "PA", "LA", "La", "RGBa") or "transparency" in im.info:
            im = im.convert("RGBA")
        if im.mode == "RGBA":
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, im)
        return im.convert("RGB")


for path in sys.argv[1:]:
    try:
        im = upright_rgb(path)
    except Exception as e:  # every failure is an answer: the reference cannot read the file
        with open(path + ".err", "w") as out:
            out.write(f"{type(e).__name__}: {e}")
        continue
    with open(path + ".rgb", "wb") as out:
        out.write(f"{im.width} {im.height}\n".encode())
        out.write(im.tobytes())
