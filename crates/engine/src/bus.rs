//! The event bus: every state change is published here under Buildbot's routing keys.
//!
//! Pages, `/ws`, SSE and status targets subscribe. A routing key is a list of segments ending
//! with the event name (`builds/12/finished`); a subscription pattern of the same length may
//! use `*` for one segment. Publishing never blocks: a slow subscriber that falls behind the
//! channel's capacity misses events and is told so by `RecvError::Lagged`.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

/// One published event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Routing key segments, ending with the event name.
    pub key: Arc<[String]>,
    /// The full entity (or delta for property updates), shaped as in the REST API.
    pub payload: Arc<Value>,
}

impl Event {
    /// The key joined with `/`.
    pub fn key_string(&self) -> String {
        self.key.join("/")
    }

    /// True if `pattern` (segments, `*` matching one) matches this event's key.
    pub fn matches(&self, pattern: &[&str]) -> bool {
        pattern.len() == self.key.len()
            && pattern
                .iter()
                .zip(self.key.iter())
                .all(|(p, k)| *p == "*" || p == k)
    }
}

/// The bus. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    sender: broadcast::Sender<Event>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new()
    }
}

impl Bus {
    /// A bus with room for a burst of events per subscriber.
    pub fn new() -> Bus {
        let (sender, _) = broadcast::channel(65536);
        Bus { sender }
    }

    /// Receives every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// Publishes `payload` under each of `keys` (each a `/`-joined routing key).
    pub fn publish(&self, keys: &[String], payload: Value) {
        let payload = Arc::new(payload);
        for key in keys {
            let segments: Arc<[String]> = key.split('/').map(str::to_string).collect();
            // No receivers is normal (nobody watching); the event is simply dropped.
            let _ = self.sender.send(Event {
                key: segments,
                payload: payload.clone(),
            });
        }
    }
}

/// Routing keys for each resource, exactly as spec §9 lists them.
pub mod keys {
    /// Keys of a build event.
    pub fn build(
        builderid: i64,
        number: i64,
        buildid: i64,
        workerid: Option<i64>,
        event: &str,
    ) -> Vec<String> {
        let mut keys = vec![
            format!("builders/{builderid}/builds/{number}/{event}"),
            format!("builds/{buildid}/{event}"),
        ];
        if let Some(w) = workerid {
            keys.push(format!("workers/{w}/builds/{buildid}/{event}"));
        }
        keys
    }

    /// Keys of a step event.
    pub fn step(buildid: i64, stepid: i64, event: &str) -> Vec<String> {
        vec![
            format!("builds/{buildid}/steps/{stepid}/{event}"),
            format!("steps/{stepid}/{event}"),
        ]
    }

    /// Keys of a log event.
    pub fn log(logid: i64, stepid: i64, slug: &str, event: &str) -> Vec<String> {
        vec![
            format!("logs/{logid}/{event}"),
            format!("steps/{stepid}/logs/{slug}/{event}"),
        ]
    }

    /// Keys of a build request event.
    pub fn buildrequest(bsid: i64, builderid: i64, brid: i64, event: &str) -> Vec<String> {
        vec![
            format!("buildsets/{bsid}/builders/{builderid}/buildrequests/{brid}/{event}"),
            format!("buildrequests/{brid}/{event}"),
            format!("builders/{builderid}/buildrequests/{brid}/{event}"),
        ]
    }

    /// Keys of a buildset event.
    pub fn buildset(bsid: i64, event: &str) -> Vec<String> {
        vec![format!("buildsets/{bsid}/{event}")]
    }

    /// Keys of a change event.
    pub fn change(changeid: i64) -> Vec<String> {
        vec![format!("changes/{changeid}/new")]
    }

    /// Keys of a worker event.
    pub fn worker(workerid: i64, event: &str) -> Vec<String> {
        vec![format!("workers/{workerid}/{event}")]
    }

    /// Keys of a build properties delta.
    pub fn build_properties(buildid: i64) -> Vec<String> {
        vec![format!("builds/{buildid}/properties/update")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wildcard_matches_one_segment() {
        let bus = Bus::new();
        let mut rx = bus.subscribe();
        bus.publish(
            &keys::build(1, 7, 42, Some(3), "finished"),
            serde_json::json!({"buildid": 42}),
        );
        let first = rx.recv().await.expect("event published");
        assert!(first.matches(&["builders", "1", "builds", "*", "finished"]));
        assert!(!first.matches(&["builders", "*", "finished"]));
        let second = rx.recv().await.expect("second key");
        assert_eq!(second.key_string(), "builds/42/finished");
        assert!(second.matches(&["builds", "*", "*"]));
    }
}
