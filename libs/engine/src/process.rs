//! Spawning engine processes: streaming their output to the user while keeping a tail for errors.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::error::{EngineError, Result};

/// How many lines of engine output an error message keeps.
pub(crate) const TAIL_LINES: usize = 40;

/// The last lines of an engine's output.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    pub(crate) fn push(&mut self, line: &str) {
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines
            .push_back(line.trim_end_matches(['\n', '\r']).to_string());
    }

    pub(crate) fn text(&self) -> String {
        let v: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        v.join("\n")
    }
}

/// The command line of `cmd`, shell-like, for error messages.
pub(crate) fn command_line(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c)) {
            parts.push(format!("'{}'", a.replace('\'', r"'\''")));
        } else {
            parts.push(a.into_owned());
        }
    }
    parts.join(" ")
}

/// Spawn `cmd`, turning "program not found" into [`EngineError::NotInstalled`].
pub(crate) fn spawn(cmd: &mut Command, engine: &str) -> Result<Child> {
    cmd.spawn().map_err(|e| spawn_error(cmd, engine, e))
}

fn spawn_error(cmd: &Command, engine: &str, e: io::Error) -> EngineError {
    let program = cmd.get_program().to_string_lossy().into_owned();
    if matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
    ) {
        EngineError::NotInstalled {
            engine: engine.to_string(),
            program,
            source: e,
        }
    } else {
        EngineError::io(format!("cannot start `{}`", command_line(cmd)), e)
    }
}

/// Forward every line of `r` to stderr (when `echo`) and into `tail`, on a thread.
pub(crate) fn pump_lines(
    r: impl Read + Send + 'static,
    tail: Arc<Mutex<Tail>>,
    echo: bool,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if echo {
                        let mut err = io::stderr().lock();
                        let _ = err.write_all(&buf);
                        let _ = err.flush();
                    }
                    let line = String::from_utf8_lossy(&buf);
                    tail.lock().unwrap_or_else(|p| p.into_inner()).push(&line);
                }
            }
        }
    })
}

/// What [`run_streamed`] returns.
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) tail: String,
}

/// Run `cmd` with `input` copied to its stdin (when given), its stdout and stderr forwarded to our
/// stderr (when `echo`) and remembered for error messages.
///
/// If the engine stops reading its stdin early (it failed), the broken pipe is not an error: the exit
/// status and output tell what happened.
pub(crate) fn run_streamed(
    cmd: &mut Command,
    engine: &str,
    input: Option<&mut dyn Read>,
    echo: bool,
) -> Result<Finished> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = spawn(cmd, engine)?;
    let tail = Arc::new(Mutex::new(Tail::default()));
    let out = pump_lines(child.stdout.take().expect("piped"), tail.clone(), echo);
    let err = pump_lines(child.stderr.take().expect("piped"), tail.clone(), echo);
    let mut input_error = None;
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("piped");
        if let Err(e) = copy_to_child(input, &mut stdin) {
            if matches!(e, CopyError::Read(_)) {
                // Never let the engine finish on a truncated stream (a tar cut at a member boundary
                // looks complete): stop it before it sees end-of-file.
                let _ = child.kill();
            }
            input_error = Some(e);
        }
        drop(stdin);
    }
    let status = child
        .wait()
        .map_err(|e| EngineError::io(format!("waiting for `{}`", command_line(cmd)), e))?;
    let _ = out.join();
    let _ = err.join();
    let tail = tail.lock().unwrap_or_else(|p| p.into_inner()).text();
    if let Some(CopyError::Read(e)) = input_error {
        // The engine saw a truncated stream; the read error is the real cause.
        return Err(EngineError::io(
            format!("reading the input for `{}`", command_line(cmd)),
            e,
        ));
    }
    Ok(Finished { status, tail })
}

enum CopyError {
    Read(io::Error),
    Write,
}

fn copy_to_child(
    input: &mut dyn Read,
    stdin: &mut impl Write,
) -> std::result::Result<(), CopyError> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        if stdin.write_all(&buf[..n]).is_err() {
            // Broken pipe: the engine exited; its status says why.
            return Err(CopyError::Write);
        }
    }
}

/// Run `cmd` to completion capturing stdout and stderr (nothing echoed).
pub(crate) fn run_captured(cmd: &mut Command, engine: &str) -> Result<std::process::Output> {
    cmd.stdin(Stdio::null());
    cmd.output().map_err(|e| spawn_error(cmd, engine, e))
}

/// The last [`TAIL_LINES`] lines of `stdout` + `stderr` of a captured command.
pub(crate) fn output_tail(out: &std::process::Output) -> String {
    let mut tail = Tail::default();
    for stream in [&out.stdout, &out.stderr] {
        for line in String::from_utf8_lossy(stream).lines() {
            tail.push(line);
        }
    }
    tail.text()
}

/// An error for a command that exited unsuccessfully.
pub(crate) fn failed(cmd: &Command, status: ExitStatus, output: String) -> EngineError {
    EngineError::Failed {
        command: command_line(cmd),
        status: status.to_string(),
        output,
    }
}
