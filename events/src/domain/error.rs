//! Why a command was refused.

use std::fmt;

/// One field that failed validation, named as the API names it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A refused command. Each variant maps to one answer of the protocol.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DomainError {
    /// One or more fields are missing, too long or out of range (422 `validation_failed`).
    #[error("validation failed: {}", list(.0))]
    Validation(Vec<FieldError>),
    /// The actor's roles or relation to the case do not allow this (403 `forbidden`).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The command does not apply in the current state (409 `invalid_transition`).
    #[error("cannot {action} a case that is {state}")]
    InvalidTransition {
        action: &'static str,
        state: &'static str,
    },
    /// The aggregate does not exist (404 `not_found`).
    #[error("not found")]
    NotFound,
    /// The aggregate exists already (409 `already_exists`).
    #[error("already exists")]
    AlreadyExists,
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Collects field errors so that an answer names every bad field at once, not only the first.
#[derive(Default)]
pub struct Validator(Vec<FieldError>);

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Checks a length in characters (not bytes) against an inclusive range. A required value
    /// (`min >= 1`) that is only white space counts as missing.
    pub fn length(&mut self, field: &str, value: &str, min: usize, max: usize) {
        let n = value.chars().count();
        if min >= 1 && value.trim().is_empty() {
            self.error(field, "is required");
        } else if n < min {
            if min == 1 {
                self.error(field, "is required");
            } else {
                self.error(field, format!("must be at least {min} characters"));
            }
        } else if n > max {
            self.error(field, format!("must be at most {max} characters"));
        }
    }

    pub fn finish(self) -> Result<(), DomainError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Validation(self.0))
        }
    }
}
