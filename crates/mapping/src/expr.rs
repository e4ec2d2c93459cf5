//! CEL expressions over one record, compiled once from config: the
//! language of computed fields (`to_b = "given_name + ' ' + family_name"`)
//! and filters (`filter_a = "'active-candidate' in categories"`).
//!
//! A record's fields are the expression's variables: `title`, `emails`,
//! `custom.owner` (a `custom` map). Fields a record lacks are still
//! declared — empty text, or an empty list for multi-valued fields — so an
//! expression never fails only because a field is blank. Expressions are
//! limited in length and nesting before they are parsed, and both parsing
//! and evaluation run behind `catch_unwind`: a bad expression is a config
//! error, a bad evaluation is an error for that one item, never a crash.

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use tandem_record::{Kind, Record, Value};

/// The longest expression accepted, in bytes.
pub const MAX_LEN: usize = 1000;
/// The deepest nesting of brackets accepted.
pub const MAX_DEPTH: usize = 24;

/// Fields holding lists; declared as `[]` when a record lacks them.
const LIST_FIELDS: &[&str] = &[
    "emails",
    "phones",
    "addresses",
    "urls",
    "categories",
    "attendees",
    "overrides",
    "related_to",
];

/// An expression that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("expression is {len} bytes long; at most {MAX_LEN} are allowed")]
    TooLong { len: usize },
    #[error("expression nests brackets {depth} deep; at most {MAX_DEPTH} are allowed")]
    TooDeep { depth: usize },
    #[error("expression does not parse: {0}")]
    Parse(String),
}

/// An evaluation that failed for one record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Failed(String),
    #[error("the expression gave {got}, expected {want}")]
    WrongType { got: String, want: &'static str },
    #[error("the expression interpreter failed internally")]
    Panicked,
}

/// A compiled CEL expression.
#[derive(Clone)]
pub struct Expr {
    source: String,
    program: Arc<cel::Program>,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

impl Expr {
    /// Checks the limits, then parses.
    pub fn compile(source: &str) -> Result<Expr, ExprError> {
        if source.len() > MAX_LEN {
            return Err(ExprError::TooLong { len: source.len() });
        }
        let depth = nesting(source);
        if depth > MAX_DEPTH {
            return Err(ExprError::TooDeep { depth });
        }
        let parsed = catch_unwind(|| cel::Program::compile(source))
            .map_err(|_| ExprError::Parse("the parser failed internally".into()))?;
        let program = parsed.map_err(|e| ExprError::Parse(e.to_string().trim().to_string()))?;
        Ok(Expr {
            source: source.to_string(),
            program: Arc::new(program),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates over `record`'s fields; a null or empty result is `None`.
    pub fn eval(&self, record: &Record) -> Result<Option<Value>, EvalError> {
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut context = cel::Context::default();
            for (name, value) in variables(record) {
                context.add_variable_from_value(name, value);
            }
            self.program.execute(&context)
        }))
        .map_err(|_| EvalError::Panicked)?;
        let value = result.map_err(|e| EvalError::Failed(e.to_string()))?;
        from_cel(&value).map(|v| v.filter(|v| !v.is_empty()))
    }

    /// Evaluates a condition: the result must be a boolean.
    pub fn test(&self, record: &Record) -> Result<bool, EvalError> {
        match self.eval(record)? {
            Some(Value::Bool(b)) => Ok(b),
            other => Err(EvalError::WrongType {
                got: other.map_or_else(|| "null".to_string(), |v| format!("`{v}`")),
                want: "true or false",
            }),
        }
    }
}

/// The deepest bracket nesting, ignoring brackets inside string literals.
fn nesting(source: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in source.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    deepest
}

/// The variables an expression sees for `record`.
fn variables(record: &Record) -> BTreeMap<String, cel::Value> {
    let mut vars: BTreeMap<String, cel::Value> = BTreeMap::new();
    for kind in Kind::ALL {
        if kind != record.kind {
            continue;
        }
        for field in kind.fields() {
            let blank = if LIST_FIELDS.contains(field) {
                cel::Value::List(Arc::new(Vec::new()))
            } else {
                cel::Value::String(Arc::new(String::new()))
            };
            vars.insert(field.to_string(), blank);
        }
    }
    vars.insert(
        "uid".into(),
        cel::Value::String(Arc::new(record.uid.clone())),
    );
    let mut nested: BTreeMap<String, HashMap<cel::objects::Key, cel::Value>> = BTreeMap::new();
    nested.insert("custom".into(), HashMap::new());
    for (name, value) in record.fields.iter() {
        match name.split_once('.') {
            Some((head, rest)) => {
                nested
                    .entry(head.to_string())
                    .or_default()
                    .insert(cel::objects::Key::from(rest.to_string()), to_cel(value));
            }
            None => {
                vars.insert(name.clone(), to_cel(value));
            }
        }
    }
    for (head, map) in nested {
        vars.insert(head, cel::Value::Map(cel::objects::Map::from(map)));
    }
    vars
}

fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Text(s) | Value::Decimal(s) | Value::Date(s) => {
            cel::Value::String(Arc::new(s.clone()))
        }
        Value::Integer(i) => cel::Value::Int(*i),
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::DateTime { .. } => cel::Value::String(Arc::new(value.to_string())),
        Value::List(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Map(m) => {
            let map: HashMap<cel::objects::Key, cel::Value> = m
                .iter()
                .map(|(k, v)| (cel::objects::Key::from(k.clone()), to_cel(v)))
                .collect();
            cel::Value::Map(cel::objects::Map::from(map))
        }
    }
}

fn from_cel(value: &cel::Value) -> Result<Option<Value>, EvalError> {
    Ok(Some(match value {
        cel::Value::Null => return Ok(None),
        cel::Value::String(s) => Value::Text(s.to_string()),
        cel::Value::Int(i) => Value::Integer(*i),
        cel::Value::UInt(u) => {
            Value::Integer(i64::try_from(*u).map_err(|_| EvalError::WrongType {
                got: u.to_string(),
                want: "a number that fits 64 bits",
            })?)
        }
        cel::Value::Float(f) => Value::Decimal(f.to_string()),
        cel::Value::Bool(b) => Value::Bool(*b),
        cel::Value::List(items) => Value::List(
            items
                .iter()
                .map(from_cel)
                .filter_map(Result::transpose)
                .collect::<Result<_, _>>()?,
        ),
        cel::Value::Map(m) => {
            let mut out = BTreeMap::new();
            for (k, v) in m.map.iter() {
                let key = match k {
                    cel::objects::Key::String(s) => s.to_string(),
                    cel::objects::Key::Int(i) => i.to_string(),
                    cel::objects::Key::Uint(u) => u.to_string(),
                    cel::objects::Key::Bool(b) => b.to_string(),
                };
                if let Some(v) = from_cel(v)? {
                    out.insert(key, v);
                }
            }
            Value::Map(out)
        }
        other => {
            return Err(EvalError::WrongType {
                got: format!("{:?}", other.type_of()),
                want: "text, a number, true/false, a list or a map",
            })
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> Record {
        Record::new(Kind::Contact, "u1")
            .with("given_name", Value::text("Ada"))
            .with("family_name", Value::text("Lovelace"))
            .with(
                "categories",
                Value::List(vec![Value::text("active-candidate")]),
            )
            .with("custom.owner", Value::text("maria"))
    }

    #[test]
    fn evaluates_over_fields() {
        // (expression, expected result)
        let table: &[(&str, Option<Value>)] = &[
            (
                "given_name + ' ' + family_name",
                Some(Value::text("Ada Lovelace")),
            ),
            ("'active-candidate' in categories", Some(Value::Bool(true))),
            ("'vip' in categories", Some(Value::Bool(false))),
            ("custom.owner", Some(Value::text("maria"))),
            ("has(custom.region)", Some(Value::Bool(false))),
            ("size(emails)", Some(Value::Integer(0))),
            ("title", None),
            ("null", None),
            (
                "[given_name, 'x']",
                Some(Value::List(vec![Value::text("Ada"), Value::text("x")])),
            ),
        ];
        for (source, want) in table {
            let expr = Expr::compile(source).expect(source);
            assert_eq!(&expr.eval(&ada()).expect(source), want, "{source}");
        }
    }

    #[test]
    fn limits_and_errors_never_crash() {
        assert!(matches!(
            Expr::compile(&"1 + ".repeat(400)),
            Err(ExprError::TooLong { .. })
        ));
        let deep = format!("{}1{}", "(".repeat(40), ")".repeat(40));
        assert!(matches!(
            Expr::compile(&deep),
            Err(ExprError::TooDeep { depth: 40 })
        ));
        // Brackets inside strings do not count.
        assert!(Expr::compile(&format!("'{}' == ''", "(".repeat(40))).is_ok());
        assert!(matches!(
            Expr::compile("given_name +"),
            Err(ExprError::Parse(_))
        ));
        // Evaluation errors are values, not panics.
        for source in [
            "1 / 0",
            "given_name + 1",
            "nosuchfield == 1",
            "custom.nope",
            "[1][5]",
        ] {
            let expr = Expr::compile(source).expect(source);
            assert!(expr.eval(&ada()).is_err(), "{source}");
        }
        let not_bool = Expr::compile("given_name").expect("compiles");
        assert!(matches!(
            not_bool.test(&ada()),
            Err(EvalError::WrongType { .. })
        ));
    }
}
