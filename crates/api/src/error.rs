//! The one place where failures become HTTP responses. Every body is JSON with a
//! `detail`; validation failures use the contract's 422 list shape;
//! internal errors are logged and never shown to clients.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use parachute_core::auth::AuthError;
use parachute_core::db::DbError;
use parachute_core::sessions::SessionError;
use parachute_core::util::disk_full::is_disk_full;
use parachute_core::workspaces::WorkspaceError;

/// How to get a key, shown in every 401.
pub const HOW_TO_GET_A_KEY: &str =
    "Valid API key required. Create one on the server's machine with \
`curl -X POST http://localhost:3333/api/auth/keys -H 'Content-Type: application/json' \
-d '{\"label\":\"my phone\"}'`, then send it as `X-API-Key` or `Authorization: Bearer`.";

/// What a client is told when a write found the disk full (507).
pub const DISK_FULL: &str = "The disk is full, so the change was not saved. \
Free some space and try again.";

/// Every failure a handler can answer with, mapped to the contract's status codes and
/// `{"detail": …}` bodies in one place.
#[derive(Debug)]
pub enum ApiError {
    /// 404 with this message.
    NotFound(String),
    /// 400 with this message.
    BadRequest(String),
    /// 403 with this message (outside the vault, protected, remote-only refusals).
    Forbidden(String),
    /// 409 with this message (already running, already decided).
    Conflict(String),
    /// 503 with this message (a disabled module, a missing component).
    Unavailable(String),
    /// 422 with the contract's list of `{type, loc, msg, input, ctx?}`.
    Validation(Vec<Value>),
    /// 413: the body is over the limit (in bytes).
    PayloadTooLarge(usize),
    /// 415: a JSON body without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 401 with how to get a key.
    Unauthorized,
    /// 500: the message is logged, the client sees a generic text.
    Internal(String),
    /// 507: a write found the disk or quota full; the message is logged, the client
    /// sees [`DISK_FULL`].
    DiskFull(String),
}

impl ApiError {
    /// A failure of the server's own: 507 when it (or an error it was caused by) is a
    /// full disk, told from its type (`parachute_core::util::disk_full`), else 500.
    pub fn internal(e: impl std::error::Error + 'static) -> ApiError {
        if is_disk_full(&e) {
            ApiError::DiskFull(e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    }

    /// [`ApiError::internal`], with what was being done said first in the log.
    pub fn internal_while(doing: &str, e: impl std::error::Error + 'static) -> ApiError {
        let msg = format!("{doing}: {e}");
        if is_disk_full(&e) {
            ApiError::DiskFull(msg)
        } else {
            ApiError::Internal(msg)
        }
    }

    /// One validation item, as pydantic would report it.
    pub fn invalid(
        kind: &str,
        loc: Vec<Value>,
        msg: impl Into<String>,
        input: Value,
        ctx: Option<Value>,
    ) -> ApiError {
        let mut item = json!({"type": kind, "loc": loc, "msg": msg.into(), "input": input});
        if let Some(c) = ctx {
            item["ctx"] = c;
        }
        ApiError::Validation(vec![item])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::NotFound(d) => (StatusCode::NOT_FOUND, json!({"detail": d})),
            ApiError::BadRequest(d) => (StatusCode::BAD_REQUEST, json!({"detail": d})),
            ApiError::Forbidden(d) => (StatusCode::FORBIDDEN, json!({"detail": d})),
            ApiError::Conflict(d) => (StatusCode::CONFLICT, json!({"detail": d})),
            ApiError::Unavailable(d) => (StatusCode::SERVICE_UNAVAILABLE, json!({"detail": d})),
            ApiError::Validation(items) => {
                (StatusCode::UNPROCESSABLE_ENTITY, json!({"detail": items}))
            }
            ApiError::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"detail": format!("Request body too large: the limit is {limit} bytes (setting max_body_bytes)")}),
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({"detail": "Content-Type must be application/json"}),
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({"detail": HOW_TO_GET_A_KEY, "error": "Unauthorized", "message": HOW_TO_GET_A_KEY}),
            ),
            ApiError::DiskFull(msg) => {
                tracing::warn!(error = %msg, "a write failed: the disk is full");
                (
                    StatusCode::INSUFFICIENT_STORAGE,
                    json!({"detail": DISK_FULL}),
                )
            }
            ApiError::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"detail": "Internal server error; see the server log"}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::internal(e)
    }
}

impl From<parachute_bots::BotsError> for ApiError {
    fn from(e: parachute_bots::BotsError) -> Self {
        use parachute_bots::BotsError as B;
        match e {
            B::Config(_) | B::UnknownPlatform(_) | B::NotReady(_) | B::Platform(_) => {
                ApiError::BadRequest(e.to_string())
            }
            B::AlreadyRunning(_) | B::AlreadyResolved(_) => ApiError::Conflict(e.to_string()),
            B::PairingNotFound => ApiError::NotFound(e.to_string()),
            B::Db(d) => d.into(),
            B::Secrets(_) | B::Write(_) => ApiError::internal(e),
        }
    }
}

impl From<parachute_extensions::ModuleError> for ApiError {
    fn from(e: parachute_extensions::ModuleError) -> Self {
        use parachute_extensions::ModuleError as M;
        match e {
            M::NotFound(_) | M::NotPending(_) => ApiError::NotFound(e.to_string()),
            M::Invalid { .. } | M::AboveRequested { .. } => ApiError::BadRequest(e.to_string()),
            M::Changed(_) => ApiError::Conflict(e.to_string()),
            M::Approvals(_) => ApiError::internal(e),
        }
    }
}

impl From<parachute_extensions::BrainError> for ApiError {
    fn from(e: parachute_extensions::BrainError) -> Self {
        ApiError::internal(e)
    }
}

impl From<parachute_core::vault::journal::JournalError> for ApiError {
    fn from(e: parachute_core::vault::journal::JournalError) -> Self {
        use parachute_core::vault::journal::JournalError as J;
        match e {
            J::Empty | J::TooLong(_) => ApiError::BadRequest(e.to_string()),
            J::Path(p) => ApiError::Forbidden(p.to_string()),
            J::Io(_) => ApiError::internal(e),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::NotFound => ApiError::NotFound(e.to_string()),
            SessionError::Db(d) => d.into(),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

impl From<WorkspaceError> for ApiError {
    fn from(e: WorkspaceError) -> Self {
        match e {
            WorkspaceError::NotFound(_) => ApiError::NotFound(e.to_string()),
            WorkspaceError::InvalidSlug(_) | WorkspaceError::Invalid(_) => {
                ApiError::BadRequest(e.to_string())
            }
            WorkspaceError::Io { .. } => ApiError::internal(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::KeyNotFound(_) => ApiError::NotFound(e.to_string()),
            AuthError::InvalidMode(_)
            | AuthError::DisabledOffLoopback(_)
            | AuthError::OverriddenByEnv(_) => ApiError::BadRequest(e.to_string()),
            AuthError::Unreadable { .. } | AuthError::Unwritable { .. } => ApiError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(e: impl Into<ApiError>) -> StatusCode {
        e.into().into_response().status()
    }

    #[test]
    fn a_full_disk_anywhere_in_the_cause_answers_507_and_nothing_else_does() {
        let enospc = || std::io::Error::from_raw_os_error(28);
        assert_eq!(
            status(ApiError::internal(enospc())),
            StatusCode::INSUFFICIENT_STORAGE
        );
        assert_eq!(
            status(ApiError::internal_while("cannot write x", enospc())),
            StatusCode::INSUFFICIENT_STORAGE
        );
        let workspace = WorkspaceError::Io {
            path: "w".into(),
            source: Box::new(enospc()),
        };
        assert_eq!(status(workspace), StatusCode::INSUFFICIENT_STORAGE);
        let denied = std::io::Error::from_raw_os_error(13);
        assert_eq!(
            status(ApiError::internal(denied)),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        // Only the type counts: a message that merely says so is a 500.
        let said = std::io::Error::other("No space left on device");
        assert_eq!(
            status(ApiError::internal(said)),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
