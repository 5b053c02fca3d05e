//! UTC timestamps as text (RFC 3339), without a date library: the store writes them for
//! people to read, and the OIDC code names token expiry times in its errors.

/// `YYYY-MM-DDTHH:MM:SSZ` for `secs` since the Unix epoch, with `.mmm` before the `Z` when
/// `millis` is given (proleptic Gregorian calendar).
pub fn format_utc(secs: i64, millis: Option<i64>) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    match millis {
        Some(ms) => format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z"),
        None => format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"),
    }
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn dates_across_eras_and_leap_days() {
        assert_eq!(format_utc(0, None), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(0, Some(7)), "1970-01-01T00:00:00.007Z");
        assert_eq!(format_utc(951_782_400, None), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(-1, None), "1969-12-31T23:59:59Z");
        assert_eq!(format_utc(253_402_300_799, None), "9999-12-31T23:59:59Z");
    }
}
