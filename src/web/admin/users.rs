//! Users page: admins create agent and admin accounts (the password is typed
//! or generated and then shown once), disable / enable accounts, and reset
//! passwords (a generated one, shown once). An admin cannot disable
//! themselves, so the editor always keeps at least the acting admin.

use super::sites::store_message;
use super::{see_other, Admin, CsrfOnly, Nav};
use crate::store::{random_password, Role, StoreError, User};
use crate::web::{AppState, WebError};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list).post(create))
        .route("/admin/users/{name}/disable", post(disable))
        .route("/admin/users/{name}/enable", post(enable))
        .route("/admin/users/{name}/reset", post(reset))
}

/// The new-user form's values and errors.
#[derive(Debug, Clone, Default)]
struct UserFormView {
    name: String,
    role: String,
    name_error: Option<String>,
    password_error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<User>,
    form: UserFormView,
}

async fn render(
    admin: &Admin,
    form: UserFormView,
    status: StatusCode,
) -> Result<Response, WebError> {
    let nav = admin.nav("users", "").await?;
    let users = admin.store.list_users().await?;
    Ok((status, UsersPage { nav, users, form }).into_response())
}

async fn list(admin: Admin) -> Result<Response, WebError> {
    render(
        &admin,
        UserFormView {
            role: "agent".into(),
            ..Default::default()
        },
        StatusCode::OK,
    )
    .await
}

/// The new-user form as submitted.
#[derive(Debug, Deserialize)]
struct NewUser {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    /// Empty: generate one.
    #[serde(default)]
    password: String,
}

async fn create(admin: Admin, Form(form): Form<NewUser>) -> Result<Response, WebError> {
    admin.check_csrf(&form.csrf).await?;
    let mut view = UserFormView {
        name: form.name.trim().to_owned(),
        role: form.role.clone(),
        ..Default::default()
    };
    let role = match form.role.as_str() {
        "agent" => Role::Agent,
        "admin" => Role::Admin,
        other => {
            return Err(WebError::BadRequest(format!(
                "unknown role `{other}` (agent or admin)"
            )))
        }
    };
    if let Err(e) = crate::store::users::validate_name(&view.name) {
        view.name_error = Some(store_message(&e));
    }
    let generated = form.password.is_empty();
    let password = if generated {
        random_password()
    } else {
        form.password.clone()
    };
    if let Err(e) = crate::store::editor::check_password(&password) {
        view.password_error = Some(store_message(&e));
    }
    if view.name_error.is_none() && view.password_error.is_none() {
        match admin
            .store
            .create_user_by(&view.name, role, &password, &admin.user.name)
            .await
        {
            Ok(user) => {
                let message = format!(
                    "{} `{}` created.",
                    if role == Role::Admin {
                        "Admin"
                    } else {
                        "Agent"
                    },
                    user.name
                );
                if generated {
                    admin
                        .flash_secret(
                            true,
                            format!("{message} The generated password is shown once below."),
                            Some(password),
                        )
                        .await?;
                } else {
                    admin.flash(true, message).await?;
                }
                return Ok(see_other("/admin/users"));
            }
            Err(StoreError::Duplicate(_)) => {
                view.name_error = Some(format!("a user named `{}` already exists", view.name))
            }
            Err(e @ StoreError::Invalid(_)) => view.name_error = Some(store_message(&e)),
            Err(e) => return Err(e.into()),
        }
    }
    render(&admin, view, StatusCode::UNPROCESSABLE_ENTITY).await
}

async fn set_disabled(
    admin: Admin,
    name: String,
    form: CsrfOnly,
    disabled: bool,
) -> Result<Response, WebError> {
    admin.check_csrf(&form.csrf).await?;
    if disabled && name == admin.user.name {
        return Err(WebError::BadRequest(
            "you cannot disable your own account".into(),
        ));
    }
    admin
        .store
        .set_disabled(&name, disabled, &admin.user.name)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(m) => WebError::NotFound(m),
            other => other.into(),
        })?;
    let what = if disabled {
        "disabled: they can no longer sign in"
    } else {
        "enabled"
    };
    admin.flash(true, format!("User `{name}` {what}.")).await?;
    Ok(see_other("/admin/users"))
}

async fn disable(
    admin: Admin,
    Path(name): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    set_disabled(admin, name, f, true).await
}

async fn enable(
    admin: Admin,
    Path(name): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    set_disabled(admin, name, f, false).await
}

async fn reset(
    admin: Admin,
    Path(name): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    admin.check_csrf(&form.csrf).await?;
    let password = random_password();
    admin
        .store
        .set_password(&name, &password, &admin.user.name)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(m) => WebError::NotFound(m),
            other => other.into(),
        })?;
    admin
        .flash_secret(
            true,
            format!("The password of `{name}` was reset (their open sessions are ended and login sessions signed out). The new password is shown once below."),
            Some(password),
        )
        .await?;
    Ok(see_other("/admin/users"))
}
