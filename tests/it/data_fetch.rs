//! `kerblam data fetch` against a small HTTP server on 127.0.0.1 started by the test: complete files
//! land under their final names, failures are reported per URL and leave nothing behind.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use support::project::{TestProject, kill, show, wait_timeout};

const OK_BODY: &str = "remote line one\nremote line two\n";

/// Serve on 127.0.0.1 (an ephemeral port) until the test process ends:
/// `/ok.txt` (200), `/missing` (404), `/truncated` (declares 1000 bytes, sends 100, closes),
/// `/slow` (declares 1 MB, sends 10 bytes, then stalls for 60 s), `/big` (300 KB).
fn server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    port
}

fn big_body() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8).collect()
}

fn serve(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let head = |status: &str, len: usize| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    let _ = match path.as_str() {
        "/ok.txt" => {
            stream.write_all(format!("{}{OK_BODY}", head("200 OK", OK_BODY.len())).as_bytes())
        }
        "/big" => {
            let body = big_body();
            stream
                .write_all(head("200 OK", body.len()).as_bytes())
                .and_then(|_| stream.write_all(&body))
        }
        "/truncated" => stream
            .write_all(head("200 OK", 1000).as_bytes())
            .and_then(|_| stream.write_all(&[b'x'; 100])),
        "/slow" => {
            let r = stream
                .write_all(head("200 OK", 1_000_000).as_bytes())
                .and_then(|_| stream.write_all(&[b's'; 10]))
                .and_then(|_| stream.flush());
            std::thread::sleep(Duration::from_secs(60));
            r
        }
        _ => stream.write_all(format!("{}not here", head("404 Not Found", 8)).as_bytes()),
    };
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn project(remote: &[(&str, &str)]) -> TestProject {
    let mut manifest = String::from("[data.remote]\n");
    for (url, target) in remote {
        manifest.push_str(&format!("\"{url}\" = \"{target}\"\n"));
    }
    TestProject::new(&manifest)
}

fn leftovers(p: &TestProject) -> Vec<String> {
    p.snapshot("data/in")
        .into_keys()
        .filter(|k| k.contains("kerblam-part"))
        .collect()
}

#[test]
fn fetches_what_it_can_and_reports_each_failure() {
    let port = server();
    let refused = closed_port();
    let local = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(local.path(), "from a file url\n").unwrap();
    let file_url = format!("file://{}", local.path().display());
    let ok = format!("http://127.0.0.1:{port}/ok.txt");
    let big = format!("http://127.0.0.1:{port}/big");
    let missing = format!("http://127.0.0.1:{port}/missing");
    let truncated = format!("http://127.0.0.1:{port}/truncated");
    let present = format!("http://127.0.0.1:{port}/ok.txt?present");
    let unreachable = format!("http://127.0.0.1:{refused}/x.txt");
    let p = project(&[
        (&ok, "ok.txt"),
        (&big, "nested/dir/big.bin"),
        (&missing, "missing.txt"),
        (&truncated, "truncated.txt"),
        (&present, "present.txt"),
        (&unreachable, "unreachable.txt"),
        (&file_url, "local.txt"),
        ("_", "precious.txt"),
    ]);
    p.write("data/in/present.txt", "already here\n");

    let o = p.kerblam(&["data", "fetch"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);

    assert_eq!(p.read("data/in/ok.txt"), OK_BODY);
    assert_eq!(
        std::fs::read(p.path("data/in/nested/dir/big.bin")).unwrap(),
        big_body()
    );
    assert_eq!(p.read("data/in/local.txt"), "from a file url\n");
    assert_eq!(
        p.read("data/in/present.txt"),
        "already here\n",
        "a present file was overwritten"
    );
    for absent in [
        "missing.txt",
        "truncated.txt",
        "unreachable.txt",
        "precious.txt",
    ] {
        assert!(
            !p.exists(&format!("data/in/{absent}")),
            "{absent} exists\n{}",
            show(&o)
        );
    }
    assert_eq!(leftovers(&p), Vec::<String>::new());

    assert!(
        err.contains(&format!("{missing} into data/in/missing.txt")) || err.contains(&missing),
        "{err}"
    );
    assert!(err.contains("HTTP 404 Not Found"), "{err}");
    assert!(
        err.contains(&truncated) && err.contains("100 of 1000 bytes"),
        "{err}"
    );
    assert!(
        err.contains(&unreachable) && err.contains("connection refused"),
        "{err}"
    );
    assert!(err.contains("unreachable.txt"), "{err}");
    assert!(err.contains("present.txt is already present"), "{err}");
    assert!(err.contains("precious.txt cannot be fetched"), "{err}");
    assert!(
        err.contains("3 fetched, 1 already present, 3 failed"),
        "{err}"
    );
}

#[test]
fn a_second_fetch_skips_and_succeeds_and_quiet_is_quiet() {
    let port = server();
    let p = project(&[(&format!("http://127.0.0.1:{port}/ok.txt"), "sub/ok.txt")]);
    let o = p.kerblam(&["data", "fetch", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(o.stderr.is_empty() && o.stdout.is_empty(), "{}", show(&o));
    assert_eq!(p.read("data/in/sub/ok.txt"), OK_BODY);
    std::fs::write(p.path("data/in/sub/ok.txt"), "edited\n").unwrap();
    let o = p.kerblam(&["data", "fetch"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(p.read("data/in/sub/ok.txt"), "edited\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("0 fetched, 1 already present, 0 failed"));
}

#[test]
fn ctrl_c_during_a_download_leaves_no_file() {
    let port = server();
    let p = project(&[(&format!("http://127.0.0.1:{port}/slow"), "slow.bin")]);
    let mut child = p
        .command(&["data", "fetch"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the partial file exists, i.e. the body is being received.
    let start = std::time::Instant::now();
    while leftovers(&p).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "download never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    kill(child.id() as i64, 2);
    let status = wait_timeout(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(130));
    assert!(!p.exists("data/in/slow.bin"));
    assert_eq!(leftovers(&p), Vec::<String>::new());
}

#[test]
fn no_remote_files_is_fine() {
    let p = TestProject::new("");
    let o = p.kerblam(&["data", "fetch"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no remote files"));
}

#[test]
fn fetch_first_restores_a_profile_left_swapped() {
    // A killed `kerblam run --profile` left the test file standing in for the remote one: without
    // recovery, fetch would take it for the downloaded file.
    let port = server();
    let p = project(&[(&format!("http://127.0.0.1:{port}/ok.txt"), "remote.txt")]);
    p.write("data/in/remote.txt", "test data\n");
    p.write(
        "data/in/.kerblam-profile.lock",
        r#"{"format": "kerblam.profile-journal/v1", "profile": "test", "pid": 999999999,
  "entries": [{"original": "remote.txt", "target": "test_remote.txt", "stash": null}]}"#,
    );
    let o = p.kerblam(&["data", "fetch"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(p.read("data/in/test_remote.txt"), "test data\n");
    assert_eq!(p.read("data/in/remote.txt"), OK_BODY);
    assert!(!p.exists("data/in/.kerblam-profile.lock"));
}

/// On a terminal (a pty from `script`) a download draws a progress bar with its bytes; off a
/// terminal (every other test here) there is none.
#[test]
fn a_terminal_gets_a_progress_bar() {
    if !support::terminal::available() {
        return;
    }
    let port = server();
    let p = project(&[(&format!("http://127.0.0.1:{port}/big"), "big.bin")]);
    let cmd = format!(
        "'{}' -C '{}' data fetch",
        env!("CARGO_BIN_EXE_kerblam"),
        p.root().display()
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{shown}");
    assert!(shown.contains("big.bin"), "{shown}");
    assert!(shown.contains("KiB"), "the bar shows bytes: {shown}");
    assert_eq!(
        std::fs::read(p.path("data/in/big.bin")).unwrap(),
        big_body()
    );
}
