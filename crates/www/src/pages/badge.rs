//! `/png?builder=&number=|revision=&size=small|normal|large`: a status badge, drawn with a
//! built-in 3×5 pixel font and encoded as PNG here (no font files, no image crates).

use std::io::Write;

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use flate2::write::ZlibEncoder;
use flate2::Compression;

use super::args::Args;
use super::view::{internal, result_class, Catalog};
use crate::{AppState, WebError};

/// `/png`.
pub(crate) async fn png(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    super::require_view(&state)?;
    let args = Args::parse(query.as_deref());
    let catalog = Catalog::of(&state);
    let Some(name) = args.one("builder") else {
        return Err(WebError::BadRequest("give builder=".to_string()));
    };
    let builder = catalog.require(name)?;
    let store = &state.shared.store;
    // number= wins over revision=, as in Buildbot; neither means the last finished build.
    let build = if let Some(number) = args.int("number") {
        store
            .build_by_number(builder.id, number)
            .await
            .map_err(internal)?
    } else if let Some(revision) = args.one("revision") {
        store
            .build_for_revision(builder.id, revision)
            .await
            .map_err(internal)?
    } else {
        store
            .builder_summaries(Some(&[builder.id]), &[])
            .await
            .map_err(internal)?
            .into_iter()
            .next()
            .and_then(|s| s.last_finished)
    };
    let status = match &build {
        Some(b) => result_class(b.results),
        None => "unknown",
    };
    let scale = match args.one("size") {
        Some("small") => 1,
        Some("large") => 3,
        _ => 2,
    };
    let image = badge("build", status, scale);
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        image,
    )
        .into_response())
}

fn color(status: &str) -> [u8; 3] {
    match status {
        "success" => [0x2e, 0x9e, 0x44],
        "warnings" => [0xd9, 0x8c, 0x00],
        "failure" => [0xd7, 0x3a, 0x49],
        "exception" => [0xa3, 0x3e, 0xb5],
        "running" => [0xc9, 0xa2, 0x00],
        "retry" | "cancelled" => [0x3c, 0x7c, 0xc9],
        _ => [0x88, 0x88, 0x88],
    }
}

/// Rows of a glyph, three bits each (most significant bit on the left).
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [3, 4, 4, 4, 3],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'G' => [3, 4, 5, 5, 3],
        'H' => [5, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'J' => [1, 1, 1, 5, 2],
        'K' => [5, 5, 6, 5, 5],
        'L' => [4, 4, 4, 4, 7],
        'M' => [5, 7, 7, 5, 5],
        'N' => [6, 5, 5, 5, 5],
        'O' => [2, 5, 5, 5, 2],
        'P' => [6, 5, 6, 4, 4],
        'Q' => [2, 5, 5, 6, 3],
        'R' => [6, 5, 6, 5, 5],
        'S' => [3, 4, 2, 1, 6],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'V' => [5, 5, 5, 5, 2],
        'W' => [5, 5, 7, 7, 5],
        'X' => [5, 5, 2, 5, 5],
        'Y' => [5, 5, 2, 2, 2],
        'Z' => [7, 1, 2, 4, 7],
        '#' => [5, 7, 5, 7, 5],
        '-' => [0, 0, 7, 0, 0],
        ':' => [0, 2, 0, 2, 0],
        '.' => [0, 0, 0, 0, 2],
        '_' => [0, 0, 0, 0, 7],
        ' ' => [0, 0, 0, 0, 0],
        _ => [7, 1, 2, 0, 2],
    }
}

/// A two-part badge: `label` on grey, `status` on its colour.
pub(crate) fn badge(label: &str, status: &str, scale: usize) -> Vec<u8> {
    let text_width = |s: &str| s.chars().count() * 4 - 1;
    let pad = 3;
    let left = text_width(label) + 2 * pad;
    let right = text_width(status) + 2 * pad;
    let (w, h) = ((left + right) * scale, (5 + 2 * pad) * scale);
    let mut pixels = vec![0u8; w * h * 3];
    let fill = |pixels: &mut Vec<u8>, x0: usize, x1: usize, rgb: [u8; 3]| {
        for y in 0..h {
            for x in x0 * scale..x1 * scale {
                let i = (y * w + x) * 3;
                pixels[i..i + 3].copy_from_slice(&rgb);
            }
        }
    };
    fill(&mut pixels, 0, left, [0x55, 0x55, 0x55]);
    fill(&mut pixels, left, left + right, color(status));
    let mut draw = |text: &str, x0: usize| {
        for (i, c) in text.chars().enumerate() {
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) == 0 {
                        continue;
                    }
                    let (gx, gy) = (x0 + i * 4 + col, pad + row);
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let i = ((gy * scale + dy) * w + gx * scale + dx) * 3;
                            pixels[i..i + 3].copy_from_slice(&[0xff, 0xff, 0xff]);
                        }
                    }
                }
            }
        }
    };
    draw(label, pad);
    draw(status, left + pad);
    encode_png(w as u32, h as u32, &pixels)
}

/// An 8-bit RGB PNG of `pixels` (rows top to bottom).
fn encode_png(w: u32, h: u32, pixels: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(pixels.len() + h as usize);
    for row in pixels.chunks(w as usize * 3) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let data = encoder
        .write_all(&raw)
        .and_then(|()| encoder.finish())
        .unwrap_or_default();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8; 4], body: &[u8]| {
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(body);
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &data);
    chunk(b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_differ_and_png_signature() {
        let small = super::badge("build", "success", 1);
        let large = super::badge("build", "success", 3);
        assert!(small.starts_with(b"\x89PNG\r\n\x1a\n"));
        let width = |png: &[u8]| u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
        assert_eq!(width(&large), 3 * width(&small));
    }
}
