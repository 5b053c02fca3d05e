//! Gantry's control plane: the admin REST API (`/admin/api/v1`, see [`api`]) served on the
//! gateway's listener through [`gantry_proxy::AdminHandler`], and the thread that keeps the
//! API key table of [`gantry_auth::KeyAuthenticator`] in step with the database ([`sync`]).
//!
//! The data plane never reaches the database: it authenticates with the in-memory table, and
//! this crate is the one that owns the connections.
#![deny(missing_docs)]

pub mod api;
pub mod sync;

pub use api::{Admin, change_json, key_json, team_json, user_json};
pub use sync::KeySync;
