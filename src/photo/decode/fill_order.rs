//! TIFF `FillOrder` 2: the bits of every byte stored lowest first, as some scanner and fax
//! software writes them. The `tiff` crate ignores the tag and would decode such a file as noise,
//! so the strips (or tiles) are bit-reversed into a copy first, where libtiff would reverse
//! them: the raw bytes of an uncompressed, LZW, Deflate or PackBits image. Other compressions
//! with FillOrder 2 are refused, never decoded as they stand.

use std::io::Cursor;

use tiff::decoder::Decoder;
use tiff::tags::Tag;

use super::{corrupt, unsupported};
use crate::reason::Finding;

/// None, LZW, Adobe Deflate, Deflate, PackBits: the codecs whose input libtiff bit-reverses.
const REVERSED_BEFORE_DECOMPRESSION: [u16; 5] = [1, 5, 8, 32946, 32773];

/// The file with its image data in the ordinary bit order, or `None` when it is in that order
/// already (FillOrder absent or 1).
pub(super) fn normalize(bytes: &[u8]) -> Result<Option<Vec<u8>>, Finding> {
    let damaged = |e: tiff::TiffError| corrupt(format!("cannot read the TIFF's header: {e}"));
    let mut decoder = Decoder::new(Cursor::new(bytes)).map_err(damaged)?;
    let tag = |decoder: &mut Decoder<_>, tag| -> Result<Option<u16>, Finding> {
        decoder
            .find_tag(tag)
            .map_err(damaged)?
            .map(|v| v.into_u16().map_err(damaged))
            .transpose()
    };
    match tag(&mut decoder, Tag::FillOrder)? {
        None | Some(1) => return Ok(None),
        Some(2) => {}
        Some(other) => {
            return Err(corrupt(format!(
                "the TIFF's FillOrder is {other}; only 1 and 2 exist: re-save it as JPEG or PNG"
            )));
        }
    }
    let compression = tag(&mut decoder, Tag::Compression)?.unwrap_or(1);
    if !REVERSED_BEFORE_DECOMPRESSION.contains(&compression) {
        return Err(unsupported(format!(
            "this TIFF stores its bits in reverse order (FillOrder 2) with compression {compression}, which facesync cannot read: re-save it as JPEG or PNG"
        )));
    }
    let (offsets, counts) = if decoder
        .find_tag(Tag::StripOffsets)
        .map_err(damaged)?
        .is_some()
    {
        (Tag::StripOffsets, Tag::StripByteCounts)
    } else {
        (Tag::TileOffsets, Tag::TileByteCounts)
    };
    let offsets = decoder.get_tag_u64_vec(offsets).map_err(damaged)?;
    let counts = decoder.get_tag_u64_vec(counts).map_err(damaged)?;
    if offsets.len() != counts.len() {
        return Err(corrupt(format!(
            "the TIFF lists {} image data offsets but {} lengths",
            offsets.len(),
            counts.len()
        )));
    }
    let mut ranges = Vec::with_capacity(offsets.len());
    for (&at, &len) in offsets.iter().zip(&counts) {
        let end = at.checked_add(len).filter(|&end| end <= bytes.len() as u64);
        let Some(end) = end else {
            return Err(corrupt(format!(
                "the TIFF's image data ({len} bytes at {at}) runs past the end of the file ({} bytes)",
                bytes.len()
            )));
        };
        ranges.push((at as usize, end as usize));
    }
    // Strips may share bytes (writers repeat an identical strip); each byte is reversed once.
    ranges.sort_unstable();
    let mut out = bytes.to_vec();
    let mut done = 0;
    for (start, end) in ranges {
        for b in &mut out[start.max(done)..end.max(done)] {
            *b = b.reverse_bits();
        }
        done = done.max(end);
    }
    // Said in the copy too, so a `tiff` that learns the tag cannot reverse the bits again.
    mark_in_order(&mut out)
        .ok_or_else(|| corrupt("the TIFF's first directory is cut short: re-save the file"))?;
    Ok(Some(out))
}

/// Sets the first directory's FillOrder entry to 1 (classic TIFF and BigTIFF, either byte
/// order); `None` when the directory cannot be walked.
fn mark_in_order(tiff: &mut [u8]) -> Option<()> {
    let big_endian = match tiff.get(..2)? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let read = |tiff: &[u8], at: usize, len: usize| -> Option<u64> {
        let bytes = tiff.get(at..at.checked_add(len)?)?;
        let fold = |v: u64, &b: &u8| v << 8 | u64::from(b);
        Some(if big_endian {
            bytes.iter().fold(0, fold)
        } else {
            bytes.iter().rev().fold(0, fold)
        })
    };
    let big_tiff = read(tiff, 2, 2)? == 43;
    let (ifd, count_len, entry_len, value_at) = if big_tiff {
        (read(tiff, 8, 8)?, 8, 20, 12)
    } else {
        (read(tiff, 4, 4)?, 2, 12, 8)
    };
    let ifd = usize::try_from(ifd).ok()?;
    let entries = usize::try_from(read(tiff, ifd, count_len)?).ok()?;
    for i in 0..entries {
        let entry = ifd + count_len + i * entry_len;
        if read(tiff, entry, 2)? == u64::from(Tag::FillOrder.to_u16()) {
            // SHORT as the specification says, or LONG / LONG8 as some writers have it.
            let len = match read(tiff, entry + 2, 2)? {
                3 => 2,
                4 => 4,
                16 => 8,
                _ => return None,
            };
            let value = tiff.get_mut(entry + value_at..entry + value_at + len)?;
            value.fill(0);
            value[if big_endian { len - 1 } else { 0 }] = 1;
            return Some(());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TIFF whose one directory entry is FillOrder 2, stored as `kind` (3 SHORT, 4 LONG).
    fn tiff(kind: u16, big_endian: bool) -> Vec<u8> {
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend_from_slice(if big_endian { b"MM" } else { b"II" });
        out.extend_from_slice(&u16b(42));
        out.extend_from_slice(&u32b(8));
        out.extend_from_slice(&u16b(1));
        out.extend_from_slice(&u16b(266));
        out.extend_from_slice(&u16b(kind));
        out.extend_from_slice(&u32b(1));
        if kind == 3 {
            out.extend_from_slice(&u16b(2));
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&u32b(2));
        }
        out.extend_from_slice(&u32b(0));
        out
    }

    #[test]
    fn the_copy_says_fill_order_1_in_every_layout() {
        for kind in [3, 4] {
            for big_endian in [false, true] {
                let mut t = tiff(kind, big_endian);
                mark_in_order(&mut t).expect("the entry is found");
                let value = &t[18..22];
                let expected: &[u8] = match (kind, big_endian) {
                    (3, false) => &[1, 0, 0, 0],
                    (3, true) => &[0, 1, 0, 0],
                    (_, false) => &[1, 0, 0, 0],
                    (_, true) => &[0, 0, 0, 1],
                };
                assert_eq!(value, expected, "type {kind}, big-endian {big_endian}");
            }
        }
        // A cut directory is refused, not walked past the end.
        assert_eq!(mark_in_order(&mut tiff(3, false)[..14].to_vec()), None);
        assert_eq!(mark_in_order(&mut b"XX".to_vec()), None);
    }
}
