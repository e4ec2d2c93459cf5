//! Test-only crate: the model-based randomized sync tests, crash points and
//! safety-brake tests live in `tests/model` (one integration binary). This
//! library is empty on purpose.
