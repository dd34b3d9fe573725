//! Times in the log: milliseconds since the Unix epoch, written as RFC 3339 in UTC
//! (`2026-12-02T15:20:38.771Z`), and the `--since` argument.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A moment, to the millisecond, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0
    }

    /// Now, from the system clock.
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// `2026-12-02 15:20:38`, for text meant for a terminal.
    pub fn short(self) -> String {
        let s = self.to_string();
        format!("{} {}", &s[..10], &s[11..19])
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = i64::try_from(self.0 / 1000).unwrap_or(i64::MAX);
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            self.0 % 1000
        )
    }
}

/// A time that is not `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a time such as 2026-12-02T15:20:38Z")]
pub struct BadTime(String);

impl FromStr for Timestamp {
    type Err = BadTime;

    fn from_str(s: &str) -> Result<Timestamp, BadTime> {
        let bad = || BadTime(s.to_owned());
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32, BadTime> {
            let t = s.get(r).ok_or_else(bad)?;
            if t.bytes().all(|c| c.is_ascii_digit()) {
                t.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let ms = match &s[19..] {
            "Z" => 0,
            rest if rest.len() == 5 && rest.starts_with('.') && rest.ends_with('Z') => num(20..23)?,
            _ => return Err(bad()),
        };
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
            return Err(bad());
        }
        let days = days_from_civil(i64::from(y), mo, d);
        let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec);
        let secs = u64::try_from(secs).map_err(|_| bad())?;
        Ok(Timestamp(secs * 1000 + u64::from(ms)))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `--since`: a duration back from `now` (`30s`, `10m`, `2h`, `1d`) or a time
/// (`2026-12-02T15:20:38Z`).
///
/// # Errors
///
/// A message naming the forms it accepts.
pub fn parse_since(arg: &str, now: Timestamp) -> Result<Timestamp, String> {
    if let Ok(t) = arg.parse::<Timestamp>() {
        return Ok(t);
    }
    let unit = arg.chars().last().unwrap_or(' ');
    let scale: u64 = match unit {
        's' => 1000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => 0,
    };
    match arg[..arg.len() - unit.len_utf8().min(arg.len())].parse::<u64>() {
        Ok(n) if scale > 0 => Ok(Timestamp(now.0.saturating_sub(n.saturating_mul(scale)))),
        _ => Err(format!(
            "`{}` is not a duration (30s, 10m, 2h, 1d) or a time (2026-12-02T15:20:38Z)",
            safeai_policy::Escaped(arg)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() {
        let t = Timestamp(1_796_224_838_771);
        assert_eq!(t.to_string(), "2026-12-02T15:20:38.771Z");
        assert_eq!("2026-12-02T15:20:38.771Z".parse::<Timestamp>(), Ok(t));
        assert_eq!(
            "2026-12-02T15:20:38Z".parse::<Timestamp>(),
            Ok(Timestamp(1_796_224_838_000))
        );
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            "2000-02-29T23:59:59.999Z"
                .parse::<Timestamp>()
                .unwrap()
                .to_string(),
            "2000-02-29T23:59:59.999Z"
        );
        assert_eq!(t.short(), "2026-12-02 15:20:38");
        for bad in [
            "",
            "2026-12-02",
            "2026-13-02T15:20:38Z",
            "2026-12-02T15:20:38+01:00",
            "2026-12-02T15:2x:38Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn since_takes_durations_and_times() {
        let now = Timestamp(10_000_000);
        assert_eq!(parse_since("30s", now), Ok(Timestamp(9_970_000)));
        assert_eq!(parse_since("10m", now), Ok(Timestamp(9_400_000)));
        assert_eq!(parse_since("2h", now), Ok(Timestamp(2_800_000)));
        assert_eq!(parse_since("1d", now), Ok(Timestamp(0)));
        assert_eq!(
            parse_since("2026-12-02T15:20:38Z", now),
            Ok(Timestamp(1_796_224_838_000))
        );
        for bad in ["", "m", "10", "10x", "-5m", "1é"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }
}
