//! The config parser: TOML (`gantry_config::from_toml_str`) and mcpServers JSON
//! (`gantry_config::from_mcp_json_str`), chosen by the first byte. Any text either loads or
//! is refused with an error; it never panics. `${VARS}` read from a fixed map; relative paths
//! resolve under a folder that does not exist.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fn env(k: &str) -> Option<String> {
    match k {
        "TOKEN" => Some("s3cret".into()),
        "HOME" => Some("/home/fuzz".into()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let dir = Path::new("/nonexistent-gantry-fuzz");
    let loaded = if kind % 2 == 0 {
        gantry_config::from_toml_str(&dir.join("gantry.toml"), text, &env)
    } else {
        gantry_config::from_mcp_json_str(&dir.join("mcp.json"), text, &env)
    };
    match loaded {
        Ok(c) => {
            assert!(!c.endpoints.is_empty(), "a loaded config has an endpoint");
            for e in c.endpoints.values() {
                for s in &e.servers {
                    assert!(c.servers.contains_key(s), "endpoint server {s} exists");
                }
            }
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(!shown.is_empty());
        }
    }
});
