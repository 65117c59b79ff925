//! `/api/skills…`: the vault's skills (`.skills/`, a protected folder that changes only
//! here), per the contract; uploads are checked entry by entry before anything is
//! written. The work is the extensions crate's [`skills`].

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use parachute_core::app::AppState;
use parachute_extensions::skills::{self, Skill, SkillError};
use parachute_extensions::Extensions;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiMultipart};

/// Largest archive accepted (what it inflates to is bounded separately).
const MAX_UPLOAD: usize = 20 * 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, delete))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(upload))
                .layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
}

impl From<SkillError> for ApiError {
    fn from(e: SkillError) -> Self {
        match e {
            SkillError::NotFound(_) => ApiError::NotFound(e.to_string()),
            SkillError::Exists(_) => ApiError::Conflict(e.to_string()),
            SkillError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            SkillError::Io(_) => ApiError::internal(e),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SkillError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(Into::into)
}

/// The skills.
#[derive(Serialize, ToSchema)]
struct SkillList {
    skills: Vec<Skill>,
}

/// Every skill in `.skills/`, by name.
#[utoipa::path(get, path = "/api/skills", tag = "skills", responses((status = 200, body = SkillList)))]
async fn list(State(s): State<AppState>) -> Result<Json<SkillList>, ApiError> {
    let dir = s.settings.paths.skills_dir();
    let skills = blocking(move || Ok(skills::list(&dir))).await?;
    Ok(Json(SkillList { skills }))
}

/// One skill (by name, file or folder name).
#[utoipa::path(get, path = "/api/skills/{name}", tag = "skills",
    params(("name" = String, Path, description = "Skill name")),
    responses((status = 200, body = Skill), (status = 404, description = "No such skill")))]
async fn get_one(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Skill>, ApiError> {
    let dir = s.settings.paths.skills_dir();
    let skill =
        blocking(move || skills::get(&dir, &name).ok_or(SkillError::NotFound(name))).await?;
    Ok(Json(skill))
}

/// A skill just written.
#[derive(Serialize, ToSchema)]
struct SkillWritten {
    success: bool,
    skill: Skill,
}

/// A skill removed.
#[derive(Serialize, ToSchema)]
struct SkillDeleted {
    success: bool,
    /// The name it was asked by.
    deleted: String,
}

/// A new single-file skill.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewSkill {
    name: String,
    description: Option<String>,
    content: String,
}

/// Writes `.skills/{name}.md` with `name`/`description` frontmatter; 409 if it exists.
#[utoipa::path(post, path = "/api/skills", tag = "skills", request_body = NewSkill,
    responses((status = 200, body = SkillWritten), (status = 400, description = "Invalid"),
        (status = 409, description = "Exists")))]
async fn create(
    State(s): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    ApiJson(body): ApiJson<NewSkill>,
) -> Result<Json<SkillWritten>, ApiError> {
    let dir = s.settings.paths.skills_dir();
    let _one = ext.config_writes.lock().await;
    let skill = blocking(move || {
        skills::create(&dir, &body.name, body.description.as_deref(), &body.content)
    })
    .await?;
    Ok(Json(SkillWritten {
        success: true,
        skill,
    }))
}

/// Removes a skill (its file, or its folder).
#[utoipa::path(delete, path = "/api/skills/{name}", tag = "skills",
    params(("name" = String, Path, description = "Skill name")),
    responses((status = 200, body = SkillDeleted), (status = 404, description = "No such skill")))]
async fn delete(
    State(s): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    Path(name): Path<String>,
) -> Result<Json<SkillDeleted>, ApiError> {
    let dir = s.settings.paths.skills_dir();
    let _one = ext.config_writes.lock().await;
    let n = name.clone();
    blocking(move || skills::delete(&dir, &n)).await?;
    Ok(Json(SkillDeleted {
        success: true,
        deleted: name,
    }))
}

/// Installs a skill from a `.skill` or `.zip` archive (multipart field `file`) into
/// `.skills/{stem}/`. Refused, with nothing written: `..` or absolute entries, symlinks,
/// more than 1,000 entries, a file over 10 MB or more than 50 MB in all.
#[utoipa::path(post, path = "/api/skills/upload", tag = "skills",
    request_body(content = String, content_type = "multipart/form-data", description = "field `file`"),
    responses((status = 200, body = SkillWritten), (status = 400, description = "Refused archive"),
        (status = 409, description = "Exists")))]
async fn upload(
    State(s): State<AppState>,
    Extension(ext): Extension<Arc<Extensions>>,
    ApiMultipart(mut form): ApiMultipart,
) -> Result<Json<SkillWritten>, ApiError> {
    let mut file = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::BadRequest(format!("bad upload: {e}")))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("skill.zip").to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::BadRequest(format!("bad upload: {e}")))?;
        file = Some((name, bytes));
        break;
    }
    let (name, bytes) =
        file.ok_or_else(|| ApiError::BadRequest("the upload has no `file` field".into()))?;
    let dir = s.settings.paths.skills_dir();
    let _one = ext.config_writes.lock().await;
    let skill = blocking(move || {
        let folder = skills::upload::install(&dir, &name, &bytes)?;
        skills::get(&dir, &folder)
            .ok_or_else(|| SkillError::Io("the skill was installed but cannot be read".into()))
    })
    .await?;
    Ok(Json(SkillWritten {
        success: true,
        skill,
    }))
}
