//! A QUIC stream as a sequence of `protocol::wire::Message`s.
//!
//! Reading goes through `protocol::wire::FrameDecoder`, the same reassembly the
//! simulation tests with frames cut at every byte, so both binaries read frames exactly
//! as tested. Memory stays bounded: the decoder refuses an oversized length as soon as
//! its four bytes arrive, and we feed it at most `READ_CHUNK_BYTES_MAX` at a time.
//!
//! The reader task exists so a session loop can wait on "the peer said something" and on
//! other events at once without cancelling a half-read frame; its guard aborts it when
//! the session ends. Must not interpret messages: that is `protocol::sync`.

use protocol::error::WireError;
use protocol::wire::{FrameDecoder, Message};
use tokio::sync::mpsc;

/// Most bytes taken from the stream per read.
pub const READ_CHUNK_BYTES_MAX: usize = 64 * 1024;

/// Why no message could be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The connection or stream failed underneath (reset, timeout, closed).
    #[error("link: {0}")]
    Link(#[from] quinn::ReadError),
    /// The peer ended the stream in the middle of a frame.
    #[error("truncated: stream ended {pending_bytes} bytes into an unfinished frame")]
    Truncated { pending_bytes: usize },
    /// Bytes that are not a valid frame: too long, empty, wrong version, garbage.
    #[error("malformed: {0}")]
    Bad(#[from] WireError),
}

/// The receive half of a stream, read frame by frame.
#[derive(Debug)]
pub struct FrameReader {
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
}

impl FrameReader {
    pub fn new(recv: quinn::RecvStream) -> FrameReader {
        FrameReader { recv, decoder: FrameDecoder::default() }
    }

    /// The next message; `Ok(None)` is a clean end of stream between frames. Not cancel
    /// safe on its own (bytes read are kept, but use [`spawn_reader`] under `select!`).
    pub async fn read_message(&mut self) -> Result<Option<Message>, FrameError> {
        loop {
            if let Some(msg) = self.decoder.next_message()? {
                return Ok(Some(msg));
            }
            match self.recv.read_chunk(READ_CHUNK_BYTES_MAX, true).await? {
                Some(chunk) => self.decoder.push(&chunk.bytes),
                None => {
                    return match self.decoder.pending_bytes() {
                        0 => Ok(None),
                        pending_bytes => Err(FrameError::Truncated { pending_bytes }),
                    }
                }
            }
        }
    }
}

/// Writes one message as one frame.
pub async fn write_message(send: &mut quinn::SendStream, msg: &Message) -> Result<(), quinn::WriteError> {
    send.write_all(&msg.to_frame()).await
}

/// Messages read by a reader task; dropping the inbox stops the task.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::Receiver<Result<Message, FrameError>>,
    _reader: AbortOnDrop,
}

impl Inbox {
    /// The next message; `Ok(None)` once the stream ended cleanly. Cancel safe.
    pub async fn recv(&mut self) -> Result<Option<Message>, FrameError> {
        self.rx.recv().await.transpose()
    }
}

/// Starts a task that reads `recv` into an inbox of at most `messages_max` messages; it
/// stops after the end of the stream or the first error, which it passes on.
pub fn spawn_reader(recv: quinn::RecvStream, messages_max: usize) -> Inbox {
    let (tx, rx) = mpsc::channel(messages_max);
    let mut reader = FrameReader::new(recv);
    let task = tokio::spawn(async move {
        loop {
            let item = match reader.read_message().await {
                Ok(Some(msg)) => Ok(msg),
                // Dropping `tx` tells the inbox the stream ended cleanly.
                Ok(None) => return,
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    Inbox { rx, _reader: AbortOnDrop(task) }
}

/// Aborts the reader task when the session that owns its inbox ends, so a stream whose
/// session gave up is not read on.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
