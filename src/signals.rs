//! Ctrl-C, SIGTERM and SIGHUP handling shared by every command.
//!
//! kerblam never dies half-way through something it must undo (a profile swap, a temporary file, a
//! half-written archive) just because the user pressed Ctrl-C. [`install`] replaces the default
//! "terminate" action of SIGINT, SIGTERM and SIGHUP with a handler thread, and the rest of the program
//! cooperates with it:
//!
//! - **The flag.** [`interrupted`] returns the first signal received (if any); [`check`] turns it into
//!   an error whose exit code is `128 + signo` (130 for Ctrl-C, 143 for SIGTERM). Long loops call
//!   `check()?` between steps and unwind normally, so `Drop` guards run.
//! - **Children.** [`run_child`] spawns a command and waits for it. While it runs, the first signal
//!   is forwarded to it (to its whole process group when kerblam's stdin is not a terminal; on a
//!   terminal the child is in the foreground group and gets Ctrl-C from the terminal itself, so only
//!   signals sent by another process are forwarded); if it is still alive [`GRACE`] later it is
//!   killed. A second signal kills it at once.
//! - **Cleanups.** A [`Cleanup`] is a closure registered globally and run exactly once: when the guard
//!   is dropped (normal or error path), or by the handler thread just before kerblam exits on its own
//!   (third signal, or the first one inside an [`exit_on_signal`] scope). Use it for anything that must
//!   be undone even if the main thread is stuck: removing a temporary file, restoring swapped profile
//!   files. Call [`Cleanup::disarm`] once the work is committed (e.g. after the final rename).
//! - **Exit-at-once scopes.** Inside an [`exit_on_signal`] scope (held by a guard), the first signal
//!   runs the registered cleanups and exits with `128 + signo`: right for pure I/O that may block in a
//!   read (a download), where waiting for the main thread to notice could take forever.
//!
//! Typical use (package, replay): `signals::install()?;` at the start of the command, a
//! `Cleanup::new(move || { let _ = std::fs::remove_file(&tmp); })` for each temporary path, `check()?`
//! between steps, `run_child(&mut cmd)` for engine commands, and `cleanup.disarm()` after the final
//! rename. SIGKILL cannot be caught: whatever must survive it needs an on-disk journal (see
//! `profile.rs`).

use std::io::IsTerminal;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;

use crate::exit::Exit;

/// How long a child may take to exit after a forwarded signal before it is killed.
pub const GRACE: Duration = Duration::from_secs(10);

/// The first signal received, 0 if none.
static FIRST: AtomicI32 = AtomicI32::new(0);
/// How many signals were received.
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// What `kill()` should target for the running child: `-pgid` for a child in its own process group,
/// `pid` otherwise, 0 when no child runs.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// How many [`exit_on_signal`] scopes are active.
static EXIT_SCOPES: AtomicUsize = AtomicUsize::new(0);
/// The registered cleanups.
static CLEANUPS: Mutex<Vec<(u64, Arc<Slot>)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

type Slot = Mutex<Option<Box<dyn FnOnce() + Send>>>;

/// Install the handler (idempotent). Until then the signals keep their default action.
pub fn install() -> miette::Result<()> {
    INSTALLED
        .get_or_init(|| {
            let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP])
                .map_err(|e| format!("cannot install the signal handler: {e}"))?;
            std::thread::Builder::new()
                .name("kerblam-signals".into())
                .spawn(move || {
                    for origin in signals.forever() {
                        on_signal(origin.signal, matches!(origin.cause, Cause::Kernel));
                    }
                })
                .map_err(|e| format!("cannot start the signal thread: {e}"))?;
            Ok(())
        })
        .clone()
        .map_err(|e| miette::miette!("{e}"))
}

/// The first signal received since start, if any.
pub fn interrupted() -> Option<i32> {
    match FIRST.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// `Err` with exit code `128 + signo` when a signal was received.
pub fn check() -> miette::Result<()> {
    match interrupted() {
        None => Ok(()),
        Some(sig) => Err(interrupted_error(sig).into()),
    }
}

/// The error for "interrupted by `sig`", exit code `128 + sig`.
pub fn interrupted_error(sig: i32) -> Exit {
    Exit {
        code: code_for_signal(sig),
        message: format!("interrupted by {}", signal_name(sig)),
    }
}

/// The conventional exit code for a death by `sig`.
pub fn code_for_signal(sig: i32) -> u8 {
    (128 + sig).clamp(0, 255) as u8
}

/// A process's exit status as an exit code: its code, or `128 + signo` for a death by signal.
pub fn status_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c.clamp(0, 255) as u8,
        (None, Some(sig)) => code_for_signal(sig),
        (None, None) => 1,
    }
}

/// A signal's usual name.
pub fn signal_name(sig: i32) -> String {
    match sig {
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        SIGHUP => "SIGHUP".into(),
        libc::SIGKILL => "SIGKILL".into(),
        other => format!("signal {other}"),
    }
}

/// Spawn `cmd`, wait for it and return its status, forwarding signals as the module docs say.
///
/// When kerblam's stdin is not a terminal the child gets a process group of its own, so a signal sent
/// to kerblam alone (`kill -INT`, a supervisor's SIGTERM) reaches the child's children too.
pub fn run_child(cmd: &mut Command) -> std::io::Result<ExitStatus> {
    let own_group = !std::io::stdin().is_terminal();
    if own_group {
        cmd.process_group(0);
    }
    let mut child: Child = cmd.spawn()?;
    let pid = child.id() as i32;
    let target = if own_group { -pid } else { pid };
    CHILD.store(target, Ordering::SeqCst);
    // A signal that arrived between the caller's last check and the store above found no child.
    if let Some(sig) = interrupted() {
        send(target, sig);
        arm_grace_timer(target);
    }
    let status = child.wait();
    CHILD.store(0, Ordering::SeqCst);
    if own_group && interrupted().is_some() {
        // Shells ignore SIGINT in background jobs: whatever the pipe left running in its group
        // (`cmd &`) gets SIGTERM, so an interrupted run leaves no orphans behind.
        send(-pid, SIGTERM);
    }
    status
}

/// A closure run exactly once: on drop, or by the signal thread before kerblam exits on its own.
#[must_use = "a Cleanup runs when dropped; bind it to a variable"]
pub struct Cleanup {
    id: u64,
    slot: Arc<Slot>,
}

impl Cleanup {
    /// Register `f`.
    pub fn new(f: impl FnOnce() + Send + 'static) -> Cleanup {
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        let slot: Arc<Slot> = Arc::new(Mutex::new(Some(Box::new(f))));
        lock_cleanups().push((id, slot.clone()));
        Cleanup { id, slot }
    }

    /// Run it now (if it has not run yet).
    pub fn run(self) {
        drop(self)
    }

    /// Forget it without running it (the work it would undo is now committed).
    pub fn disarm(self) {
        take(&self.slot);
        // Drop finds the slot empty and only unregisters.
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        run_slot(&self.slot);
        lock_cleanups().retain(|(id, _)| *id != self.id);
    }
}

/// While the returned guard lives, the first signal runs the cleanups and exits at once.
pub fn exit_on_signal() -> ExitOnSignal {
    EXIT_SCOPES.fetch_add(1, Ordering::SeqCst);
    ExitOnSignal { _private: () }
}

/// Guard of an [`exit_on_signal`] scope.
pub struct ExitOnSignal {
    _private: (),
}

impl Drop for ExitOnSignal {
    fn drop(&mut self) {
        EXIT_SCOPES.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock_cleanups() -> std::sync::MutexGuard<'static, Vec<(u64, Arc<Slot>)>> {
    CLEANUPS.lock().unwrap_or_else(|p| p.into_inner())
}

fn take(slot: &Slot) -> Option<Box<dyn FnOnce() + Send>> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Run the slot's closure while holding its lock, so that the other thread waits for it to finish
/// instead of exiting mid-way.
fn run_slot(slot: &Slot) {
    let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = guard.take() {
        f();
    }
}

fn send(target: i32, sig: i32) {
    if target != 0 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(target, sig);
        }
    }
}

/// Send `sig` to `pid` and every process descending from it (found through `/proc`).
fn send_to_tree(pid: i32, sig: i32) {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // Field 4 (ppid) is the second after the parenthesised command name.
            if let Some(ppid) = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|v| v.parse::<i32>().ok())
            {
                parents.push((p, ppid));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    for p in tree {
        send(p, sig);
    }
}

fn arm_grace_timer(target: i32) {
    let _ = std::thread::Builder::new()
        .name("kerblam-grace".into())
        .spawn(move || {
            std::thread::sleep(GRACE);
            if CHILD.load(Ordering::SeqCst) == target {
                errln!("kerblam: the pipe did not stop within {GRACE:?}; killing it");
                send(target, libc::SIGKILL);
            }
        });
}

fn run_all_cleanups() {
    let slots: Vec<Arc<Slot>> = lock_cleanups()
        .iter()
        .rev()
        .map(|(_, s)| s.clone())
        .collect();
    for slot in slots {
        run_slot(&slot);
    }
}

/// `from_terminal`: the kernel sent it (Ctrl-C, or a hang-up of the terminal), so a child in our own
/// foreground process group got it too and must not get it twice.
fn on_signal(sig: i32, from_terminal: bool) {
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    let _ = FIRST.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    let child = CHILD.load(Ordering::SeqCst);
    let exit_now = n >= 3 || EXIT_SCOPES.load(Ordering::SeqCst) > 0;
    if exit_now {
        if child != 0 {
            send(child, libc::SIGKILL);
        }
        errln!(
            "\nkerblam: {} received: cleaning up and exiting",
            signal_name(sig)
        );
        run_all_cleanups();
        std::process::exit(code_for_signal(FIRST.load(Ordering::SeqCst)) as i32);
    }
    if n == 1 {
        if child != 0 {
            // `child > 0`: the child shares our process group (kerblam runs on a terminal).
            if child < 0 {
                send(child, sig);
            } else if !from_terminal {
                // Sent to kerblam alone: the pipe's processes would not see it.
                send_to_tree(child, sig);
            }
            arm_grace_timer(child);
            errln!(
                "\nkerblam: {} received: stopping the pipe, then cleaning up (again to stop it now)",
                signal_name(sig)
            );
        } else {
            errln!(
                "\nkerblam: {} received: stopping after cleaning up",
                signal_name(sig)
            );
        }
    } else {
        if child != 0 {
            send(child, libc::SIGKILL);
        }
        errln!("kerblam: stopping now (once more to exit at once; cleanups still run)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_cleanup_runs_once_on_drop_and_never_when_disarmed() {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let c = Cleanup::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let id = c.id;
        assert!(lock_cleanups().iter().any(|(i, _)| *i == id));
        c.run();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(!lock_cleanups().iter().any(|(i, _)| *i == id));

        let r = runs.clone();
        let c = Cleanup::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let id = c.id;
        c.disarm();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(!lock_cleanups().iter().any(|(i, _)| *i == id));
    }

    #[test]
    fn the_signal_thread_runs_pending_cleanups_only_once() {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let c = Cleanup::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let slot = c.slot.clone();
        run_slot(&slot); // as the signal thread would
        drop(c);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        use std::process::Command;
        let st = Command::new("sh").args(["-c", "exit 7"]).status().unwrap();
        assert_eq!(status_code(st), 7);
        let st = Command::new("sh")
            .args(["-c", "kill -TERM $$"])
            .status()
            .unwrap();
        assert_eq!(status_code(st), 143);
        assert_eq!(code_for_signal(SIGINT), 130);
    }
}
