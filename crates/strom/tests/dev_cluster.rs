//! `strom dev cluster`: starts its brokers as child processes, prints the bootstrap
//! servers, and stops them all on SIGTERM. Run with one broker: brokers of several nodes
//! do not form one cluster yet (`strom server` refuses several voters for now).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{free_port, succeeded, STROM};

/// A base port whose client (BASE) and metrics (BASE+200) ports are both free.
fn free_base_port() -> u16 {
    loop {
        let base = free_port();
        if base < 65000 && TcpListener::bind(("127.0.0.1", base + 200)).is_ok() {
            return base;
        }
    }
}

/// Kills the dev command if the test fails before stopping it (its brokers follow it).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pid_alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn dev_cluster_starts_prints_bootstrap_and_stops_its_brokers() {
    let dir = std::env::temp_dir().join(format!("strom-dev-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let base = free_base_port();
    let mut command = Command::new(STROM);
    for (name, _) in std::env::vars() {
        if name.starts_with("STROM_") {
            command.env_remove(name);
        }
    }
    let mut dev = command
        .args(["dev", "cluster", "--brokers", "1", "--base-port"])
        .arg(base.to_string())
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(dev.stdout.take().unwrap());
    let mut stderr_pipe = dev.stderr.take().unwrap();
    let mut dev = KillOnDrop(dev);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let bootstrap = format!("127.0.0.1:{base}");
    assert_eq!(line, format!("bootstrap servers: {bootstrap}\n"));

    // The broker serves clients on the printed address, from its own data folder.
    let args = ["cluster", "info", "--brokers", bootstrap.as_str()];
    let info = succeeded(&args, Command::new(STROM).args(args).output().unwrap());
    let brokers: Vec<Vec<&str>> = info
        .lines()
        .skip_while(|l| !l.starts_with("BROKER"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let port = base.to_string();
    assert_eq!(
        brokers,
        vec![
            vec!["BROKER", "HOST", "PORT", "RACK"],
            vec!["1", "127.0.0.1", port.as_str()]
        ]
    );
    assert!(dir.join("node-1/data/meta.properties").exists());

    // SIGTERM stops the command and its broker.
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(dev.0.id() as i32, libc::SIGTERM);
    }
    let status = dev.0.wait().unwrap();
    let mut stderr = String::new();
    stderr_pipe.read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    let pid: i32 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("broker 1 (pid "))
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no broker pid in: {stderr}"));
    assert!(
        stderr.contains("broker 1 stopped (exit status: 0)"),
        "{stderr}"
    );
    assert!(!pid_alive(pid), "broker {pid} still runs");
    assert!(
        TcpStream::connect_timeout(&bootstrap.parse().unwrap(), Duration::from_secs(1)).is_err(),
        "something still listens on {bootstrap}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
