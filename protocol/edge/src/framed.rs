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
//!
//! HQ reads through [`spawn_budgeted_reader`] instead: it reads a frame's length first,
//! refuses it above the connection's own limit, and takes that many bytes from a
//! [`ByteBudget`] shared by all connections before reading the body, so what all peers
//! together make HQ buffer is bounded, not only each frame.

use std::sync::Arc;

use protocol::error::WireError;
use protocol::wire::{frame_len, FrameDecoder, Message, FRAME_HEADER_BYTES};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

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

/// One read result, with the budget its bytes hold until the session takes it.
type Item = (Result<Message, FrameError>, Option<OwnedSemaphorePermit>);

/// Messages read by a reader task; dropping the inbox stops the task.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::Receiver<Item>,
    _reader: AbortOnDrop,
}

impl Inbox {
    /// The next message; `Ok(None)` once the stream ended cleanly. Cancel safe. The
    /// budget a frame held is given back here: the session holds one message at a time.
    pub async fn recv(&mut self) -> Result<Option<Message>, FrameError> {
        self.rx.recv().await.map(|(item, _permit)| item).transpose()
    }
}

/// Bytes that all connections together may have buffered in frames read but not yet
/// handled (HQ's `buffered_bytes_max`).
#[derive(Clone, Debug)]
pub struct ByteBudget {
    sem: Arc<Semaphore>,
    bytes_max: u32,
}

impl ByteBudget {
    /// A budget of `bytes_max`, raised to one largest frame so that any valid frame
    /// can be read at all.
    pub fn new(bytes_max: usize) -> ByteBudget {
        // Permits are taken `u32` at a time, so the budget is capped at `u32::MAX` bytes too.
        let cap = Semaphore::MAX_PERMITS.min(u32::MAX as usize);
        let bytes_max = u32::try_from(bytes_max.clamp(protocol::wire::FRAME_BYTES_MAX, cap)).unwrap_or(u32::MAX);
        ByteBudget { sem: Arc::new(Semaphore::new(bytes_max as usize)), bytes_max }
    }

    /// Bytes currently free.
    pub fn available(&self) -> usize {
        self.sem.available_permits()
    }

    async fn take(&self, bytes: usize) -> OwnedSemaphorePermit {
        let n = (bytes.min(u32::MAX as usize) as u32).min(self.bytes_max);
        self.sem.clone().acquire_many_owned(n).await.expect("the budget's semaphore is never closed")
    }
}

/// Reads one frame: its length, then `budget` for it, then the body. `Ok(None)` is a
/// clean end of stream between frames.
async fn read_budgeted(
    recv: &mut quinn::RecvStream,
    budget: &ByteBudget,
    frame_bytes_max: usize,
) -> Result<Option<(Message, OwnedSemaphorePermit)>, FrameError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(quinn::ReadExactError::FinishedEarly(n)) => return Err(FrameError::Truncated { pending_bytes: n }),
        Err(quinn::ReadExactError::ReadError(e)) => return Err(e.into()),
    }
    // `frame_len` refuses what no peer may send; this connection may have a lower limit.
    let len = frame_len(header)?;
    if len > frame_bytes_max {
        return Err(WireError::FrameTooLarge { len, max: frame_bytes_max }.into());
    }
    let permit = budget.take(FRAME_HEADER_BYTES + len).await;
    let mut body = vec![0u8; len];
    match recv.read_exact(&mut body).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(n)) => return Err(FrameError::Truncated { pending_bytes: FRAME_HEADER_BYTES + n }),
        Err(quinn::ReadExactError::ReadError(e)) => return Err(e.into()),
    }
    Ok(Some((Message::from_payload(&body)?, permit)))
}

/// Like [`spawn_reader`], for HQ: frames above `frame_bytes_max` are refused before
/// their body is read, and each frame's bytes are taken from `budget` before it is read
/// and given back when the session takes the message.
pub fn spawn_budgeted_reader(recv: quinn::RecvStream, messages_max: usize, budget: ByteBudget, frame_bytes_max: usize) -> Inbox {
    spawn_source(Source::Budgeted { recv, budget, frame_bytes_max }, messages_max)
}

/// Starts a task that reads `recv` into an inbox of at most `messages_max` messages; it
/// stops after the end of the stream or the first error, which it passes on.
pub fn spawn_reader(recv: quinn::RecvStream, messages_max: usize) -> Inbox {
    spawn_source(Source::Plain(FrameReader::new(recv)), messages_max)
}

/// Where a reader task's frames come from: a plain stream, or one whose frames are
/// bounded and paid for from a shared budget.
enum Source {
    Plain(FrameReader),
    Budgeted { recv: quinn::RecvStream, budget: ByteBudget, frame_bytes_max: usize },
}

impl Source {
    async fn next(&mut self) -> Result<Option<(Message, Option<OwnedSemaphorePermit>)>, FrameError> {
        Ok(match self {
            Source::Plain(reader) => reader.read_message().await?.map(|msg| (msg, None)),
            Source::Budgeted { recv, budget, frame_bytes_max } => {
                read_budgeted(recv, budget, *frame_bytes_max).await?.map(|(msg, permit)| (msg, Some(permit)))
            }
        })
    }
}

/// The one reader loop: messages into the inbox until the end of the stream, the first
/// error (passed on, then the task ends) or the inbox is dropped.
fn spawn_source(mut source: Source, messages_max: usize) -> Inbox {
    let (tx, rx) = mpsc::channel(messages_max);
    let task = tokio::spawn(async move {
        loop {
            let item: Item = match source.next().await {
                Ok(Some((msg, permit))) => (Ok(msg), permit),
                // Dropping `tx` tells the inbox the stream ended cleanly.
                Ok(None) => return,
                Err(e) => (Err(e), None),
            };
            let failed = item.0.is_err();
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
