//! Gantry's configuration, in two shapes.
//!
//! [`raw`] is the file as written: serde types that mirror the TOML (or an `mcpServers` JSON
//! file) and keep source positions for the fields that are checked after parsing. [`Config`]
//! is the validated runtime form the gateway is built from: environment variables expanded,
//! references between servers and endpoints resolved, defaults filled in. Every error names the
//! file, the line and column, the field and what is expected ([`ConfigError`]).
#![deny(missing_docs)]

mod error;
mod expand;
mod health;
mod mcp_json;
mod model;
pub mod raw;
mod validate;

use std::path::Path;

pub use error::ConfigError;
pub use health::*;
pub use model::*;

/// Loads and validates a config file: TOML, or an `mcpServers` JSON file when the name ends
/// in `.json`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with_env(path, &|k| std::env::var(k).ok())
}

/// Like [`load`], reading `${VARS}` through `env`.
pub fn load_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        file: path.display().to_string(),
        message: e.to_string(),
    })?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        mcp_json::load(path, &text, env)
    } else {
        validate::load_toml(path, &text, env)
    }
}

/// Parses TOML text as if it came from `path`, reading `${VARS}` through `env`.
pub fn from_toml_str(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    validate::load_toml(path, text, env)
}

/// Parses an `mcpServers` JSON text as if it came from `path`, reading `${VARS}` through
/// `env` (as [`load`] does for a `.json` file).
pub fn from_mcp_json_str(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    mcp_json::load(path, text, env)
}
