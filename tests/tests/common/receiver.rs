//! A webhook receiver for tests: a real axum server on port 0 that records
//! every call and answers the statuses of its script in turn.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// In a script: answer nothing for 5 s (then 200, too late).
pub const HANG: u16 = 1;

/// One call the receiver got.
#[derive(Clone, Debug)]
pub struct Call {
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
    pub answered: u16,
}

impl Call {
    pub fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_string()
    }
    pub fn event(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A receiver answering the statuses of `script` in turn, then 200
/// ([`HANG`]: no answer for 5 s).
pub struct Receiver {
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    /// Deliveries (by `webhook-id`) being answered now, and how often a
    /// call came for one that was already being answered.
    in_flight: Arc<Mutex<(std::collections::HashSet<String>, usize)>>,
    _server: tokio::task::JoinHandle<()>,
}

pub async fn receiver(script: &[u16]) -> Receiver {
    let calls: Arc<Mutex<Vec<Call>>> = Default::default();
    let in_flight: Arc<Mutex<(std::collections::HashSet<String>, usize)>> = Default::default();
    let script = Arc::new(Mutex::new(
        script.iter().copied().collect::<VecDeque<u16>>(),
    ));
    let app = {
        let calls = calls.clone();
        let in_flight = in_flight.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let calls = calls.clone();
                    let script = script.clone();
                    let in_flight = in_flight.clone();
                    async move {
                        // Held while this call is answered (dropped too when
                        // the caller goes away mid-call).
                        let id = headers
                            .get("webhook-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        let _answering = Answering::start(in_flight, id);
                        let status = script.lock().unwrap().pop_front().unwrap_or(200);
                        calls.lock().unwrap().push(Call {
                            headers,
                            body: body.to_vec(),
                            answered: status,
                        });
                        if status == HANG {
                            // Past any outbound timeout a test sets.
                            tokio::time::sleep(Duration::from_secs(5)).await;
                        }
                        axum::http::StatusCode::from_u16(if status == HANG { 200 } else { status })
                            .unwrap()
                    }
                },
            ),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver {
        url,
        calls,
        in_flight,
        _server: server,
    }
}

/// One call being answered, in the receiver's in-flight set.
struct Answering {
    set: Arc<Mutex<(std::collections::HashSet<String>, usize)>>,
    id: String,
}

impl Answering {
    fn start(set: Arc<Mutex<(std::collections::HashSet<String>, usize)>>, id: String) -> Self {
        {
            let mut s = set.lock().unwrap();
            if !s.0.insert(id.clone()) {
                s.1 += 1;
            }
        }
        Answering { set, id }
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.set.lock().unwrap().0.remove(&self.id);
    }
}

impl Receiver {
    /// How often a delivery was called while a call of it was still being
    /// answered (two instances on one delivery at once).
    pub fn overlaps(&self) -> usize {
        self.in_flight.lock().unwrap().1
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits until `n` calls were answered 2xx.
    pub async fn delivered(&self, n: usize) -> Vec<Call> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok: Vec<Call> = self
                .calls()
                .into_iter()
                .filter(|c| (200..300).contains(&c.answered))
                .collect();
            if ok.len() >= n {
                return ok;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} deliveries arrived: {:?}",
                ok.len(),
                self.calls()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
