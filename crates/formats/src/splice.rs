//! Byte-preserving edits of native text: the last step of a patch, after the
//! edit has been planned on calcard's model.
//!
//! This is deliberately not a parser. calcard parses and writes values; this
//! module only finds where each content line starts and ends (unfolding
//! continuation lines), which property name it carries and which
//! BEGIN/END component it sits in. That is enough to drop the lines of the
//! properties a patch replaces and put calcard-written lines in their place,
//! so every other byte of the original — X- properties, odd parameters,
//! folding, VTIMEZONEs, alarms — stays exactly as it was.
//!
//! Components are numbered in the order their BEGIN lines appear, which is
//! the order calcard numbers `ICalendar::components` in (and a vCard is the
//! single component 0), so model positions and line positions line up. The
//! patch code checks that they do before trusting a splice.

use std::collections::BTreeMap;

/// Where the content lines and components of one native item are.
#[derive(Debug)]
pub(crate) struct Scan {
    lines: Vec<Line>,
    components: Vec<Component>,
    crlf: bool,
}

#[derive(Debug)]
struct Line {
    /// Byte range in the source, line break(s) included.
    start: usize,
    end: usize,
    /// Upper-cased property name without vCard group; empty for blank or
    /// unusable lines (calcard skips those too).
    name: String,
    /// The component the line belongs to; for a BEGIN line, the component
    /// it opens.
    component: Option<usize>,
}

#[derive(Debug)]
struct Component {
    name: String,
    begin: usize,
    end: Option<usize>,
    children: Vec<usize>,
}

/// One piece of a replaced property.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    /// The `n`-th existing line of the property, copied byte for byte.
    Keep(usize),
    /// New text written by calcard (CRLF line breaks).
    Text(String),
}

impl Scan {
    /// Scans `text`. `groups` strips vCard `group.` prefixes from names.
    pub(crate) fn new(text: &str, groups: bool) -> Scan {
        let crlf = text
            .find('\n')
            .is_none_or(|at| at > 0 && text.as_bytes().get(at - 1) == Some(&b'\r'));
        let mut scan = Scan {
            lines: Vec::new(),
            components: Vec::new(),
            crlf,
        };
        let mut stack: Vec<usize> = Vec::new();
        let mut root_closed = false;
        for (start, end) in logical_lines(text) {
            let unfolded = unfold(text.get(start..end).unwrap_or_default());
            let (name, value) = split_name(&unfolded, groups);
            let index = scan.lines.len();
            let mut component = stack.last().copied();
            if !root_closed && name == "BEGIN" {
                let id = scan.components.len();
                scan.components.push(Component {
                    name: value.to_ascii_uppercase(),
                    begin: index,
                    end: None,
                    children: Vec::new(),
                });
                if let Some(parent) = stack.last().copied() {
                    scan.components[parent].children.push(id);
                }
                stack.push(id);
                component = Some(id);
            } else if !root_closed && name == "END" {
                if let Some(id) = stack.pop() {
                    scan.components[id].end = Some(index);
                    root_closed = stack.is_empty();
                }
            } else if root_closed {
                component = None;
            }
            scan.lines.push(Line {
                start,
                end,
                name,
                component,
            });
        }
        scan
    }

    pub(crate) fn component_count(&self) -> usize {
        self.components.len()
    }

    /// The upper-cased name after BEGIN: of component `id`.
    pub(crate) fn component_name(&self, id: usize) -> Option<&str> {
        self.components.get(id).map(|c| c.name.as_str())
    }

    /// The components directly inside component `id`, in text order.
    pub(crate) fn children(&self, id: usize) -> &[usize] {
        self.components
            .get(id)
            .map_or(&[][..], |c| c.children.as_slice())
    }

    /// How many lines of property `name` component `id` holds.
    pub(crate) fn property_count(&self, id: usize, name: &str) -> usize {
        self.property_lines(id, name).len()
    }

    fn property_lines(&self, id: usize, name: &str) -> Vec<usize> {
        let name = name.to_ascii_uppercase();
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, line)| {
                line.component == Some(id)
                    && line.name == name
                    && line.name != "BEGIN"
                    && line.name != "END"
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Where new properties of component `id` go: before its first
    /// sub-component, else before its END line, else at the end of the text.
    fn insert_point(&self, id: usize) -> usize {
        let Some(component) = self.components.get(id) else {
            return self.lines.len();
        };
        component
            .children
            .first()
            .and_then(|child| self.components.get(*child))
            .map(|child| child.begin)
            .or(component.end)
            .unwrap_or(self.lines.len())
    }

    /// The line after component `id`'s END line.
    pub(crate) fn after(&self, id: usize) -> usize {
        self.components
            .get(id)
            .and_then(|c| c.end)
            .map_or(self.lines.len(), |end| end + 1)
    }

    /// The BEGIN line of component `id`.
    pub(crate) fn begin(&self, id: usize) -> usize {
        self.components
            .get(id)
            .map_or(self.lines.len(), |c| c.begin)
    }

    /// The line where component `id` ends (its END line, else the last line).
    pub(crate) fn end(&self, id: usize) -> usize {
        self.components
            .get(id)
            .and_then(|c| c.end)
            .unwrap_or(self.lines.len().saturating_sub(1))
    }
}

/// Edits planned against one [`Scan`], applied all at once by [`finish`].
///
/// [`finish`]: Splice::finish
pub(crate) struct Splice<'a> {
    text: &'a str,
    scan: &'a Scan,
    dropped: Vec<bool>,
    inserts: BTreeMap<usize, Vec<String>>,
}

impl<'a> Splice<'a> {
    pub(crate) fn new(text: &'a str, scan: &'a Scan) -> Self {
        Splice {
            text,
            scan,
            dropped: vec![false; scan.lines.len()],
            inserts: BTreeMap::new(),
        }
    }

    /// Replaces every line of property `name` in component `id` with
    /// `pieces`, placed where the first of those lines was (or where new
    /// properties go when there was none). Fails when a piece keeps a line
    /// that does not exist, so the caller can fall back to a full rewrite.
    pub(crate) fn replace_property(
        &mut self,
        id: usize,
        name: &str,
        pieces: &[Piece],
    ) -> Result<(), String> {
        let lines = self.scan.property_lines(id, name);
        let at = lines
            .first()
            .copied()
            .unwrap_or_else(|| self.scan.insert_point(id));
        let mut texts = Vec::with_capacity(pieces.len());
        for piece in pieces {
            match piece {
                Piece::Keep(n) => {
                    let line = lines
                        .get(*n)
                        .and_then(|l| self.scan.lines.get(*l))
                        .ok_or_else(|| format!("no line {n} of {name} to keep"))?;
                    texts.push(self.line_text(line).to_string());
                }
                Piece::Text(text) => texts.push(self.native_breaks(text)),
            }
        }
        for line in lines {
            self.drop_line(line);
        }
        self.inserts.entry(at).or_default().extend(texts);
        Ok(())
    }

    /// Removes component `id` with everything inside it.
    pub(crate) fn remove_component(&mut self, id: usize) {
        for line in self.scan.begin(id)..=self.scan.end(id) {
            self.drop_line(line);
        }
    }

    /// Inserts calcard-written text before line `at` (`at` may be one past
    /// the last line).
    pub(crate) fn insert_before(&mut self, at: usize, text: &str) {
        let text = self.native_breaks(text);
        self.inserts.entry(at).or_default().push(text);
    }

    pub(crate) fn finish(self) -> String {
        let mut out = String::with_capacity(self.text.len() + 256);
        let newline = if self.scan.crlf { "\r\n" } else { "\n" };
        let push_inserts = |out: &mut String, at: usize| {
            for text in self.inserts.get(&at).into_iter().flatten() {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push_str(newline);
                }
                out.push_str(text);
                if !text.ends_with('\n') {
                    out.push_str(newline);
                }
            }
        };
        for (i, line) in self.scan.lines.iter().enumerate() {
            push_inserts(&mut out, i);
            if !self.dropped.get(i).copied().unwrap_or(false) {
                out.push_str(self.line_text(line));
            }
        }
        push_inserts(&mut out, self.scan.lines.len());
        out
    }

    fn drop_line(&mut self, line: usize) {
        if let Some(slot) = self.dropped.get_mut(line) {
            *slot = true;
        }
    }

    fn line_text(&self, line: &Line) -> &'a str {
        self.text.get(line.start..line.end).unwrap_or_default()
    }

    /// calcard writes CRLF; an LF-only original keeps LF.
    fn native_breaks(&self, text: &str) -> String {
        if self.scan.crlf {
            text.to_string()
        } else {
            text.replace("\r\n", "\n")
        }
    }
}

/// Byte ranges of logical lines: a physical line plus its folded
/// continuations (lines starting with a space or tab, or following a
/// quoted-printable soft break). Together they cover every byte of `text`.
fn logical_lines(text: &str) -> Vec<(usize, usize)> {
    let mut physical = Vec::new();
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            physical.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < text.len() {
        physical.push((start, text.len()));
    }

    let mut logical: Vec<(usize, usize)> = Vec::new();
    let mut soft_break = false;
    for (start, end) in physical {
        let line = text.get(start..end).unwrap_or_default();
        let continues = soft_break || line.starts_with(' ') || line.starts_with('\t');
        match logical.last_mut() {
            Some(last) if continues => last.1 = end,
            _ => logical.push((start, end)),
        }
        let (first, last) = logical.last().copied().unwrap_or((start, end));
        let whole = text.get(first..last).unwrap_or_default();
        soft_break = whole.trim_end_matches(['\r', '\n']).ends_with('=')
            && header(whole)
                .to_ascii_uppercase()
                .contains("QUOTED-PRINTABLE");
    }
    logical
}

/// The part of a line before its value (name and parameters).
fn header(line: &str) -> &str {
    line.split_once(':').map_or(line, |(head, _)| head)
}

fn unfold(line: &str) -> String {
    line.replace("\r\n ", "")
        .replace("\r\n\t", "")
        .replace("\n ", "")
        .replace("\n\t", "")
}

/// The property name (upper-cased, group stripped) and, for BEGIN/END, the
/// component name after the colon.
fn split_name(unfolded: &str, groups: bool) -> (String, String) {
    let line = unfolded.trim_start_matches('\u{feff}');
    let Some(cut) = line.find([';', ':']) else {
        return (String::new(), String::new());
    };
    let mut name = line.get(..cut).unwrap_or_default();
    if groups {
        if let Some((_, rest)) = name.split_once('.') {
            name = rest;
        }
    }
    let value = line
        .split_once(':')
        .map_or("", |(_, v)| v)
        .trim_matches(|c: char| c.is_whitespace());
    (name.to_ascii_uppercase(), value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ICS: &str = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:a long\r\n  folded line\r\nX-A:1\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn finds_components_and_folded_lines() {
        let scan = Scan::new(ICS, false);
        assert_eq!(scan.component_count(), 3);
        assert_eq!(scan.component_name(1), Some("VEVENT"));
        assert_eq!(scan.property_count(1, "summary"), 1);
        assert_eq!(scan.property_count(2, "ACTION"), 1);
        assert_eq!(Splice::new(ICS, &scan).finish(), ICS);
    }

    #[test]
    fn replaces_and_inserts_in_place() {
        let scan = Scan::new(ICS, false);
        let mut splice = Splice::new(ICS, &scan);
        splice
            .replace_property(1, "SUMMARY", &[Piece::Text("SUMMARY:b\r\n".into())])
            .unwrap();
        splice
            .replace_property(1, "LOCATION", &[Piece::Text("LOCATION:here\r\n".into())])
            .unwrap();
        let out = splice.finish();
        assert_eq!(
            out,
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:b\r\nX-A:1\r\nLOCATION:here\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        );
    }

    #[test]
    fn keeps_lines_and_line_breaks() {
        let vcf = "BEGIN:VCARD\nitem1.EMAIL:a@x\nEMAIL:b@x\nEND:VCARD";
        let scan = Scan::new(vcf, true);
        let mut splice = Splice::new(vcf, &scan);
        splice
            .replace_property(
                0,
                "EMAIL",
                &[Piece::Keep(1), Piece::Text("EMAIL:c@x\r\n".into())],
            )
            .unwrap();
        assert_eq!(
            splice.finish(),
            "BEGIN:VCARD\nEMAIL:b@x\nEMAIL:c@x\nEND:VCARD"
        );
        let mut splice = Splice::new(vcf, &scan);
        assert!(splice
            .replace_property(0, "EMAIL", &[Piece::Keep(2)])
            .is_err());
    }

    #[test]
    fn removes_components() {
        let scan = Scan::new(ICS, false);
        let mut splice = Splice::new(ICS, &scan);
        splice.remove_component(2);
        assert!(!splice.finish().contains("VALARM"));
    }

    #[test]
    fn quoted_printable_soft_breaks_continue_a_line() {
        let vcf = "BEGIN:VCARD\r\nNOTE;ENCODING=QUOTED-PRINTABLE:a=\r\nb:c\r\nEND:VCARD\r\n";
        let scan = Scan::new(vcf, true);
        assert_eq!(scan.property_count(0, "NOTE"), 1);
        assert_eq!(scan.property_count(0, "B"), 0);
    }
}
