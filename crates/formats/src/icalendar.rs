//! stub
use crate::error::FormatError;
use tandem_record::{FieldChange, Record};
pub(crate) fn parse(_t: &str) -> Result<Record, FormatError> { Err(FormatError::new("todo")) }
pub(crate) fn render(_r: &Record) -> Result<String, FormatError> { Err(FormatError::new("todo")) }
pub(crate) fn patch(_t: &str, _c: &[FieldChange]) -> Result<String, FormatError> { Err(FormatError::new("todo")) }
