//! Native item formats ↔ canonical records: vCard (3.0, 4.0) for contacts and
//! iCalendar (VEVENT, VTODO) for events and tasks, with lossless patching.
//!
//! This crate sits between a store and the rest of the flow: a store reads
//! native text and calls [`parse`] to get a [`Record`]; when the plan says a
//! field changed, the store calls [`patch`] on the text it has, and only the
//! properties of the changed fields are rewritten — every X- property,
//! parameter, group, VTIMEZONE, VALARM and recurrence override stays as it
//! was, byte for byte. [`render`] writes a new item when there is no native
//! text yet. Parsing and writing are done by the `calcard` crate; this crate
//! decides which property holds which field (the tables are at the top of
//! the `vcard` and `icalendar` modules).
//!
//! ```
//! use tandem_formats::{parse, patch, Format};
//! use tandem_record::{FieldChange, Value};
//!
//! let card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ada\r\nFN:Ada\r\nX-PET:cat\r\nEND:VCARD\r\n";
//! let change = FieldChange { field: "title".into(), value: Some(Value::text("Countess")) };
//! let patched = patch(Format::VCard, card, &[change.clone()]).unwrap();
//! assert!(patched.contains("X-PET:cat\r\n"));
//!
//! let mut expected = parse(Format::VCard, card).unwrap();
//! expected.apply(&[change]);
//! assert_eq!(parse(Format::VCard, &patched).unwrap(), expected);
//! ```
//!
//! Module map: `vcard` and `icalendar` (the field mappings), `recurrence`
//! (the occurrences of a series in a time window), `row` (table
//! cells for the SQL and CSV stores), `datetime`
//! (dates and zones), `shape` (value checks), `patch` (planning and checking
//! a patch), `splice` (byte-preserving text edits), `error` (the error type).

mod datetime;
mod error;
mod icalendar;
mod patch;
pub mod recurrence;
pub mod row;
mod shape;
mod splice;
mod vcard;

pub use error::FormatError;

use tandem_record::{FieldChange, Kind, Record};

/// A native item format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    VCard,
    ICalendar,
}

impl Format {
    /// The MIME type, as a CardDAV/CalDAV server sends it.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::VCard => "text/vcard",
            Format::ICalendar => "text/calendar",
        }
    }

    /// Reads a Content-Type value; parameters (`; charset=utf-8`) and case
    /// are ignored, and the legacy `text/x-vcard` is accepted.
    pub fn from_media_type(s: &str) -> Option<Format> {
        let essence = s.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("text/vcard")
            || essence.eq_ignore_ascii_case("text/x-vcard")
        {
            Some(Format::VCard)
        } else if essence.eq_ignore_ascii_case("text/calendar") {
            Some(Format::ICalendar)
        } else {
            None
        }
    }

    /// The usual file extension, without a dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::VCard => "vcf",
            Format::ICalendar => "ics",
        }
    }

    /// `vcf`/`vcard` or `ics`, in any case, with or without a leading dot.
    pub fn from_extension(ext: &str) -> Option<Format> {
        let ext = ext.strip_prefix('.').unwrap_or(ext);
        if ext.eq_ignore_ascii_case("vcf") || ext.eq_ignore_ascii_case("vcard") {
            Some(Format::VCard)
        } else if ext.eq_ignore_ascii_case("ics") {
            Some(Format::ICalendar)
        } else {
            None
        }
    }

    /// The format items of a kind are stored in.
    pub fn for_kind(kind: Kind) -> Format {
        match kind {
            Kind::Contact => Format::VCard,
            Kind::Event | Kind::Task => Format::ICalendar,
        }
    }
}

/// Parses one item — one vCard, or one VCALENDAR holding one VEVENT/VTODO
/// series (a master plus RECURRENCE-ID overrides sharing its UID) — into a
/// record whose kind comes from the content.
pub fn parse(format: Format, text: &str) -> Result<Record, FormatError> {
    match format {
        Format::VCard => vcard::parse(text),
        Format::ICalendar => icalendar::parse(text),
    }
}

/// Splits a whole iCalendar file (an export holding many series) into one
/// item per series — the components sharing a UID plus the VTIMEZONEs they
/// use — each ready for [`parse`].
pub fn split_calendar(text: &str) -> Result<Vec<String>, FormatError> {
    icalendar::split(text)
}

/// Writes a brand-new native item for a record (used when creating on a store
/// that has no source text for it).
pub fn render(format: Format, record: &Record) -> Result<String, FormatError> {
    match format {
        Format::VCard => vcard::render(record),
        Format::ICalendar => icalendar::render(record),
    }
}

/// Applies `changes` to the original native text and returns the new text.
///
/// Only the properties of fields whose meaning changes are replaced, removed
/// or added; everything else stays byte for byte where possible and at least
/// equal in meaning. `parse(patch(original, changes))` equals
/// `parse(original)` with `changes` applied ([`Record::apply`]); a change
/// that cannot be written faithfully is an error naming the field.
pub fn patch(
    format: Format,
    original: &str,
    changes: &[FieldChange],
) -> Result<String, FormatError> {
    match format {
        Format::VCard => vcard::patch(original, changes),
        Format::ICalendar => icalendar::patch(original, changes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_and_extensions() {
        for format in [Format::VCard, Format::ICalendar] {
            assert_eq!(Format::from_media_type(format.media_type()), Some(format));
            assert_eq!(Format::from_extension(format.extension()), Some(format));
        }
        assert_eq!(
            Format::from_media_type("Text/Calendar; charset=utf-8"),
            Some(Format::ICalendar)
        );
        assert_eq!(Format::from_extension("VCard"), Some(Format::VCard));
        assert_eq!(Format::from_extension(".ICS"), Some(Format::ICalendar));
        assert_eq!(Format::from_extension("csv"), None);
        assert_eq!(Format::from_media_type("text/plain"), None);
        assert_eq!(Format::for_kind(Kind::Contact), Format::VCard);
        assert_eq!(Format::for_kind(Kind::Event), Format::ICalendar);
        assert_eq!(Format::for_kind(Kind::Task), Format::ICalendar);
    }
}
