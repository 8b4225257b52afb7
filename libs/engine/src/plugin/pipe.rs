//! An in-process pipe between a producer thread (a tar writer, `docker save`) and a consumer
//! (`docker build -`'s stdin, the replay writer), that carries the producer's failure to the reader.
//!
//! An OS pipe only says "end of file" when the writer stops, so an engine reading a tar cut short by
//! an error would build from a truncated context. Here the producer ends the stream with
//! [`PipeWriter::finish`] (a clean end) or [`PipeWriter::fail`] (the reader gets that error); a writer
//! dropped without either is also an error for the reader. The reader also fails when `cancelled`
//! says so, which makes `kerblam-engine` kill the engine reading it.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

enum Msg {
    Data(Vec<u8>),
    Done,
    Failed(String),
}

/// The writing end.
pub struct PipeWriter {
    tx: SyncSender<Msg>,
}

/// The reading end.
pub struct PipeReader<'c> {
    rx: Receiver<Msg>,
    buf: Vec<u8>,
    pos: usize,
    ended: bool,
    cancelled: &'c (dyn Fn() -> bool + Sync),
}

/// A pipe holding at most a few chunks in flight.
pub fn pipe(cancelled: &(dyn Fn() -> bool + Sync)) -> (PipeWriter, PipeReader<'_>) {
    let (tx, rx) = sync_channel(4);
    (
        PipeWriter { tx },
        PipeReader {
            rx,
            buf: Vec::new(),
            pos: 0,
            ended: false,
            cancelled,
        },
    )
}

impl PipeWriter {
    /// Ends the stream cleanly: the reader sees end of file.
    pub fn finish(self) {
        let _ = self.tx.send(Msg::Done);
    }

    /// Ends the stream with an error the reader returns.
    pub fn fail(self, message: impl Into<String>) {
        let _ = self.tx.send(Msg::Failed(message.into()));
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        self.tx
            .send(Msg::Data(data.to_vec()))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader stopped"))?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for PipeReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if (self.cancelled)() {
                return Err(io::Error::other("cancelled by the user"));
            }
            if self.pos < self.buf.len() {
                let n = out.len().min(self.buf.len() - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Data(d)) => {
                    self.buf = d;
                    self.pos = 0;
                }
                Ok(Msg::Done) => self.ended = true,
                Ok(Msg::Failed(m)) => return Err(io::Error::other(m)),
                Err(_) => {
                    return Err(io::Error::other(
                        "the stream's producer stopped without finishing it",
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_end_failure_and_abandonment() {
        let never = || false;
        let (mut w, mut r) = pipe(&never);
        std::thread::spawn(move || {
            w.write_all(b"hello ").unwrap();
            w.write_all(b"world").unwrap();
            w.finish();
        });
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello world");

        let (mut w, mut r) = pipe(&never);
        std::thread::spawn(move || {
            w.write_all(b"part").unwrap();
            w.fail("disk on fire");
        });
        let mut s = Vec::new();
        let e = r.read_to_end(&mut s).unwrap_err();
        assert!(e.to_string().contains("disk on fire"), "{e}");

        let (w, mut r) = pipe(&never);
        drop(w);
        assert!(r.read_to_end(&mut Vec::new()).is_err());

        let yes = || true;
        let (_w, mut r) = pipe(&yes);
        let e = r.read(&mut [0u8; 4]).unwrap_err();
        assert!(e.to_string().contains("cancelled"), "{e}");
    }
}
