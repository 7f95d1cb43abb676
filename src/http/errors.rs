//! actix-web's own extractor errors (query strings, paths) and unknown routes, answered as
//! problem documents like every other error.

use actix_web::{web, HttpResponse};

use super::problem::ApiError;

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _| {
        let message = err.to_string();
        let field = message.split('`').nth(1).unwrap_or("query").to_owned();
        ApiError::field(&field, message.replace("Query deserialize error: ", "")).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_, req| {
        ApiError::not_found(format!("no resource at {}", req.path())).into()
    })
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such resource"))
}
