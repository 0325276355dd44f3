//! CSV files as spreadsheets open them: UTF-8 with a byte-order mark at the
//! start of the file, CRLF line ends.

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// Rows as CSV; with `header`, the file's first chunk (byte-order mark and
/// the header row).
pub(crate) fn csv_chunk<R, F>(header: Option<&[&str]>, rows: impl IntoIterator<Item = R>) -> Vec<u8>
where
    R: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    if let Some(columns) = header {
        let _ = w.write_record(columns);
    }
    for row in rows {
        let _ = w.write_record(row);
    }
    let mut out = w.into_inner().unwrap_or_default();
    if header.is_some() {
        out.splice(0..0, [0xEF, 0xBB, 0xBF]);
    }
    out
}

/// Marks `response` as a CSV download named `filename`.
pub(crate) fn as_download(mut response: Response, filename: &'static str) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// A cell a spreadsheet would read as a formula (`=`, `@`, `+`, `-` first)
/// gets a leading apostrophe: text typed by users must not run as one.
pub(crate) fn text_cell(s: &str) -> String {
    if s.starts_with(['=', '@', '+', '-', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}
