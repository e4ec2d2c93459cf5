//! Native item texts (vCard, iCalendar) shared by the stores that keep them
//! (vdir, dav): parsing a fetched text into a record with the store's error
//! types, and choosing the text a create writes.

use tandem_formats::{Format, FormatError};
use tandem_record::Record;
use tandem_store::{Error, ErrorKind, ItemError, NewItem, Raw};

/// Parses a fetched item's text; a parse error becomes an
/// [`ItemError`] naming the item, the field at fault and `context` (a path,
/// an href).
pub(crate) fn parse_item(
    format: Format,
    id: &str,
    context: &dyn std::fmt::Display,
    text: &str,
) -> Result<Record, ItemError> {
    tandem_formats::parse(format, text).map_err(|err| ItemError {
        id: id.to_string(),
        kind: ErrorKind::Invalid,
        field: err.field.clone(),
        message: format!("{context}: {}", err.message),
    })
}

/// A format error as a store error: [`ErrorKind::Invalid`], with the field
/// at fault and `context`.
pub(crate) fn format_error(context: &dyn std::fmt::Display, err: FormatError) -> Error {
    let field = err
        .field
        .map(|field| format!(" (field {field})"))
        .unwrap_or_default();
    Error::new(
        ErrorKind::Invalid,
        format!("{context}{field}: {}", err.message),
    )
}

/// True when `raw` is text in `format`.
pub(crate) fn is_format(raw: &Raw, format: Format) -> bool {
    Format::from_media_type(&raw.media_type) == Some(format)
}

/// The text a create writes: the source's own text when it is in `format`
/// (so nothing is lost), else the record rendered.
pub(crate) fn text_to_create(format: Format, item: &NewItem) -> Result<String, Error> {
    if item.record.uid.is_empty() {
        return Err(Error::new(ErrorKind::Invalid, "the record has no UID"));
    }
    match &item.raw {
        Some(raw) if is_format(raw, format) => Ok(raw.text.clone()),
        _ => tandem_formats::render(format, &item.record).map_err(|err| {
            let what = format!(
                "cannot write `{}` as {}",
                item.record.uid,
                format.media_type()
            );
            format_error(&what, err).with_id(item.record.uid.clone())
        }),
    }
}
