//! A fast path for the JPEGs that phones and cameras make: baseline (sequential Huffman),
//! 8-bit, grey or YCbCr with the usual chroma subsampling, decoded straight to 1/2, 1/4 or 1/8
//! of the stored size.
//!
//! Why it exists: a 12-megapixel photo is sent at about a quarter of its pixels, and most of a
//! JPEG decode is then entropy decoding. Decoding at a reduced DCT scale (only the low
//! frequencies of each 8x8 block go through a 4x4, 2x2 or 1x1 inverse DCT) skips most of the
//! rest. jpeg-decoder can scale too, but reads its input byte by byte through `io::Read` and
//! hands every block row to helper threads; this module reads from the slice with a 64-bit
//! bit buffer and table lookups, on the calling thread: about 40 ms of CPU for a 12-megapixel
//! phone photo at half size, against jpeg-decoder's 71. It returns the JPEG's planes, so the
//! colour conversion runs after resizing, on the output's pixels only.
//!
//! Scope is deliberately narrow. Anything else (progressive or arithmetic coding, 12-bit,
//! CMYK/YCCK or RGB JPEGs, several scans, unusual sampling factors, full-size output) is
//! [`Skip::Unsupported`], and so is any damage the fast path notices ([`Skip::Corrupt`]):
//! the caller then decodes the file with jpeg-decoder, whose answer (picture or error message)
//! is final. So this module never has to be right about a broken file, only about good ones,
//! and the tests hold it to jpeg-decoder's output on those.

use image::{GrayImage, RgbImage};
use wide::{f32x4, i32x4};

use super::buffers;

/// Why the fast path declined a file; the caller decodes it the general way instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Skip {
    /// A JPEG feature outside this module's scope.
    Unsupported(&'static str),
    /// Damage or something out of the standard.
    Corrupt(&'static str),
}

type Result<T> = std::result::Result<T, Skip>;

/// Natural (row-major) index of each zigzag position.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// A decoded JPEG, in its stored orientation, as its own planes: colour conversion is left
/// until after resizing, where it costs a quarter as much.
pub(crate) struct Planes {
    /// Luma (JPEG's Y, or the grey samples).
    pub(crate) y: GrayImage,
    /// Cb and Cr, at the JPEG's subsampling: exactly half of `y` in each subsampled direction
    /// (`y` is cropped to an even size there, so the chroma grid stays exact under any
    /// rotation or flip). None for a grey JPEG.
    pub(crate) chroma: Option<[GrayImage; 2]>,
    /// Luma at 1/8 of the stored size (each block's mean, which entropy decoding yields for
    /// free), when `y` is larger than that: a thumbnail that costs nothing to shrink. The same
    /// picture, to the pixel, as `y` of a decode at 1/8.
    pub(crate) dc: Option<GrayImage>,
}

/// Decodes `bytes` at `size`/8 of the stored size (`size` is 1, 2 or 4; rounded up, as
/// jpeg-decoder and libjpeg round). A frame of more than `max_pixels` is refused.
pub(crate) fn decode_scaled(bytes: &[u8], size: usize, max_pixels: u64) -> Result<Planes> {
    if !matches!(size, 1 | 2 | 4) {
        return Err(Skip::Unsupported("only 1/8, 1/4 and 1/2 scales"));
    }
    let mut parser = Parser {
        data: bytes,
        pos: 0,
        max_pixels,
    };
    let frame = parser.headers()?;
    let (planes, dc) = match size {
        1 => decode_scan::<1>(&frame, bytes, parser.pos)?,
        2 => decode_scan::<2>(&frame, bytes, parser.pos)?,
        _ => decode_scan::<4>(&frame, bytes, parser.pos)?,
    };
    let (sx, sy) = (frame.h_max - 1, frame.v_max - 1);
    let cropped = |eighths: usize| {
        let mut width = (frame.width * eighths).div_ceil(8);
        let mut height = (frame.height * eighths).div_ceil(8);
        if sx == 1 && width > 1 {
            width -= width % 2;
        }
        if sy == 1 && height > 1 {
            height -= height % 2;
        }
        (width, height)
    };
    // Cropped as a decode at 1/8 crops its luma: the same picture.
    let dc = dc.map(|plane| {
        let (w, h) = cropped(1);
        crop(plane, w, h)
    });
    let (width, height) = cropped(size);
    let mut planes = planes.into_iter();
    let y = crop(planes.next().expect("one plane a component"), width, height);
    let chroma = match (planes.next(), planes.next()) {
        (Some(cb), Some(cr)) => {
            let (w, h) = (width.div_ceil(1 << sx), height.div_ceil(1 << sy));
            Some([crop(cb, w, h), crop(cr, w, h)])
        }
        _ => None,
    };
    Ok(Planes { y, chroma, dc })
}

/// The top-left `width` x `height` of a plane, cropped in place.
fn crop(plane: Plane, width: usize, height: usize) -> GrayImage {
    let mut pixels = plane.pixels;
    for row in 1..height {
        pixels.copy_within(row * plane.width..row * plane.width + width, row * width);
    }
    pixels.truncate(width * height);
    GrayImage::from_raw(width as u32, height as u32, pixels).expect("the buffer has w*h bytes")
}

/// What the headers up to the first scan say.
struct Frame {
    width: usize,
    height: usize,
    components: Vec<Component>,
    /// Largest horizontal and vertical sampling factors.
    h_max: usize,
    v_max: usize,
    restart_interval: usize,
    dc_tables: [Option<Huffman>; 4],
    ac_tables: [Option<Huffman>; 4],
}

#[derive(Clone)]
struct Component {
    h: usize,
    v: usize,
    /// Quantization table in zigzag order.
    quant: [u16; 64],
    dc_table: usize,
    ac_table: usize,
}

/// A frame header's component: id, horizontal and vertical sampling, quantization table.
type FrameComponent = (u8, usize, usize, usize);

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    /// Frames with more pixels are refused before anything is allocated.
    max_pixels: u64,
}

impl Parser<'_> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or(Skip::Corrupt("the file ends inside its headers"))?;
        self.pos += 1;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from(self.byte()?) << 8 | u16::from(self.byte()?))
    }

    /// The payload of a marker segment (after its length field).
    fn segment(&mut self) -> Result<&[u8]> {
        let len = usize::from(self.u16()?);
        if len < 2 || self.pos + len - 2 > self.data.len() {
            return Err(Skip::Corrupt(
                "a marker segment runs past the end of the file",
            ));
        }
        let start = self.pos;
        self.pos += len - 2;
        Ok(&self.data[start..self.pos])
    }

    /// Reads every marker up to the start of the scan; leaves `pos` on the entropy-coded data.
    fn headers(&mut self) -> Result<Frame> {
        if self.data.get(..2) != Some(&[0xFF, 0xD8]) {
            return Err(Skip::Corrupt("no JPEG start marker"));
        }
        self.pos = 2;
        let mut quant: [Option<[u16; 64]>; 4] = [None; 4];
        let mut dc_tables: [Option<Huffman>; 4] = Default::default();
        let mut ac_tables: [Option<Huffman>; 4] = Default::default();
        let mut restart_interval = 0;
        let mut sof: Option<(usize, usize, Vec<FrameComponent>)> = None;
        let mut adobe_transform: Option<u8> = None;
        let mut jfif = false;
        let max_pixels = self.max_pixels;
        loop {
            if self.byte()? != 0xFF {
                return Err(Skip::Corrupt("expected a marker"));
            }
            let mut marker = self.byte()?;
            while marker == 0xFF {
                marker = self.byte()?;
            }
            match marker {
                // Baseline and extended sequential, Huffman coded.
                0xC0 | 0xC1 => {
                    if sof.is_some() {
                        // The pixel limit was checked on the first frame header.
                        return Err(Skip::Unsupported("several frame headers"));
                    }
                    let s = self.segment()?;
                    if s.len() < 6 {
                        return Err(Skip::Corrupt("short frame header"));
                    }
                    if s[0] != 8 {
                        return Err(Skip::Unsupported("not 8-bit"));
                    }
                    let height = usize::from(u16::from_be_bytes([s[1], s[2]]));
                    let width = usize::from(u16::from_be_bytes([s[3], s[4]]));
                    if height == 0 || width == 0 {
                        return Err(Skip::Unsupported("height given after the scan (DNL)"));
                    }
                    if (width as u64) * (height as u64) > max_pixels {
                        return Err(Skip::Corrupt("more pixels than the limit"));
                    }
                    let n = usize::from(s[5]);
                    if n != 1 && n != 3 {
                        return Err(Skip::Unsupported("neither grey nor three-component"));
                    }
                    if s.len() < 6 + 3 * n {
                        return Err(Skip::Corrupt("short frame header"));
                    }
                    let comps = (0..n)
                        .map(|i| {
                            let c = &s[6 + 3 * i..9 + 3 * i];
                            (
                                c[0],
                                usize::from(c[1] >> 4),
                                usize::from(c[1] & 15),
                                usize::from(c[2]),
                            )
                        })
                        .collect();
                    sof = Some((width, height, comps));
                }
                0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err(Skip::Unsupported(
                        "progressive, lossless or arithmetic coding",
                    ));
                }
                0xC4 => {
                    let mut s = self.segment()?;
                    while !s.is_empty() {
                        let (class, id) = (s[0] >> 4, usize::from(s[0] & 15));
                        if class > 1 || id > 3 || s.len() < 17 {
                            return Err(Skip::Corrupt("bad Huffman table header"));
                        }
                        let counts: [u8; 16] = s[1..17].try_into().expect("16 bytes");
                        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
                        if total > 256 || s.len() < 17 + total {
                            return Err(Skip::Corrupt("bad Huffman table length"));
                        }
                        let table = Huffman::new(&counts, &s[17..17 + total], class == 1)?;
                        if class == 0 {
                            dc_tables[id] = Some(table);
                        } else {
                            ac_tables[id] = Some(table);
                        }
                        s = &s[17 + total..];
                    }
                }
                0xDB => {
                    let mut s = self.segment()?;
                    while !s.is_empty() {
                        let (precision, id) = (s[0] >> 4, usize::from(s[0] & 15));
                        let wide = precision == 1;
                        let len = if wide { 128 } else { 64 };
                        if precision > 1 || id > 3 || s.len() < 1 + len {
                            return Err(Skip::Corrupt("bad quantization table"));
                        }
                        let mut table = [0u16; 64];
                        for (k, q) in table.iter_mut().enumerate() {
                            *q = if wide {
                                u16::from_be_bytes([s[1 + 2 * k], s[2 + 2 * k]])
                            } else {
                                u16::from(s[1 + k])
                            };
                        }
                        quant[id] = Some(table);
                        s = &s[1 + len..];
                    }
                }
                0xDD => {
                    let s = self.segment()?;
                    if s.len() < 2 {
                        return Err(Skip::Corrupt("short restart interval"));
                    }
                    restart_interval = usize::from(u16::from_be_bytes([s[0], s[1]]));
                }
                // Adobe: its transform flag says whether three components are YCbCr.
                0xEE => {
                    let s = self.segment()?;
                    if s.len() >= 12 && s.starts_with(b"Adobe") {
                        adobe_transform = Some(s[11]);
                    }
                }
                0xE0 => {
                    jfif |= self.segment()?.starts_with(b"JFIF\0");
                }
                0xE1..=0xED | 0xEF | 0xFE => {
                    self.segment()?;
                }
                0xDA => {
                    let (width, height, comps) = sof
                        .take()
                        .ok_or(Skip::Corrupt("a scan before the frame header"))?;
                    let s = self.segment()?;
                    return frame(
                        width,
                        height,
                        &comps,
                        &quant,
                        s,
                        ColourSpace {
                            adobe_transform,
                            jfif,
                        },
                        restart_interval,
                        dc_tables,
                        ac_tables,
                    );
                }
                0xD9 => return Err(Skip::Corrupt("the image ends before any scan")),
                _ => return Err(Skip::Unsupported("an unexpected marker")),
            }
        }
    }
}

/// What says how three components are to be read.
struct ColourSpace {
    /// The Adobe marker's transform flag: 0 none (RGB), 1 YCbCr, 2 YCCK.
    adobe_transform: Option<u8>,
    /// A JFIF marker (which means YCbCr).
    jfif: bool,
}

impl ColourSpace {
    /// Whether three components with these ids are YCbCr, decided as jpeg-decoder decides it
    /// (so the fast path never reads as YCbCr what jpeg-decoder reads otherwise).
    fn is_ycbcr(&self, ids: [u8; 3]) -> bool {
        match ids {
            [1, 2, 3] => return true,
            // libjpeg's big-gamut YCC, RGB, big-gamut RGB.
            [1, 34, 35] | [82, 71, 66] | [114, 103, 98] => return false,
            _ => {}
        }
        if self.jfif {
            return true;
        }
        matches!(self.adobe_transform, None | Some(1))
    }
}

#[allow(clippy::too_many_arguments)]
fn frame(
    width: usize,
    height: usize,
    comps: &[FrameComponent],
    quant: &[Option<[u16; 64]>; 4],
    sos: &[u8],
    colour: ColourSpace,
    restart_interval: usize,
    dc_tables: [Option<Huffman>; 4],
    ac_tables: [Option<Huffman>; 4],
) -> Result<Frame> {
    let n = comps.len();
    if n == 3 && !colour.is_ycbcr([comps[0].0, comps[1].0, comps[2].0]) {
        return Err(Skip::Unsupported("three components that are not YCbCr"));
    }
    if sos.is_empty() || usize::from(sos[0]) != n || sos.len() < 1 + 2 * n + 3 {
        return Err(Skip::Unsupported("a scan without every component"));
    }
    let spectral = &sos[1 + 2 * n..];
    if spectral[0] != 0 || spectral[1] != 63 || spectral[2] != 0 {
        return Err(Skip::Unsupported("not a sequential scan"));
    }
    let mut components = Vec::with_capacity(n);
    for (i, &(id, h, v, q)) in comps.iter().enumerate() {
        // The scan must list the frame's components in the frame's order.
        if sos[1 + 2 * i] != id {
            return Err(Skip::Unsupported("scan components out of frame order"));
        }
        let tables = sos[2 + 2 * i];
        let (dc_table, ac_table) = (usize::from(tables >> 4), usize::from(tables & 15));
        if dc_table > 3 || ac_table > 3 || dc_tables[dc_table].is_none() {
            return Err(Skip::Corrupt("a scan uses a missing Huffman table"));
        }
        if ac_tables[ac_table].is_none() {
            return Err(Skip::Corrupt("a scan uses a missing Huffman table"));
        }
        let quant = quant.get(q).copied().flatten().ok_or(Skip::Corrupt(
            "a component uses a missing quantization table",
        ))?;
        components.push(Component {
            h,
            v,
            quant,
            dc_table,
            ac_table,
        });
    }
    let (h_max, v_max) = if n == 1 {
        // A lone component is coded block by block whatever its sampling factors say.
        components[0].h = 1;
        components[0].v = 1;
        (1, 1)
    } else {
        let (y, c) = (&components[0], &components[1..]);
        if !(1..=2).contains(&y.h)
            || !(1..=2).contains(&y.v)
            || c.iter().any(|c| c.h != 1 || c.v != 1)
        {
            return Err(Skip::Unsupported("unusual chroma subsampling"));
        }
        (y.h, y.v)
    };
    Ok(Frame {
        width,
        height,
        components,
        h_max,
        v_max,
        restart_interval,
        dc_tables,
        ac_tables,
    })
}

/// Bits of code looked up in one step.
const LUT_BITS: u32 = 9;

/// Bits looked up in one step for an AC code and the coefficient value after it: wide enough
/// that most coefficients of a noisy high-quality photo decode in one lookup.
const AC_BITS: u32 = 11;

/// A Huffman table: a lookup for codes of up to [`LUT_BITS`] bits, the canonical-code limits
/// for longer ones, and for AC tables a second lookup that also decodes the coefficient when
/// code and value fit in [`LUT_BITS`] together.
#[derive(Clone)]
struct Huffman {
    /// `length << 8 | symbol`; 0 where the code is longer than `LUT_BITS`.
    lut: Box<[u16; 1 << LUT_BITS]>,
    /// `value << 16 | run << 8 | total bits`, indexed by the next [`AC_BITS`] bits; 0 where
    /// there is no shortcut.
    ac_lut: Option<Box<[i32; 1 << AC_BITS]>>,
    /// Largest code of each length (index 1 to 16), -1 if none.
    max_code: [i32; 18],
    /// Added to a code of that length to index `values`.
    offset: [i32; 17],
    values: Vec<u8>,
}

impl Default for Huffman {
    fn default() -> Self {
        Self {
            lut: Box::new([0; 1 << LUT_BITS]),
            ac_lut: None,
            max_code: [-1; 18],
            offset: [0; 17],
            values: Vec::new(),
        }
    }
}

impl Huffman {
    fn new(counts: &[u8; 16], values: &[u8], ac: bool) -> Result<Self> {
        let mut t = Huffman {
            values: values.to_vec(),
            ..Huffman::default()
        };
        let mut code: i32 = 0;
        let mut k: i32 = 0;
        for len in 1..=16u32 {
            let n = i32::from(counts[len as usize - 1]);
            if code + n > 1 << len {
                return Err(Skip::Corrupt("a Huffman table has too many codes"));
            }
            t.offset[len as usize] = k - code;
            for _ in 0..n {
                if len <= LUT_BITS {
                    let shift = LUT_BITS - len;
                    let first = (code as usize) << shift;
                    let entry = (len as u16) << 8 | u16::from(values[k as usize]);
                    for slot in &mut t.lut[first..first + (1 << shift)] {
                        *slot = entry;
                    }
                }
                code += 1;
                k += 1;
            }
            t.max_code[len as usize] = if n > 0 { code - 1 } else { -1 };
            code <<= 1;
        }
        t.max_code[17] = i32::MAX;
        if ac {
            let mut fast = Box::new([0i32; 1 << AC_BITS]);
            for (bits, slot) in fast.iter_mut().enumerate() {
                let entry = t.lut[bits >> (AC_BITS - LUT_BITS)];
                let len = u32::from(entry >> 8);
                if len == 0 {
                    continue;
                }
                let symbol = entry as u8;
                let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
                if size == 0 || len + size > AC_BITS {
                    continue;
                }
                let raw = (bits as u32 >> (AC_BITS - len - size)) & ((1 << size) - 1);
                let value = extend(raw as i32, size);
                *slot = value << 16 | (run << 8 | (len + size)) as i32;
            }
            t.ac_lut = Some(fast);
        }
        Ok(t)
    }
}

/// The JPEG sign extension of a `size`-bit magnitude.
#[inline]
fn extend(raw: i32, size: u32) -> i32 {
    if size == 0 {
        0
    } else if raw < 1 << (size - 1) {
        raw - (1 << size) + 1
    } else {
        raw
    }
}

/// Reads the entropy-coded data: byte stuffing undone, stops (and pads with zeros) at a marker.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    /// Restart markers passed (they count RST0 to RST7 round).
    restarts: u8,
    /// The next bits, most significant first.
    acc: u64,
    count: u32,
    /// Zero bits added after a marker or the end of the data (not part of the scan).
    padding: u32,
    stopped: bool,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            acc: 0,
            count: 0,
            padding: 0,
            stopped: false,
            restarts: 0,
        }
    }

    #[inline]
    fn refill(&mut self) {
        // Fast path: the next 8 bytes hold no 0xFF (no stuffing, no marker), so take as many
        // whole bytes as fit at once.
        if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
            let word = u64::from_be_bytes(chunk.try_into().expect("8 bytes"));
            let inverted = !word;
            let has_ff =
                inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080
                    != 0;
            if !has_ff && !self.stopped {
                let n = (64 - self.count) / 8;
                if n > 0 {
                    self.acc |= (word >> (64 - 8 * n)) << (64 - 8 * n - self.count);
                    self.count += 8 * n;
                    self.pos += n as usize;
                    return;
                }
            }
        }
        while self.count <= 56 {
            let byte = if self.stopped {
                // Past a whole buffer of padding, the scan has certainly overrun: stop adding
                // (a damaged file must not make this count wrap).
                self.padding = (self.padding + 8).min(256);
                0
            } else {
                match self.data.get(self.pos) {
                    // A stuffed 0xFF (0xFF 0x00) is data.
                    Some(&0xFF) if self.data.get(self.pos + 1) == Some(&0) => {
                        self.pos += 2;
                        0xFF
                    }
                    Some(&b) if b != 0xFF => {
                        self.pos += 1;
                        b
                    }
                    // A marker, or the end of the data: zeros from here on.
                    _ => {
                        self.stopped = true;
                        self.padding += 8;
                        0
                    }
                }
            };
            self.acc |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    #[inline]
    fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.count -= n;
    }

    #[inline]
    fn bits(&mut self, n: u32) -> i32 {
        if n == 0 {
            return 0;
        }
        if self.count < n {
            self.refill();
        }
        let v = (self.acc >> (64 - n)) as i32;
        self.consume(n);
        v
    }

    #[inline]
    fn symbol(&mut self, t: &Huffman) -> Result<u8> {
        if self.count < 16 {
            self.refill();
        }
        let entry = t.lut[(self.acc >> (64 - LUT_BITS)) as usize];
        if entry != 0 {
            self.consume(u32::from(entry >> 8));
            return Ok(entry as u8);
        }
        for len in LUT_BITS + 1..=16 {
            let code = (self.acc >> (64 - len)) as i32;
            if code <= t.max_code[len as usize] {
                self.consume(len);
                let i = code + t.offset[len as usize];
                return t
                    .values
                    .get(i as usize)
                    .copied()
                    .ok_or(Skip::Corrupt("a Huffman code outside its table"));
            }
        }
        Err(Skip::Corrupt("an invalid Huffman code"))
    }

    /// Whether the scan so far used bits that were not in the file.
    fn overran(&self) -> bool {
        self.count < self.padding
    }

    /// Whether a whole buffer of padding has been used: the data ended long ago.
    fn exhausted(&self) -> bool {
        self.padding > 64
    }

    /// Skips to after the restart marker expected at this point.
    fn restart(&mut self) -> Result<()> {
        if self.overran() {
            return Err(Skip::Corrupt("the data ends early"));
        }
        self.acc = 0;
        self.count = 0;
        self.padding = 0;
        self.stopped = false;
        while self.data.get(self.pos) == Some(&0xFF) && self.data.get(self.pos + 1) == Some(&0xFF) {
            self.pos += 1;
        }
        let expected = 0xD0 + self.restarts % 8;
        match self.data.get(self.pos..self.pos + 2) {
            Some(&[0xFF, m]) if m == expected => {
                self.pos += 2;
                self.restarts = self.restarts.wrapping_add(1);
                Ok(())
            }
            _ => Err(Skip::Corrupt("a restart marker is missing or out of order")),
        }
    }
}

/// One component decoded at the reduced size, padded to whole blocks.
struct Plane {
    width: usize,
    pixels: Vec<u8>,
}

/// Where each zigzag position's coefficient goes for a scale of `N`x`N` pixels a block: its
/// place in the 4x4 (row-major) input of the inverse DCT, or [`UNUSED`] for the higher
/// frequencies. 128 entries, so that any position a run can reach (up to 78) has one.
const fn slots<const N: usize>() -> [u8; 128] {
    let mut out = [UNUSED; 128];
    let mut k = 0;
    while k < 64 {
        let natural = ZIGZAG[k] as usize;
        let (row, col) = (natural / 8, natural % 8);
        if row < N && col < N {
            out[k] = (row * 4 + col) as u8;
        }
        k += 1;
    }
    out
}

/// The slot of coefficients the inverse DCT does not use.
const UNUSED: u8 = 16;

/// Decodes the scan with `N`x`N` pixels a block (N = 1, 2 or 4); for N > 1, also the first
/// component's block means (one pixel a block).
fn decode_scan<const N: usize>(
    frame: &Frame,
    data: &[u8],
    start: usize,
) -> Result<(Vec<Plane>, Option<Plane>)> {
    let (mcus_x, mcus_y) = (
        frame.width.div_ceil(8 * frame.h_max),
        frame.height.div_ceil(8 * frame.v_max),
    );
    let mut planes: Vec<Plane> = frame
        .components
        .iter()
        .map(|c| {
            let (bw, bh) = (mcus_x * c.h, mcus_y * c.v);
            Plane {
                width: bw * N,
                pixels: buffers::take(bw * N * bh * N),
            }
        })
        .collect();
    let mut dc = (N > 1).then(|| {
        let c = &frame.components[0];
        let (bw, bh) = (mcus_x * c.h, mcus_y * c.v);
        Plane {
            width: bw,
            // Small (a 64th of the luma): not worth a place in the pool.
            pixels: vec![0; bw * bh],
        }
    });
    let slots = const { slots::<N>() };
    let idct = Idct::new(N);
    let mut coefficients = [0i32; 32];
    let mut bits = Bits::new(data, start);
    let mut predictions = [0i32; 3];
    let tables: Vec<Tables<'_>> = frame
        .components
        .iter()
        .map(|c| Tables {
            dc: frame.dc_tables[c.dc_table]
                .as_ref()
                .expect("checked in frame()"),
            ac: frame.ac_tables[c.ac_table]
                .as_ref()
                .expect("checked in frame()"),
            quant: quant_rows(&c.quant),
        })
        .collect();
    let mut put = |bits: &mut Bits<'_>,
                   c: usize,
                   prediction: &mut i32,
                   plane: &mut Plane,
                   bx: usize,
                   by: usize| {
        decode_block(bits, &tables[c], prediction, &slots, &mut coefficients)?;
        let mean = coefficients[0];
        idct.block::<N>(
            &mut coefficients,
            &tables[c].quant,
            &mut plane.pixels,
            plane.width,
            bx * N,
            by * N,
        );
        Ok(mean)
    };
    let dc_step = tables[0].quant[0].as_array()[0] / 8.0;

    // Interleaved MCUs; a lone component has 1x1 sampling (see `frame`), so each of its MCUs
    // is one block, as a non-interleaved scan codes it.
    let mut count = 0usize;
    for my in 0..mcus_y {
        for mx in 0..mcus_x {
            if frame.restart_interval > 0
                && count > 0
                && count.is_multiple_of(frame.restart_interval)
            {
                bits.restart()?;
                predictions = [0; 3];
            }
            for (c, comp) in frame.components.iter().enumerate() {
                for v in 0..comp.v {
                    for h in 0..comp.h {
                        let (bx, by) = (mx * comp.h + h, my * comp.v + v);
                        let mean = put(&mut bits, c, &mut predictions[c], &mut planes[c], bx, by)?;
                        if c == 0
                            && let Some(dc) = dc.as_mut()
                        {
                            dc.pixels[by * dc.width + bx] = pixel(mean as f32 * dc_step);
                        }
                    }
                }
            }
            count += 1;
        }
    }
    if bits.overran() {
        return Err(Skip::Corrupt("the data ends early"));
    }
    Ok((planes, dc))
}

/// A component's tables, looked up once per scan.
struct Tables<'a> {
    dc: &'a Huffman,
    ac: &'a Huffman,
    /// Quantization steps of the 4x4 lowest frequencies, by row.
    quant: [f32x4; 4],
}

/// Decodes one block, putting the (quantized) coefficients the inverse DCT uses into their
/// `slots` of `coefficients` (which the caller has cleared).
#[inline(always)]
fn decode_block(
    bits: &mut Bits<'_>,
    t: &Tables<'_>,
    prediction: &mut i32,
    slots: &[u8; 128],
    coefficients: &mut [i32; 32],
) -> Result<()> {
    let s = u32::from(bits.symbol(t.dc)?);
    if s > 11 {
        return Err(Skip::Corrupt("a DC difference out of range"));
    }
    let diff = extend(bits.bits(s), s);
    *prediction += diff;
    if !(-2048..2048).contains(prediction) {
        return Err(Skip::Corrupt("a DC value out of range"));
    }
    coefficients[0] = *prediction;
    let ac_lut = t.ac.ac_lut.as_deref().expect("AC tables have the shortcut");
    let mut k = 1usize;
    while k < 64 {
        if bits.count < 32 {
            bits.refill();
        }
        let fast = ac_lut[(bits.acc >> (64 - AC_BITS)) as usize];
        let (run, value) = if fast != 0 {
            bits.consume((fast & 0xFF) as u32);
            (((fast >> 8) & 0xFF) as usize, fast >> 16)
        } else {
            let rs = bits.symbol(t.ac)?;
            let (run, size_bits) = (usize::from(rs >> 4), u32::from(rs & 15));
            if size_bits == 0 {
                if run == 15 {
                    k += 16;
                    if k > 64 {
                        return Err(Skip::Corrupt("a zero run past the end of a block"));
                    }
                    continue;
                }
                break;
            }
            if size_bits > 10 {
                return Err(Skip::Corrupt("an AC value out of range"));
            }
            (run, extend(bits.bits(size_bits), size_bits))
        };
        k += run;
        // Unconditional (unused ones go to a spare slot; the masks prove every index in
        // bounds): a branch on whether the value is needed would mispredict.
        coefficients[usize::from(slots[k & 127]) & 31] = value;
        if k > 63 {
            return Err(Skip::Corrupt("a coefficient run past the end of a block"));
        }
        k += 1;
    }
    if bits.exhausted() {
        return Err(Skip::Corrupt("the data ends early"));
    }
    Ok(())
}

/// The quantization steps of the 4x4 lowest frequencies, by row, from a zigzag-order table.
fn quant_rows(zigzag: &[u16; 64]) -> [f32x4; 4] {
    let mut natural = [0u16; 64];
    for (k, &n) in ZIGZAG.iter().enumerate() {
        natural[usize::from(n)] = zigzag[k];
    }
    std::array::from_fn(|row| {
        f32x4::new(std::array::from_fn(|col| f32::from(natural[row * 8 + col])))
    })
}

/// The separable inverse DCT from the `N`x`N` lowest frequencies of a block to `N`x`N`
/// pixels: the 8-point basis functions sampled at `N` points, so a block's mean and its low
/// frequencies are kept (what libjpeg's reduced-size IDCTs compute). As matrices, pixels =
/// A X Aᵀ with `A[i][u]` the weight of frequency `u` at position `i`; both products are done
/// four lanes at a time (a 4x4 for every N; lanes past N are zero).
struct Idct {
    a: [[f32x4; 4]; 4],
}

impl Idct {
    fn new(size: usize) -> Self {
        let b = basis(size);
        // a[i][u], each weight splatted.
        Self {
            a: std::array::from_fn(|i| std::array::from_fn(|u| f32x4::splat(b[u][i]))),
        }
    }

    /// Dequantizes `coefficients` (4x4 row-major, then cleared for the next block) and writes
    /// the block's pixels at (`x`, `y`).
    #[inline(always)]
    fn block<const N: usize>(
        &self,
        coefficients: &mut [i32; 32],
        quant: &[f32x4; 4],
        out: &mut [u8],
        stride: usize,
        x: usize,
        y: usize,
    ) {
        let c: [i32x4; 4] = std::array::from_fn(|r| {
            i32x4::new(coefficients[4 * r..4 * r + 4].try_into().expect("4 lanes"))
        });
        let ac = (c[0] & i32x4::new([0, -1, -1, -1])) | c[1] | c[2] | c[3];
        if ac.to_array() == [0; 4] {
            // Only the mean: one level.
            let level = pixel(coefficients[0] as f32 * quant[0].as_array()[0] / 8.0);
            for row in 0..N {
                out[(y + row) * stride + x..][..N].fill(level);
            }
            coefficients[0] = 0;
            return;
        }
        let rows: [f32x4; 4] = std::array::from_fn(|r| f32x4::from_i32x4(c[r]) * quant[r]);
        coefficients[..16].fill(0);
        // Y = A X, then Pᵀ = A Yᵀ.
        let mul = |m: &[f32x4; 4]| -> [f32x4; 4] {
            std::array::from_fn(|i| {
                let mut sum = self.a[i][0] * m[0];
                // An index loop over the constant N unrolls; iterator adapters here did not
                // inline and cost more than the arithmetic.
                #[allow(clippy::needless_range_loop)]
                for v in 1..N {
                    sum += self.a[i][v] * m[v];
                }
                sum
            })
        };
        let y_rows = mul(&rows);
        let pixels = f32x4::transpose(mul(&f32x4::transpose(y_rows)));
        let (lo, hi) = (f32x4::splat(0.0), f32x4::splat(255.0));
        for (j, row) in pixels.iter().enumerate().take(N) {
            let levels = (*row + f32x4::splat(128.0))
                .max(lo)
                .min(hi)
                .round_int()
                .to_array();
            let dst = &mut out[(y + j) * stride + x..][..N];
            for (px, &l) in dst.iter_mut().zip(&levels) {
                *px = l as u8;
            }
        }
    }
}

fn basis(size: usize) -> [[f32; 4]; 4] {
    let mut b = [[0f32; 4]; 4];
    for (u, row) in b.iter_mut().enumerate().take(size) {
        for (i, w) in row.iter_mut().enumerate().take(size) {
            let c = if u == 0 {
                std::f64::consts::FRAC_1_SQRT_2
            } else {
                1.0
            };
            let angle = (2 * i + 1) as f64 * u as f64 * std::f64::consts::PI / (2 * size) as f64;
            *w = (c / 2.0 * angle.cos()) as f32;
        }
    }
    b
}

/// A level-shifted IDCT output as a pixel.
#[inline]
fn pixel(v: f32) -> u8 {
    (v + 128.5).clamp(0.0, 255.0) as u8
}

/// JFIF's YCbCr to RGB terms for each chroma value, in 16.16 fixed point, rounded; and the
/// clamp to 0..=255 as a table (indexed by level + 256, masked to its size).
struct Colour {
    cr_red: [i32; 256],
    cb_blue: [i32; 256],
    green: [[i32; 2]; 256],
    clamp: [u8; 1024],
}

static COLOUR: std::sync::LazyLock<Colour> = std::sync::LazyLock::new(|| {
    let term = |k: i32, c: usize| (k * (c as i32 - 128) + 32_768) >> 16;
    Colour {
        cr_red: std::array::from_fn(|c| term(91_881, c)),
        cb_blue: std::array::from_fn(|c| term(116_130, c)),
        // Cb's and Cr's parts of green, summed before rounding.
        green: std::array::from_fn(|c| [-22_554 * (c as i32 - 128), -46_802 * (c as i32 - 128)]),
        clamp: std::array::from_fn(|i| (i as i32 - 256).clamp(0, 255) as u8),
    }
});

/// RGB from same-size Y, Cb and Cr planes (JFIF's conversion, 16.16 fixed point, rounded).
pub(crate) fn ycbcr_to_rgb(y: &GrayImage, cb: &GrayImage, cr: &GrayImage) -> RgbImage {
    let t = &*COLOUR;
    let mut out = buffers::take(y.as_raw().len() * 3);
    for (((p, &l), &b), &r) in out
        .chunks_exact_mut(3)
        .zip(y.as_raw())
        .zip(cb.as_raw())
        .zip(cr.as_raw())
    {
        let red = t.cr_red[usize::from(r)];
        let blue = t.cb_blue[usize::from(b)];
        let green = (t.green[usize::from(b)][0] + t.green[usize::from(r)][1] + 32_768) >> 16;
        let l = i32::from(l) + 256;
        p[0] = t.clamp[((l + red) & 1023) as usize];
        p[1] = t.clamp[((l + green) & 1023) as usize];
        p[2] = t.clamp[((l + blue) & 1023) as usize];
    }
    RgbImage::from_raw(y.width(), y.height(), out).expect("the buffer has w*h*3 bytes")
}

#[cfg(test)]
mod tests;
