//! `[health]` and `[servers.<name>.health]`.

use std::time::Duration;

use toml::Spanned;

use super::Source;
use crate::error::ConfigError;
use crate::health::*;
use crate::raw::RawHealth;

pub(super) fn build_settings(
    src: &Source<'_>,
    raw: Option<&Spanned<RawHealth>>,
) -> Result<HealthSettings, ConfigError> {
    let mut out = HealthSettings::default();
    let Some(raw) = raw else {
        return Ok(out);
    };
    let h = raw.get_ref();
    out.defaults = overlay(src, "health", &HealthConfig::default(), h)?;
    if let Some(r) = &h.readyz {
        out.readyz = match r.get_ref().as_str() {
            "attempted" => ReadyRule::Attempted,
            "require_all" => ReadyRule::RequireAll,
            other => {
                return Err(src.err(
                    r,
                    "health.readyz",
                    format!("unknown rule {other:?}: expected \"attempted\" (ready once every server was tried) or \"require_all\" (ready only while no server is unhealthy)"),
                ));
            }
        };
    }
    if let Some(n) = &h.max_concurrent_spawns {
        out.max_concurrent_spawns = match usize::try_from(*n.get_ref()) {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(src.err(
                    n,
                    "health.max_concurrent_spawns",
                    "expected a positive whole number (stdio servers started at once)",
                ));
            }
        };
    }
    Ok(out)
}

pub(super) fn build_server(
    src: &Source<'_>,
    name: &str,
    defaults: &HealthConfig,
    raw: &Spanned<RawHealth>,
) -> Result<HealthConfig, ConfigError> {
    let field = format!("servers.{name}.health");
    let h = raw.get_ref();
    if let Some(r) = &h.readyz {
        return Err(src.err(
            r,
            format!("{field}.readyz"),
            "readyz applies to the whole gateway: set it in [health]",
        ));
    }
    if let Some(n) = &h.max_concurrent_spawns {
        return Err(src.err(
            n,
            format!("{field}.max_concurrent_spawns"),
            "max_concurrent_spawns applies to the whole gateway: set it in [health]",
        ));
    }
    overlay(src, &field, defaults, h)
}

/// `base` with the keys `raw` sets.
fn overlay(
    src: &Source<'_>,
    field: &str,
    base: &HealthConfig,
    raw: &RawHealth,
) -> Result<HealthConfig, ConfigError> {
    let f = |k: &str| format!("{field}.{k}");
    let mut out = base.clone();
    if let Some(v) = &raw.interval {
        out.interval = Some(secs(src, v, &f("interval"), true)?).filter(|d| !d.is_zero());
    }
    if let Some(v) = &raw.timeout {
        out.timeout = secs(src, v, &f("timeout"), false)?;
    }
    if let Some(v) = &raw.slow {
        out.slow = secs(src, v, &f("slow"), false)?;
    }
    if let Some(v) = &raw.unhealthy_after {
        out.unhealthy_after = count(src, v, &f("unhealthy_after"), false)?;
    }
    if let Some(v) = &raw.circuit_failures {
        out.circuit_failures = count(src, v, &f("circuit_failures"), true)?;
    }
    if let Some(v) = &raw.circuit_window {
        out.circuit_window = secs(src, v, &f("circuit_window"), false)?;
    }
    if let Some(v) = &raw.circuit_cooldown {
        out.circuit_cooldown = secs(src, v, &f("circuit_cooldown"), false)?;
    }
    if let Some(v) = &raw.crash_loop_restarts {
        out.crash_loop_restarts = count(src, v, &f("crash_loop_restarts"), false)?;
    }
    if let Some(v) = &raw.crash_loop_window {
        out.crash_loop_window = secs(src, v, &f("crash_loop_window"), false)?;
    }
    Ok(out)
}

fn secs(
    src: &Source<'_>,
    v: &Spanned<f64>,
    field: &str,
    zero: bool,
) -> Result<Duration, ConfigError> {
    let s = *v.get_ref();
    if s.is_finite() && (s > 0.0 || (zero && s == 0.0)) && s < 1e9 {
        Ok(Duration::from_secs_f64(s))
    } else if zero {
        Err(src.err(
            v,
            field,
            "expected a number of seconds, 0 or more (0 disables)",
        ))
    } else {
        Err(src.err(v, field, "expected a positive number of seconds"))
    }
}

fn count(src: &Source<'_>, v: &Spanned<i64>, field: &str, zero: bool) -> Result<u32, ConfigError> {
    match u32::try_from(*v.get_ref()) {
        Ok(n) if n > 0 || zero => Ok(n),
        _ if zero => Err(src.err(v, field, "expected a whole number, 0 or more (0 disables)")),
        _ => Err(src.err(v, field, "expected a positive whole number")),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::health::*;
    use crate::model::Config;

    fn load(text: &str) -> Result<Config, crate::ConfigError> {
        super::super::load_toml(Path::new("gantry.toml"), text, &|_| None)
    }

    #[test]
    fn defaults_apply_and_servers_override_them() {
        let c = load(
            r#"
[health]
interval = 5
circuit_failures = 3
readyz = "require_all"
max_concurrent_spawns = 2
[servers.a]
command = "a"
[servers.b]
command = "b"
[servers.b.health]
interval = 0
circuit_cooldown = 0.5
"#,
        )
        .unwrap();
        assert_eq!(c.health.readyz, ReadyRule::RequireAll);
        assert_eq!(c.health.max_concurrent_spawns, 2);
        let a = &c.servers["a"].health;
        assert_eq!(a.interval, Some(Duration::from_secs(5)));
        assert_eq!(a.circuit_failures, 3);
        assert_eq!(a.circuit_cooldown, DEFAULT_CIRCUIT_COOLDOWN);
        let b = &c.servers["b"].health;
        assert_eq!(b.interval, None, "0 disables checks");
        assert_eq!(b.circuit_failures, 3, "inherited from [health]");
        assert_eq!(b.circuit_cooldown, Duration::from_millis(500));
        let plain = load("[servers.a]\ncommand = \"a\"\n").unwrap();
        assert_eq!(plain.servers["a"].health, HealthConfig::default());
        assert_eq!(plain.health, HealthSettings::default());
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = load("[servers.a]\ncommand = \"a\"\n[servers.a.health]\ntimeout = 0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "gantry.toml:4:11: servers.a.health.timeout: expected a positive number of seconds"
        );
        let e = load("[health]\nreadyz = \"all\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("gantry.toml:2:10: health.readyz: unknown rule \"all\""),
            "{e}"
        );
        let e = load("[health]\ncircuit_failures = -1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("gantry.toml:2:20: health.circuit_failures: expected a whole number"),
            "{e}"
        );
        let e = load("[servers.a]\ncommand = \"a\"\n[servers.a.health]\nreadyz = \"attempted\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("servers.a.health.readyz: readyz applies to the whole gateway"),
            "{e}"
        );
        let e = load("[health]\nintervall = 3\n").unwrap_err().to_string();
        assert!(
            e.contains("gantry.toml:2:1") && e.contains("intervall"),
            "{e}"
        );
    }
}
