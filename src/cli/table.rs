//! Tables as kubectl lays them out, and kubectl's human durations (the AGE column).

use k8s_openapi::jiff::Timestamp;

/// kubectl's `duration.HumanDuration` (k8s.io/apimachinery/pkg/util/duration), the AGE column:
/// `seconds` is the age truncated to whole seconds.
///
/// | age | shown |
/// |---|---|
/// | < -1s | `<invalid>` |
/// | -1s .. 0s | `0s` |
/// | < 2m | seconds: `90s` |
/// | < 10m | minutes and seconds: `5m30s` (`5m` on the minute) |
/// | < 3h | minutes: `125m` |
/// | < 8h | hours and minutes: `3h5m` (`3h` on the hour) |
/// | < 48h | hours: `30h` |
/// | < 8d | days and hours: `3d4h` (`3d`) |
/// | < 2y | days: `300d` |
/// | < 8y | years and days: `3y12d` (`3y`) |
/// | otherwise | years: `9y` |
pub fn human_duration(seconds: i64) -> String {
    match seconds {
        s if s < -1 => "<invalid>".into(),
        s if s < 0 => "0s".into(),
        // The dev cluster's Table responses use the same formatter: one implementation.
        s => rollgit_devcluster::table::human_duration(std::time::Duration::from_secs(
            u64::try_from(s).unwrap_or(0),
        )),
    }
}

/// The AGE of an object created at `created`, seen at `now` (`<unknown>` without a timestamp,
/// as kubectl).
pub fn age(created: Option<Timestamp>, now: Timestamp) -> String {
    match created {
        Some(t) => human_duration(now.duration_since(t).as_secs()),
        None => "<unknown>".into(),
    }
}

/// Lays out rows as kubectl's tabwriter does: every column but the last padded to its widest
/// cell plus 3 spaces (at least 6 wide), trailing spaces trimmed.
pub fn format_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            let w = rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0);
            (w + 3).max(6)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < r.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_duration_matches_kubectl() {
        let cases: &[(i64, &str)] = &[
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (90, "90s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (330, "5m30s"),
            (599, "9m59s"),
            (600, "10m"),
            (610, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (8 * 3600 - 1, "7h59m"),
            (8 * 3600, "8h"),
            (30 * 3600, "30h"),
            (48 * 3600 - 1, "47h"),
            (48 * 3600, "2d"),
            (76 * 3600, "3d4h"),
            (8 * 86400 - 1, "7d23h"),
            (8 * 86400, "8d"),
            (300 * 86400, "300d"),
            (2 * 365 * 86400 - 1, "729d"),
            (2 * 365 * 86400, "2y"),
            (3 * 365 * 86400 + 12 * 86400, "3y12d"),
            (8 * 365 * 86400, "8y"),
            (9 * 365 * 86400 + 100 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(*secs), *want, "{secs}s");
        }
    }

    #[test]
    fn age_is_measured_from_the_creation_timestamp() {
        let created: Timestamp = "2024-01-01T00:00:00Z".parse().expect("timestamp");
        let now: Timestamp = "2024-01-01T00:02:00.900Z".parse().expect("timestamp");
        assert_eq!(age(Some(created), now), "2m");
        assert_eq!(age(None, now), "<unknown>");
    }
}
