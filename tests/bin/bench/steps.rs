//! Sequential network steps: the requests one invocation made, grouped into round
//! trips. Requests whose intervals overlap (each started before the other ended) went
//! out together and cost one step; a request that starts after every earlier one has
//! ended is a new step.

use std::time::Instant;

use crate::bench::proxy::{Exchange, Service};

/// One round trip: the operations that were in flight together, in start order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step(pub Vec<String>);

/// Groups `exchanges` into steps of overlapping intervals.
pub fn round_trips(exchanges: &[Exchange]) -> Vec<Step> {
    let mut sorted: Vec<&Exchange> = exchanges.iter().collect();
    sorted.sort_by_key(|e| e.start);
    let mut steps: Vec<Step> = Vec::new();
    let mut step_end: Option<Instant> = None;
    for exchange in sorted {
        match step_end {
            Some(end) if exchange.start <= end => {
                steps
                    .last_mut()
                    .expect("a step is open")
                    .0
                    .push(exchange.label());
                step_end = Some(end.max(exchange.end));
            }
            _ => {
                steps.push(Step(vec![exchange.label()]));
                step_end = Some(exchange.end);
            }
        }
    }
    steps
}

/// `[GetItem+PutItem] -> [Twilio POST Messages] -> [TransactWriteItems]` (each step's
/// operations in name order), or `none`.
pub fn describe(steps: &[Step]) -> String {
    if steps.is_empty() {
        return "none".into();
    }
    steps
        .iter()
        .map(|step| {
            // Requests in flight together started in no particular order: sort them so
            // that the same step always reads the same.
            let mut operations = step.0.clone();
            operations.sort();
            format!("[{}]", operations.join("+"))
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// The requests to `service` among `exchanges`.
pub fn count(exchanges: &[Exchange], service: Service) -> usize {
    exchanges.iter().filter(|e| e.service == service).count()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn exchange(base: Instant, start: u64, end: u64, operation: &str) -> Exchange {
        Exchange {
            service: Service::Aws,
            operation: operation.into(),
            start: base + Duration::from_millis(start),
            end: base + Duration::from_millis(end),
        }
    }

    #[test]
    fn overlapping_requests_are_one_step() {
        let t = Instant::now();
        let exchanges = [
            exchange(t, 10, 20, "TransactWriteItems"),
            exchange(t, 0, 5, "GetItem"),
            exchange(t, 1, 8, "PutItem"),
            exchange(t, 8, 9, "Publish"), // starts as PutItem ends: still together
        ];
        assert_eq!(
            describe(&round_trips(&exchanges)),
            "[GetItem+Publish+PutItem] -> [TransactWriteItems]"
        );
        assert_eq!(describe(&round_trips(&[])), "none");
    }
}
