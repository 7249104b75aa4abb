//! A tiny raw HTTP/1.1 client for the tests: real sockets, nothing hidden, so tests can see
//! exactly what the emulator writes and when it closes. And a guard for an emulator process.

#![allow(dead_code)] // each test binary uses a different part of it

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;

use serde_json::Value;

/// Longest a test waits for any read: a hung emulator fails the test instead of hanging it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
        Conn { stream, buf: Vec::new() }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    pub fn send(&mut self, method: &str, path: &str, body: &str) {
        let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        self.send_raw(req.as_bytes());
    }

    /// Reads until `n` bytes are buffered; false on EOF first.
    fn fill(&mut self, n: usize) -> bool {
        let mut chunk = [0u8; 16384];
        while self.buf.len() < n {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return false,
                Err(e) => panic!("read failed: {e}"),
            }
        }
        true
    }

    /// Reads one response head; `None` if the connection closed first.
    pub fn read_head(&mut self) -> Option<(u16, Vec<(String, String)>)> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(self.buf[..end].to_vec()).expect("utf-8 head");
                self.buf.drain(..end + 4);
                let mut lines = head.split("\r\n");
                let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
                let headers = lines
                    .map(|l| {
                        let (n, v) = l.split_once(':').expect("header line");
                        (n.trim().to_owned(), v.trim().to_owned())
                    })
                    .collect();
                return Some((status, headers));
            }
            let want = self.buf.len() + 1;
            if !self.fill(want) {
                return None;
            }
        }
    }

    /// Reads one full response; `None` if the connection closed before a complete one.
    pub fn try_read(&mut self) -> Option<Resp> {
        let (status, headers) = self.read_head()?;
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        if !self.fill(length) {
            return None;
        }
        let body = self.buf.drain(..length).collect();
        Some(Resp { status, headers, body })
    }

    pub fn read(&mut self) -> Resp {
        self.try_read().expect("a complete response")
    }

    pub fn request(&mut self, method: &str, path: &str, body: &str) -> Resp {
        self.send(method, path, body);
        self.read()
    }

    /// Everything until the server closes (bounded by `limit`).
    pub fn read_to_close(&mut self, limit: usize) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 16384];
        while out.len() < limit {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(k) => out.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!("read failed: {e}"),
            }
        }
        out
    }

    /// True if the server closed the connection (EOF within the read timeout).
    pub fn closed_by_server(&mut self) -> bool {
        self.buf.is_empty() && self.read_to_close(1).is_empty()
    }
}

/// One request on a fresh connection.
pub fn post(port: u16, path: &str, body: &str) -> Resp {
    Conn::open(port).request("POST", path, body)
}

/// Kills the child (an emulator started as a process) when the test ends, even on a failed
/// assertion.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
