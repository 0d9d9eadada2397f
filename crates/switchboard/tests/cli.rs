//! The binary's command line: help on every subcommand, config errors name file and line.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    // No call records on disk from tests.
    c.env("SWITCHBOARD_DATABASE", "memory");
    c
}

#[test]
fn help_on_every_subcommand() {
    for args in [
        &["--help"][..],
        &["run", "--help"][..],
        &["help", "run"][..],
    ] {
        let out = bin().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage:"), "{args:?}: {text}");
    }
    let out = bin().args(["run", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--sip-listen",
        "--public-ip",
        "--admin-listen",
        "SWITCHBOARD_SIP_LISTEN",
    ] {
        assert!(text.contains(flag), "run --help mentions {flag}");
    }
}

#[test]
fn bad_config_names_file_line_and_field() {
    let dir = std::env::temp_dir().join(format!("sb-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[sip]\nmax_calls = 5\n[media]\ncodecs = [\"g729\"]\n",
    )
    .unwrap();
    let out = bin().args(["run", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:4: media.codecs"), "{err}");
    let out = bin().args(["run", "--rtp-ports", "5"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rtp-ports"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn tls_flag_errors_name_the_flag_and_file_and_never_print_the_key() {
    let tls = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tls");
    let key_text = std::fs::read_to_string(format!("{tls}/localhost.key")).unwrap();
    let secret = &key_text.lines().nth(1).unwrap()[..20];
    let cases: [(&[&str], &str); 4] = [
        (
            &["--tls-cert", "localhost.pem", "--tls-key", "missing.key"],
            "--tls-key missing.key: cannot read",
        ),
        (
            &["--tls-cert", "localhost.pem", "--tls-key", "ca.key"],
            "--tls-key ca.key: does not match the certificate in localhost.pem",
        ),
        (
            &["--tls-cert", "localhost.key", "--tls-key", "localhost.key"],
            "--tls-cert localhost.key: no PEM certificate",
        ),
        (
            &["--tls-listen", "127.0.0.1:5061"],
            "--tls-listen: needs --tls-cert and --tls-key",
        ),
    ];
    for (args, want) in cases {
        let out = bin()
            .current_dir(tls)
            .args(["run", "--echo", "--admin-listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains(secret), "key material printed: {err}");
    }
    // One of the pair alone is a usage error (clap, exit 2) naming the other.
    let out = bin().args(["run", "--tls-cert", "x.pem"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}

#[test]
fn sim_subcommand_serves_websocket_on_loopback() {
    use std::io::{Read, Write};
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = bin()
        .args(["sim", "--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap();
    let mut ok = false;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            // A WebSocket upgrade must be answered with 101 Switching Protocols.
            let req = format!("GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
            s.write_all(req.as_bytes()).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap_or(0);
            ok = String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101");
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "switchboard sim answered the WebSocket upgrade");
}

/// Lines of a child's stderr, read on a thread, with a deadline per wait.
struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    fn of(child: &mut std::process::Child) -> Lines {
        use std::io::BufRead;
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// The first line containing `what` within 10 s.
    fn wait_for(&self, what: &str) -> String {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut seen = Vec::new();
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            match self.0.recv_timeout(left) {
                Ok(l) if l.contains(what) => return l,
                Ok(l) => seen.push(l),
                Err(_) => break,
            }
        }
        panic!("no line with {what:?}; saw:\n{}", seen.join("\n"));
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn sighup_reloads_the_agents_file_and_keeps_the_old_one_when_the_new_is_bad() {
    let dir = std::env::temp_dir().join(format!("sb-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("agents.toml");
    std::fs::write(&path, router::EMBEDDED_DEFAULT).unwrap();
    let mut child = bin()
        .args([
            "run",
            "--sip-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--agents",
        ])
        .arg(&path)
        .env("RUST_LOG", "info")
        .env_remove("OPENAI_API_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Lines::of(&mut child);
    lines.wait_for("switchboard running");
    // A broken file: rejected with its line, the process keeps running.
    std::fs::write(
        &path,
        router::EMBEDDED_DEFAULT.replace("handoffs = [\"sales\"]", "handoffs = [\"billing\"]"),
    )
    .unwrap();
    signal(child.id(), "-HUP");
    let line = lines.wait_for("agents file rejected");
    assert!(
        line.contains("agents.toml:") && line.contains("unknown agent"),
        "{line}"
    );
    // A good one: reloaded.
    std::fs::write(
        &path,
        router::EMBEDDED_DEFAULT.replace("capacity = 20", "capacity = 5"),
    )
    .unwrap();
    signal(child.id(), "-HUP");
    // The endpoint task took the new agents (new calls use them).
    lines.wait_for("agents reloaded: new calls use them");
    signal(child.id(), "-TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_agents_file_at_start_names_file_line_and_field() {
    let dir = std::env::temp_dir().join(format!("sb-agents-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("agents.toml");
    std::fs::write(&path, "entry = \"router\"\n[[agent]]\nname = \"router\"\ninstructions = \"x\"\nhandoffs = [\"nobody\"]\n").unwrap();
    let out = bin()
        .args([
            "run",
            "--sip-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--agents",
        ])
        .arg(&path)
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("agents.toml:5: agent[0].handoffs[0]: unknown agent \"nobody\""),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn media_priority_takes_a_nice_value_or_rt_and_names_the_flag_otherwise() {
    for bad in ["rt:0", "rt:100", "rt:x", "rtx", "-21", "20", "high"] {
        let out = bin()
            .args(["run", "--media-priority", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--media-priority") && err.contains("rt:N"),
            "{bad}: {err}"
        );
    }
}
