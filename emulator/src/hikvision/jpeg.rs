//! What a terminal checks in a face photo's JPEG markers before modelling it (reference §6):
//! nothing before SOI or after EOI [PHP], a baseline frame (progressive is refused here, which
//! the reference marks unconfirmed [SK]) and 4:2:0 chroma [PH2]. Pure: it reads markers only.

/// Why a photo is refused, as the `errorMsg` of `SubpicAnalysisModelingError` says it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Not a JPEG at all, or one too damaged to walk: `saveFacePic`.
    NotJpeg(String),
    /// A JPEG the terminal does not model: `PicFeaturePoints`.
    Unsupported(String),
}

/// Checks the markers of `bytes`.
pub(crate) fn check(bytes: &[u8]) -> Result<(), Layout> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(
            match bytes.windows(3).position(|w| w == [0xFF, 0xD8, 0xFF]) {
                Some(at) => Layout::Unsupported(format!("{at} bytes before the SOI marker")),
                None => Layout::NotJpeg("not a JPEG (no SOI marker)".to_string()),
            },
        );
    }
    let damaged = |what: &str| Layout::NotJpeg(format!("damaged JPEG: {what}"));
    let mut i = 2;
    let mut frame = false;
    loop {
        // A marker: 0xFF (fill bytes allowed), then its code.
        if bytes.get(i) != Some(&0xFF) {
            return Err(damaged(&format!("no marker at byte {i}")));
        }
        while bytes.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return Err(damaged("ends inside a marker"));
        };
        i += 1;
        match marker {
            0xD9 => {
                return if i == bytes.len() {
                    Ok(())
                } else {
                    Err(Layout::Unsupported(format!(
                        "{} bytes after the EOI marker",
                        bytes.len() - i
                    )))
                };
            }
            0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        let length = match bytes.get(i..i + 2) {
            Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
            _ => return Err(damaged("ends inside a segment length")),
        };
        let Some(segment) = bytes.get(i + 2..i + length).filter(|_| length >= 2) else {
            return Err(damaged("a segment runs past the end"));
        };
        match marker {
            0xC0 | 0xC1 => {
                frame = true;
                chroma_420(segment)?;
            }
            0xC2 => return Err(Layout::Unsupported("a progressive JPEG".to_string())),
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(Layout::Unsupported(format!(
                    "a JPEG frame of type SOF{} (only baseline is modelled)",
                    marker - 0xC0
                )));
            }
            _ => {}
        }
        i += length;
        if marker == 0xDA {
            if !frame {
                return Err(damaged("a scan before any frame"));
            }
            // Entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a
            // restart marker.
            loop {
                match bytes.get(i..i + 2) {
                    None => return Err(damaged("no EOI marker")),
                    Some(&[0xFF, next]) if next != 0x00 && !(0xD0..=0xD7).contains(&next) => {
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
        }
    }
}

/// A baseline frame header (after its length): three components, luma sampled 2x2 and both
/// chroma components 1x1.
fn chroma_420(frame: &[u8]) -> Result<(), Layout> {
    let components = usize::from(*frame.get(5).unwrap_or(&0));
    let sampling: Vec<(u8, u8)> = (0..components)
        .filter_map(|k| frame.get(6 + 3 * k + 1).map(|s| (s >> 4, s & 0x0F)))
        .collect();
    if sampling.len() != components {
        return Err(Layout::NotJpeg("damaged JPEG: a short frame header".into()));
    }
    if sampling == [(2, 2), (1, 1), (1, 1)] {
        Ok(())
    } else {
        let described: Vec<String> = sampling.iter().map(|(h, v)| format!("{h}x{v}")).collect();
        Err(Layout::Unsupported(format!(
            "chroma is not 4:2:0 (components sampled {})",
            described.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures")
                .join(path),
        )
        .unwrap()
    }

    #[test]
    fn baseline_420_photos_pass() {
        for name in ["demo/photos/E1001.jpg", "images/cat.jpg", "images/face.jpg"] {
            assert_eq!(check(&fixture(name)), Ok(()), "{name}");
        }
    }

    #[test]
    fn what_the_terminal_does_not_model() {
        let good = fixture("demo/photos/E1001.jpg");
        let unsupported = |bytes: &[u8], want: &str| match check(bytes) {
            Err(Layout::Unsupported(m)) => assert!(m.contains(want), "{want}: {m}"),
            other => panic!("{want}: {other:?}"),
        };
        unsupported(&fixture("images/progressive.jpg"), "progressive");
        unsupported(&fixture("images/grey.jpg"), "4:2:0");
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"trailer");
        unsupported(&trailing, "7 bytes after the EOI");
        let mut leading = b"junk".to_vec();
        leading.extend_from_slice(&good);
        unsupported(&leading, "4 bytes before the SOI");
    }

    #[test]
    fn what_is_no_jpeg() {
        for (bytes, want) in [
            (b"\x89PNG\r\n".to_vec(), "no SOI"),
            (Vec::new(), "no SOI"),
            (b"\xff\xd8\xff\xe0\x00".to_vec(), "damaged"),
            (fixture("images/truncated.jpg"), "damaged"),
        ] {
            match check(&bytes) {
                Err(Layout::NotJpeg(m)) => assert!(m.contains(want), "{want}: {m}"),
                other => panic!("{want}: {other:?}"),
            }
        }
    }
}
