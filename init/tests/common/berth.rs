//! `berth up` driven through its control socket, for the integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// An empty directory for one test's host file and state, `berth-up-PID-NAME` (see
/// `scratch_dir`).
pub fn fresh_dir(name: &str) -> PathBuf {
    super::scratch_dir("up", name)
}

pub struct Berth {
    pub child: Child,
    pub dir: PathBuf,
    pub socket: PathBuf,
}

impl Berth {
    pub fn up(name: &str, host: &str) -> Berth {
        Self::up_with(name, host, None)
    }

    pub fn up_with(name: &str, host: &str, notify: Option<&Path>) -> Berth {
        let dir = fresh_dir(name);
        std::fs::write(dir.join("host.kdl"), host).unwrap();
        Self::start(&dir, notify, &[])
    }

    /// `berth up DIR/host.kdl` with its state in DIR/state, kept from an earlier berth;
    /// `env` is added to berth's environment.
    pub fn start(dir: &Path, notify: Option<&Path>, env: &[(&str, &str)]) -> Berth {
        Self::start_with_args(dir, notify, env, &[])
    }

    /// [`Berth::start`] with `args` added to `berth up` (e.g. `--watch`).
    pub fn start_with_args(
        dir: &Path,
        notify: Option<&Path>,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Berth {
        let dir = dir.to_path_buf();
        let file = dir.join("host.kdl");
        let socket = dir.join("control.sock");
        let _ = std::fs::remove_file(&socket);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args([
            "up",
            file.to_str().unwrap(),
            "--state-dir",
            dir.join("state").to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
        ]);
        cmd.args(args);
        cmd.stdout(Stdio::null()).stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("berth.log"))
                .unwrap(),
        );
        match notify {
            Some(p) => cmd.env("NOTIFY_SOCKET", p),
            None => cmd.env_remove("NOTIFY_SOCKET"),
        };
        cmd.envs(env.iter().copied());
        let child = cmd.spawn().unwrap();
        let mut b = Berth { child, dir, socket };
        let start = Instant::now();
        while !b.socket.exists() {
            if let Some(st) = b.child.try_wait().unwrap() {
                panic!(
                    "berth exited ({st}) before it made its control socket; logs:\n{}",
                    b.logs()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for the control socket; logs:\n{}",
                b.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        b
    }

    /// Like [`Berth::call`], but `None` when berth closes the connection unanswered
    /// (it died).
    pub fn try_call(&self, req: Value) -> Option<Value> {
        let mut s = UnixStream::connect(&self.socket).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut msg = req;
        msg["v"] = json!(1);
        writeln!(s, "{msg}").ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        serde_json::from_str(&line).ok()
    }

    /// The generations as `berth generations --json` lists them.
    pub fn generations(&self) -> Vec<Value> {
        let o = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["generations", "--json", "--state-dir"])
            .arg(self.dir.join("state"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        serde_json::from_slice::<Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// The generation marked current (`state/current`).
    pub fn current(&self) -> Value {
        self.generations()
            .into_iter()
            .find(|g| g["current"] == true)
            .unwrap()
    }

    pub fn call(&self, req: Value) -> Value {
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut msg = req;
        msg["v"] = json!(1);
        writeln!(s, "{msg}").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }

    pub fn status(&self) -> Vec<Value> {
        self.call(json!({"verb": "status"}))["containers"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Every container's pid (0 while it has none), by name.
    pub fn pids(&self) -> std::collections::BTreeMap<String, i64> {
        self.status()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["pid"].as_i64().unwrap_or(0),
                )
            })
            .collect()
    }

    /// `berth switch` to `text` (written to DIR/next.kdl), with `extra` request fields
    /// such as `{"dry_run": true}`; the response.
    pub fn switch(&self, text: &str, extra: Value) -> Value {
        let file = self.dir.join("next.kdl");
        std::fs::write(&file, text).unwrap();
        let mut req = json!({"verb": "switch", "file": file.to_str().unwrap()});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        self.call(req)
    }

    pub fn container(&self, name: &str) -> Value {
        self.status()
            .into_iter()
            .find(|c| c["name"] == name)
            .unwrap()
    }

    pub fn wait_for(&self, mut f: impl FnMut() -> bool, what: &str) {
        let start = Instant::now();
        while !f() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn state(&self, name: &str) -> String {
        self.container(name)["state"].as_str().unwrap().to_string()
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("state/logs").join(format!("{name}.log")))
            .unwrap_or_default()
    }

    /// What berth itself wrote (its stderr).
    pub fn own_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("berth.log")).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        let mut out = format!("--- berth\n{}", self.own_log());
        if let Ok(rd) = std::fs::read_dir(self.dir.join("state/logs")) {
            for e in rd.flatten() {
                out.push_str(&format!(
                    "--- {}\n{}",
                    e.path().display(),
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                ));
            }
        }
        out
    }

    pub fn down(mut self) -> std::process::ExitStatus {
        let r = self.call(json!({"verb": "down"}));
        assert_eq!(r["result"], "ok", "{r}");
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "berth did not exit after down; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        // Only a child not yet reaped: its pid is still ours.
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: signalling the berth process this test started.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let _ = self.child.wait();
        }
    }
}
