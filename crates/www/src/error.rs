//! The one mapping from errors to HTTP responses.
//!
//! User mistakes get their 4xx and a short text; internal failures are logged in full and
//! answered with a generic 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error a handler returns.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Unknown path or entity.
    #[error("{0}")]
    NotFound(String),
    /// Malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// Not allowed by the access policy.
    #[error("{0}")]
    Forbidden(String),
    /// Something broke inside.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<data::DataError> for WebError {
    fn from(e: data::DataError) -> Self {
        match e {
            data::DataError::InvalidPath(_) | data::DataError::NotFound(_) => {
                WebError::NotFound(e.to_string())
            }
            data::DataError::BadRequest(m) => WebError::BadRequest(m),
            data::DataError::Store(s) => WebError::Internal(s.to_string()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = match &self {
            WebError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        let body = json!({ "error": message }).to_string();
        (
            status,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            body,
        )
            .into_response()
    }
}
