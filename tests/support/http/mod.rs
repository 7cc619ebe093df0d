//! A small HTTP/1.1 server for tests of the REST sources: no network, no extra crates.
//!
//! Each test gives a handler (`Fn(&Req) -> Resp`) that plays the API; the server records
//! every request (method, path, query, headers, body) so tests can assert what floe asked
//! for. One request per connection (`Connection: close`) keeps the parser trivial. A
//! response may carry a delay, to exercise timeouts.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `http://127.0.0.1:PORT`, for building links.
    pub base: String,
    /// When the request arrived.
    pub at: std::time::Instant,
}

impl Req {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// The form fields of a urlencoded body.
    pub fn form(&self) -> Vec<(String, String)> {
        let text = format!("http://x/?{}", String::from_utf8_lossy(&self.body));
        reqwest12::Url::parse(&text).map(|u| u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()).unwrap_or_default()
    }

    /// The path and query as sent.
    pub fn target(&self) -> String {
        let mut u = reqwest12::Url::parse(&format!("http://x{}", self.path)).expect("path");
        if !self.query.is_empty() {
            let mut q = u.query_pairs_mut();
            for (k, v) in &self.query {
                q.append_pair(k, v);
            }
        }
        format!("{}{}", u.path(), u.query().map(|q| format!("?{q}")).unwrap_or_default())
    }
}

/// A response to send.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Resp {
    pub fn json(v: Value) -> Resp {
        Resp { status: 200, headers: vec![("content-type".into(), "application/json".into())], body: v.to_string().into_bytes(), delay: Duration::ZERO }
    }

    pub fn text(status: u16, body: &str) -> Resp {
        Resp { status, headers: vec![("content-type".into(), "text/plain".into())], body: body.as_bytes().to_vec(), delay: Duration::ZERO }
    }

    pub fn status(mut self, status: u16) -> Resp {
        self.status = status;
        self
    }

    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    pub fn delay(mut self, d: Duration) -> Resp {
        self.delay = d;
        self
    }
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

/// A running server; stops when dropped.
pub struct Server {
    pub base: String,
    log: Arc<Mutex<Vec<Req>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Start on a free local port.
    pub async fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (b, l) = (base.clone(), log.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, base, log) = (handler.clone(), b.clone(), l.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &*handler, &base, &log).await;
                });
            }
        });
        Server { base, log, task }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().expect("log").clone()
    }

    /// Requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Req> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }
}

async fn serve(mut stream: TcpStream, handler: &Handler, base: &str, log: &Mutex<Vec<Req>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let len = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok()).unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let url = reqwest12::Url::parse(&format!("http://x{target}")).expect("target");
    let req = Req {
        method,
        path: url.path().to_string(),
        query: url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
        headers,
        body,
        base: base.to_string(),
        at: std::time::Instant::now(),
    };
    log.lock().expect("log").push(req.clone());
    let resp = handler(&req);
    if !resp.delay.is_zero() {
        tokio::time::sleep(resp.delay).await;
    }
    let mut out = format!("HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n", resp.status, resp.body.len());
    for (k, v) in &resp.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).await?;
    stream.write_all(&resp.body).await?;
    stream.flush().await?;
    Ok(())
}
