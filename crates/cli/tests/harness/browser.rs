//! Headless Chromium driven over the DevTools protocol, shared by the browser tests: open a
//! page, evaluate script in it, click like a user, take screenshots, and collect console
//! errors, exceptions, dialogs and (once [`Browser::watch_network`] is on) failed requests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::wait_for;

/// Debian's Chromium, if installed.
pub fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One headless Chromium and a DevTools connection to its page.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    socket: Socket,
    next_id: u64,
    /// Console errors, exceptions and dialogs seen so far, with the page they came from.
    errors: Vec<String>,
    /// Methods of events seen since the last `visit`.
    seen: Vec<String>,
    current: String,
}

impl Browser {
    /// Starts Chromium with the machine's flags and attaches to its first page.
    pub fn launch(exe: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let stderr = std::fs::File::create(profile.path().join("stderr.log")).expect("log");
        let child = Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start chromium");
        let active = profile.path().join("DevToolsActivePort");
        let port: u16 = wait_for(Duration::from_secs(30), "DevToolsActivePort", || {
            std::fs::read_to_string(&active)
                .ok()?
                .lines()
                .next()?
                .trim()
                .parse()
                .ok()
        });
        let targets = wait_for(Duration::from_secs(30), "a page target", || {
            let out = Command::new("curl")
                .args(["-sS", &format!("http://127.0.0.1:{port}/json/list")])
                .output()
                .ok()?;
            let list: Value = serde_json::from_slice(&out.stdout).ok()?;
            list.as_array()?
                .iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                .map(str::to_string)
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (socket, _) = runtime
            .block_on(tokio_tungstenite::connect_async(targets.as_str()))
            .expect("connect to the DevTools page socket");
        let mut browser = Browser {
            child,
            _profile: profile,
            runtime,
            socket,
            next_id: 0,
            errors: Vec::new(),
            seen: Vec::new(),
            current: "about:blank".to_string(),
        };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({}));
        }
        browser
    }

    /// Sends one command and returns its result; events read meanwhile are recorded.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let text = json!({"id": id, "method": method, "params": params}).to_string();
        self.runtime
            .block_on(self.socket.send(Message::text(text)))
            .expect("send to chromium");
        loop {
            let message = self.read(Duration::from_secs(30), method);
            if message["id"] == id {
                assert!(
                    message.get("error").is_none(),
                    "{method}: {}",
                    message["error"]
                );
                return message["result"].clone();
            }
            self.note(&message);
        }
    }

    /// The next message from Chromium, waiting at most `within`.
    fn read(&mut self, within: Duration, waiting_for: &str) -> Value {
        let socket = &mut self.socket;
        let next = self
            .runtime
            .block_on(async { tokio::time::timeout(within, socket.next()).await });
        let frame = match next {
            Ok(Some(Ok(frame))) => frame,
            Ok(other) => panic!(
                "chromium connection ended waiting for {waiting_for} on {}: {other:?}",
                self.current
            ),
            Err(_) => panic!(
                "no answer from chromium for {waiting_for} on {}; its log:\n{}",
                self.current,
                std::fs::read_to_string(self._profile.path().join("stderr.log"))
                    .unwrap_or_default()
            ),
        };
        match frame {
            Message::Text(text) => serde_json::from_str(text.as_str()).expect("CDP JSON"),
            _ => Value::Null,
        }
    }

    /// Records an event: errors of any kind, and its method for `wait_event`.
    fn note(&mut self, message: &Value) {
        let Some(method) = message["method"].as_str() else {
            return;
        };
        let params = &message["params"];
        let error = match method {
            "Runtime.consoleAPICalled"
                if matches!(params["type"].as_str(), Some("error" | "assert")) =>
            {
                Some(format!("console.{}: {}", params["type"], params["args"]))
            }
            "Runtime.exceptionThrown" => Some(format!("exception: {}", params["exceptionDetails"])),
            "Log.entryAdded" if params["entry"]["level"] == "error" => {
                Some(format!("log: {}", params["entry"]["text"]))
            }
            "Page.javascriptDialogOpening" => Some(format!("dialog: {}", params["message"])),
            "Network.responseReceived" if params["response"]["status"].as_u64() >= Some(400) => {
                Some(format!(
                    "HTTP {} for {}",
                    params["response"]["status"], params["response"]["url"]
                ))
            }
            "Network.loadingFailed" if params["canceled"] != true => Some(format!(
                "request failed: {} ({})",
                params["errorText"], params["type"]
            )),
            _ => None,
        };
        if let Some(error) = error {
            self.errors.push(format!("{}: {error}", self.current));
        }
        self.seen.push(method.to_string());
    }

    /// Waits for an event named `method` since the last `visit`.
    pub fn wait_event(&mut self, method: &str) {
        while !self.seen.iter().any(|m| m == method) {
            let message = self.read(Duration::from_secs(30), method);
            self.note(&message);
        }
    }

    /// Opens `url` and waits for its load event.
    pub fn visit(&mut self, url: &str) {
        self.current = url.to_string();
        self.seen.clear();
        let result = self.call("Page.navigate", json!({"url": url}));
        assert!(result.get("errorText").is_none(), "{url}: {result}");
        self.wait_event("Page.loadEventFired");
    }

    /// Evaluates `expression` in the page; its value as a string.
    pub fn eval(&mut self, expression: &str) -> String {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{}: {expression}: {}",
            self.current,
            result["exceptionDetails"]
        );
        match &result["result"]["value"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    pub fn key_tab(&mut self) {
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9}),
            );
        }
    }

    /// Saves the whole page (not only the viewport) as a PNG.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .expect("screenshot base64");
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Also counts failed requests (HTTP 400 and above, refused connections) as errors.
    pub fn watch_network(&mut self) {
        self.call("Network.enable", json!({}));
    }

    /// Polls `expression` until it yields something other than `""`, `null` or `false`;
    /// its value, or `None` after `within`.
    pub fn wait_js(&mut self, expression: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let value = self.eval(expression);
            if !matches!(value.as_str(), "" | "null" | "false" | "undefined") {
                return Some(value);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the centre of `element` (a script expression giving an element or null) with
    /// real mouse events; false if there is no such element.
    pub fn click(&mut self, element: &str) -> bool {
        let centre = self.eval(&format!(
            "(() => {{ const e = ({element}); if (!e) return '';
               e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
               return JSON.stringify([r.x + r.width / 2, r.y + r.height / 2]); }})()"
        ));
        let Ok([x, y]) = serde_json::from_str::<[f64; 2]>(&centre) else {
            return false;
        };
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        );
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
        true
    }

    /// Errors seen so far, after reading whatever Chromium has already sent.
    pub fn drain_errors(&mut self) -> Vec<String> {
        self.call("Runtime.evaluate", json!({"expression": "1"}));
        std::mem::take(&mut self.errors)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SIGTERM lets Chromium take its helper processes down with it.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
