//! hydrant's `/metrics` (Prometheus text), scraped and read.

use super::Stack;

/// `GET /metrics` (which must answer 200) as text.
pub async fn metrics(s: &Stack) -> String {
    let r = s.client.get(&s.url("/metrics"), None).await;
    assert_eq!(r.status, 200);
    String::from_utf8(r.body.to_vec()).unwrap()
}

/// Sum of the samples of `name` whose labels include every pair of `labels`; `None` if no
/// sample matches.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut sum = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (n, l) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let has = |k: &str, v: &str| l.split(',').any(|p| p == format!("{k}=\"{v}\""));
        if n == name && labels.iter().all(|(k, v)| has(k, v)) {
            *sum.get_or_insert(0.0) += value.parse::<f64>().unwrap();
        }
    }
    sum
}
