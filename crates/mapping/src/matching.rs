//! Duplicate matching: links records that were never linked (a first sync,
//! a new record) to an unlinked record on the other side that is the same
//! person, by a ladder of keys tried in order — emails lower-cased, phones
//! as E.164, names folded for case, accents and word order.
//!
//! A unique match on a rung links the two records; a record with several
//! candidates (or a candidate claimed by several records) is ambiguous and
//! held back, so no twin is ever created for it. Records sharing a key on
//! one side are reported as duplicates.

use std::collections::{BTreeMap, BTreeSet};
use tandem_record::{Record, Side, Value};

/// One rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchKey {
    Email,
    Phone,
    Name,
}

impl MatchKey {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKey::Email => "email",
            MatchKey::Phone => "phone",
            MatchKey::Name => "name",
        }
    }
}

impl std::str::FromStr for MatchKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "email" => Ok(MatchKey::Email),
            "phone" => Ok(MatchKey::Phone),
            "name" => Ok(MatchKey::Name),
            other => Err(format!(
                "unknown match key `{other}` (expected email, phone or name)"
            )),
        }
    }
}

/// The ladder, compiled.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    ladder: Vec<MatchKey>,
    region: Option<phonenumber::country::Id>,
}

/// Two records found to be the same: indexes into the A and B slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub a: usize,
    pub b: usize,
    pub key: MatchKey,
}

/// A record with several candidates on the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ambiguity {
    pub side: Side,
    pub item: usize,
    /// Indexes on the other side.
    pub candidates: Vec<usize>,
    pub key: MatchKey,
}

/// Records on one side sharing a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub side: Side,
    pub items: Vec<usize>,
    pub key: MatchKey,
    pub value: String,
}

/// What the ladder found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches {
    pub linked: Vec<Match>,
    pub ambiguous: Vec<Ambiguity>,
    pub duplicates: Vec<Duplicate>,
}

impl Matcher {
    /// `region` is the ISO country (`"US"`, `"DE"`) for phone numbers
    /// written without a country code.
    pub fn new(ladder: Vec<MatchKey>, region: Option<&str>) -> Result<Matcher, String> {
        let region = region
            .map(|r| {
                r.to_ascii_uppercase()
                    .parse::<phonenumber::country::Id>()
                    .map_err(|_| format!("unknown default_region `{r}` (expected a country code such as US or DE)"))
            })
            .transpose()?;
        Ok(Matcher { ladder, region })
    }

    pub fn is_empty(&self) -> bool {
        self.ladder.is_empty()
    }

    /// A record's keys on one rung, normalised.
    pub fn keys(&self, key: MatchKey, record: &Record) -> BTreeSet<String> {
        match key {
            MatchKey::Email => texts(record.get("emails"))
                .into_iter()
                .map(|e| e.trim().to_lowercase())
                .filter(|e| e.contains('@'))
                .collect(),
            MatchKey::Phone => texts(record.get("phones"))
                .into_iter()
                .filter_map(|p| self.phone(&p))
                .collect(),
            MatchKey::Name => {
                let full = match record.get("full_name").and_then(Value::as_text) {
                    Some(full) => full.to_string(),
                    None => ["given_name", "middle_name", "family_name"]
                        .iter()
                        .filter_map(|f| record.get(f).and_then(Value::as_text))
                        .collect::<Vec<_>>()
                        .join(" "),
                };
                let folded = fold_name(&full);
                if folded.is_empty() {
                    BTreeSet::new()
                } else {
                    BTreeSet::from([folded])
                }
            }
        }
    }

    /// E.164 when the number parses, else its digits (at least 5).
    fn phone(&self, text: &str) -> Option<String> {
        let text = text.trim().trim_start_matches("tel:");
        let parsed = std::panic::catch_unwind(|| phonenumber::parse(self.region, text)).ok();
        if let Some(Ok(number)) = parsed {
            return Some(number.format().mode(phonenumber::Mode::E164).to_string());
        }
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        (digits.len() >= 5).then_some(digits)
    }

    /// Runs the ladder over the unlinked records of both sides.
    pub fn pair_up(&self, a: &[&Record], b: &[&Record]) -> Matches {
        let mut out = Matches::default();
        let mut free: [BTreeSet<usize>; 2] = [(0..a.len()).collect(), (0..b.len()).collect()];
        let records = |side: Side| match side {
            Side::A => a,
            Side::B => b,
        };
        for &key in &self.ladder {
            // key value → items, per side, among the records still free.
            let mut index: [BTreeMap<String, BTreeSet<usize>>; 2] = Default::default();
            for side in Side::BOTH {
                let s = side_ix(side);
                for &i in &free[s] {
                    for k in self.keys(key, records(side)[i]) {
                        index[s].entry(k).or_default().insert(i);
                    }
                }
                for (value, items) in &index[s] {
                    if items.len() > 1 {
                        out.duplicates.push(Duplicate {
                            side,
                            items: items.iter().copied().collect(),
                            key,
                            value: value.clone(),
                        });
                    }
                }
            }
            let candidates = |side: Side, item: usize| -> BTreeSet<usize> {
                self.keys(key, records(side)[item])
                    .iter()
                    .filter_map(|k| index[side_ix(side.other())].get(k))
                    .flatten()
                    .copied()
                    .collect()
            };
            let mut taken: [BTreeSet<usize>; 2] = Default::default();
            for bi in free[1].clone() {
                if taken[1].contains(&bi) {
                    continue;
                }
                let for_b = candidates(Side::B, bi);
                match for_b.len() {
                    0 => continue,
                    1 => {
                        let Some(&ai) = for_b.iter().next() else {
                            continue;
                        };
                        if taken[0].contains(&ai) {
                            continue;
                        }
                        let for_a = candidates(Side::A, ai);
                        if for_a.len() == 1 {
                            out.linked.push(Match { a: ai, b: bi, key });
                        } else {
                            out.ambiguous.push(Ambiguity {
                                side: Side::A,
                                item: ai,
                                candidates: for_a.iter().copied().collect(),
                                key,
                            });
                            taken[1].extend(for_a);
                        }
                        taken[0].insert(ai);
                        taken[1].insert(bi);
                    }
                    _ => {
                        out.ambiguous.push(Ambiguity {
                            side: Side::B,
                            item: bi,
                            candidates: for_b.iter().copied().collect(),
                            key,
                        });
                        taken[1].insert(bi);
                        taken[0].extend(for_b);
                    }
                }
            }
            for s in 0..2 {
                free[s].retain(|i| !taken[s].contains(i));
            }
        }
        out
    }
}

fn side_ix(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

/// The text values of a field: plain texts, or the `value` of maps (how
/// vCard emails and phones are kept).
fn texts(value: Option<&Value>) -> Vec<String> {
    let one = |v: &Value| -> Option<String> {
        match v {
            Value::Map(m) => m.get("value").and_then(Value::as_text).map(str::to_string),
            other => other.as_text().map(str::to_string),
        }
    };
    match value {
        None => Vec::new(),
        Some(Value::List(items)) => items.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
    }
}

/// A name folded for case, accents and word order: "Lovelace, Ádá" and
/// "ada LOVELACE" fold alike.
pub fn fold_name(name: &str) -> String {
    let mut words: Vec<String> = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.chars()
                .flat_map(char::to_lowercase)
                .map(unaccent)
                .collect()
        })
        .collect();
    words.sort();
    words.join(" ")
}

/// The base letter of a lower-case accented Latin letter.
fn unaccent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'ď' | 'đ' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' | 'ħ' => 'h',
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
        'ĵ' => 'j',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => 's',
        'ţ' | 'ť' | 'ŧ' | 'ț' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_record::Kind;

    fn person(uid: &str, name: &str, email: Option<&str>, phone: Option<&str>) -> Record {
        let mut r = Record::new(Kind::Contact, uid).with("full_name", Value::text(name));
        if let Some(e) = email {
            r.set(
                "emails",
                Value::List(vec![Value::map([("value", Value::text(e))])]),
            );
        }
        if let Some(p) = phone {
            r.set("phones", Value::List(vec![Value::text(p)]));
        }
        r
    }

    fn matcher() -> Matcher {
        Matcher::new(
            vec![MatchKey::Email, MatchKey::Phone, MatchKey::Name],
            Some("us"),
        )
        .expect("valid")
    }

    #[test]
    fn keys_normalise() {
        let m = matcher();
        let r = person(
            "u",
            "Lovelace, Ádá",
            Some(" Ada@Example.ORG"),
            Some("(202) 555-0143"),
        );
        assert_eq!(
            m.keys(MatchKey::Email, &r),
            BTreeSet::from(["ada@example.org".to_string()])
        );
        assert_eq!(
            m.keys(MatchKey::Phone, &r),
            BTreeSet::from(["+12025550143".to_string()])
        );
        assert_eq!(
            m.keys(MatchKey::Name, &r),
            BTreeSet::from(["ada lovelace".to_string()])
        );
        let intl = person("u", "x", None, Some("+1 202-555-0143"));
        assert_eq!(m.keys(MatchKey::Phone, &intl), m.keys(MatchKey::Phone, &r));
        assert!(Matcher::new(vec![], Some("Atlantis")).is_err());
    }

    #[test]
    fn ladder_table() {
        let m = matcher();
        // (A records, B records, expected links (a, b, key), ambiguous (side, item))
        struct Case {
            what: &'static str,
            a: Vec<Record>,
            b: Vec<Record>,
            linked: Vec<(usize, usize, MatchKey)>,
            ambiguous: Vec<(Side, usize)>,
        }
        let cases = vec![
            Case {
                what: "same person, email case and phone format differ",
                a: vec![person(
                    "a1",
                    "Ada Lovelace",
                    Some("ADA@example.org"),
                    Some("+1 202 555 0143"),
                )],
                b: vec![person(
                    "b1",
                    "Ada L.",
                    Some("ada@example.org"),
                    Some("2025550143"),
                )],
                linked: vec![(0, 0, MatchKey::Email)],
                ambiguous: vec![],
            },
            Case {
                what: "no email in common: the phone decides",
                a: vec![person("a1", "Ada", Some("ada@a.org"), Some("202-555-0143"))],
                b: vec![person("b1", "Ada", Some("ada@b.org"), Some("+12025550143"))],
                linked: vec![(0, 0, MatchKey::Phone)],
                ambiguous: vec![],
            },
            Case {
                what: "names fold for order and accents",
                a: vec![person("a1", "José Núñez", None, None)],
                b: vec![person("b1", "NUNEZ, Jose", None, None)],
                linked: vec![(0, 0, MatchKey::Name)],
                ambiguous: vec![],
            },
            Case {
                what: "two candidates: ambiguous, nothing linked",
                a: vec![
                    person("a1", "Ada Lovelace", Some("ada@x.org"), None),
                    person("a2", "Ada King", Some("ada@x.org"), None),
                ],
                b: vec![person("b1", "Ada", Some("ada@x.org"), None)],
                linked: vec![],
                ambiguous: vec![(Side::B, 0)],
            },
            Case {
                what: "one A claimed by two B: ambiguous",
                a: vec![person("a1", "Ada", Some("ada@x.org"), None)],
                b: vec![
                    person("b1", "Ada", Some("ada@x.org"), None),
                    person("b2", "Ada", Some("ADA@x.org"), None),
                ],
                linked: vec![],
                ambiguous: vec![(Side::A, 0)],
            },
            Case {
                what: "strangers stay unlinked",
                a: vec![person("a1", "Ada", Some("ada@x.org"), None)],
                b: vec![person("b1", "Alan", Some("alan@x.org"), None)],
                linked: vec![],
                ambiguous: vec![],
            },
        ];
        for case in cases {
            let a: Vec<&Record> = case.a.iter().collect();
            let b: Vec<&Record> = case.b.iter().collect();
            let got = m.pair_up(&a, &b);
            let linked: Vec<_> = got.linked.iter().map(|l| (l.a, l.b, l.key)).collect();
            let ambiguous: Vec<_> = got.ambiguous.iter().map(|x| (x.side, x.item)).collect();
            assert_eq!(linked, case.linked, "{}", case.what);
            assert_eq!(ambiguous, case.ambiguous, "{}", case.what);
        }
    }

    #[test]
    fn duplicates_on_one_side_are_reported() {
        let m = matcher();
        let a1 = person("a1", "Ada", Some("ada@x.org"), None);
        let a2 = person("a2", "Ada K", Some("Ada@X.org"), None);
        let got = m.pair_up(&[&a1, &a2], &[]);
        assert_eq!(got.duplicates.len(), 1);
        assert_eq!(got.duplicates[0].side, Side::A);
        assert_eq!(got.duplicates[0].items, vec![0, 1]);
    }
}
