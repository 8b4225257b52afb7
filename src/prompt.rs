//! Questions to the user, as Kerblam! 1.x asks them: a question with its options (`[yes/no]`),
//! answered by a line whose first letter picks the option (`y`, `Yes`, `n`...); an empty or
//! unknown answer asks again. Questions go to stderr, so stdout stays the command's own.
//!
//! Kerblam! 1.x reads the answer from standard input whether or not it is a terminal, so
//! `yes | kerblam data clean` works; kerblam does too. Where 1.x then loops for ever (standard
//! input closed, or at its end), kerblam gets [`Answer::NoAnswer`] and the caller decides.

use std::io::{BufRead, IsTerminal};

/// What a question got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<T> {
    /// An option was chosen.
    Chosen(T),
    /// Standard input ended (or cannot be read) before an option was chosen.
    NoAnswer,
}

/// Whether standard input is a terminal.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Ask `question` until a line picks one of `options` (`(first letter, value)`), e.g.
/// `[('y', true), ('n', false)]` shown as `[yes/no]` through `shown`.
pub fn choose<T: Copy>(question: &str, shown: &str, options: &[(char, T)]) -> Answer<T> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock();
    loop {
        crate::output::write_stderr(format_args!("{question} [{shown}]: "));
        let mut line = String::new();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => return Answer::NoAnswer,
            Ok(_) => {}
        }
        let answer = line.trim();
        let Some(first) = answer.chars().next() else {
            errln!("Please choose one option.");
            continue;
        };
        let first = first.to_ascii_lowercase();
        match options.iter().find(|(c, _)| *c == first) {
            Some((_, v)) => return Answer::Chosen(*v),
            None => errln!("'{answer}' is not in {shown}"),
        }
    }
}

/// A yes/no question.
pub fn yes_no(question: &str) -> Answer<bool> {
    choose(question, "yes/no", &[('y', true), ('n', false)])
}

/// A line of free text (trimmed); `None` when standard input ended.
pub fn text(question: &str) -> Option<String> {
    crate::output::write_stderr(format_args!("{question}"));
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_string()),
    }
}
