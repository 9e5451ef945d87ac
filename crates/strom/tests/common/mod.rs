//! A real `strom server` for integration tests.

#![allow(dead_code)] // each test crate uses a different part

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const STROM: &str = env!("CARGO_BIN_EXE_strom");
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A port nothing listens on now and that this test process has not handed out before:
/// the kernel may offer a just-closed port again, so a listener and its metrics could collide.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// A `strom server` on free ports with its own data dir; killed on drop.
pub struct Broker {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Broker {
    pub fn start() -> Broker {
        Self::start_with(&[])
    }

    /// A broker with extra `--set KEY=VALUE` configs.
    pub fn start_with(settings: &[&str]) -> Broker {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "strom-cli-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let port = free_port();
        let metrics_port = free_port();
        let log = std::fs::File::create(dir.join("broker.log")).unwrap();
        let mut command = Command::new(STROM);
        command
            .arg("server")
            .args(["--set", &format!("listeners=PLAINTEXT://127.0.0.1:{port}")])
            .args(["--set", &format!("log.dirs={}", dir.join("data").display())])
            .args([
                "--set",
                &format!("strom.metrics.listener=127.0.0.1:{metrics_port}"),
            ])
            // No registry or REST proxy: their fixed default ports would be contended by
            // tests running at once, and the registry's election group would show in group lists.
            .args([
                "--set",
                "schema.registry.listeners=",
                "--set",
                "rest.proxy.listeners=",
            ])
            .args(settings.iter().flat_map(|s| ["--set", s]))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // The broker reads STROM_* variables as configs; keep ours out.
        for (name, _) in std::env::vars() {
            if name.starts_with("STROM_") {
                command.env_remove(name);
            }
        }
        let child = command.spawn().expect("spawn strom server");
        let mut broker = Broker { child, port, dir };
        broker.wait_ready();
        broker
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default()
    }

    /// Ready: the port accepts connections and the CLI can describe the cluster.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "broker exited with {status} while starting:\n{}",
                    self.log()
                );
            }
            if TcpStream::connect(self.addr()).is_ok()
                && self.strom(&["cluster", "info"]).status.success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "broker not ready in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(STROM);
        command
            .args(args)
            .env("STROM_BROKERS", self.addr())
            .env_remove("STROM_LOG");
        command
    }

    pub fn strom(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    pub fn strom_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.strom(args))
    }

    pub fn produce(&self, args: &[&str], input: &str) {
        succeeded(args, self.strom_with_input(args, input));
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        failed(args, self.strom(args))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("broker log kept in {}:\n{}", self.dir.display(), self.log());
        }
    }
}

pub fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "strom {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn failed(args: &[&str], out: Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "strom {args:?} should fail with exit code 1:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}
