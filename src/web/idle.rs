//! The WebSocket idle timeout (`[limits] ws_idle_timeout`): a wrapper around
//! an upgraded socket, handed to the relay in place of the socket itself.
//! It pings the peer every third of the timeout (browsers answer pings on
//! their own, so a live but quiet page is never cut) and, when nothing at
//! all — no frame, no pong — has come from the peer for the whole timeout,
//! sends `error {code:"idle_timeout"}` and a close frame and ends the stream,
//! so the relay treats the socket as gone (a vanished peer on a half-open TCP
//! connection is noticed in bounded time; the session's away grace starts).
//! It does not interpret frames.

use axum::extract::ws::Message;
use futures_util::{Sink, Stream};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// An upgraded socket with an idle timeout and keep-alive pings.
pub struct IdleTimeout<S> {
    inner: S,
    idle: Duration,
    last_seen: Instant,
    timer: Pin<Box<Sleep>>,
    /// The error frame to send when the timeout fires (customer or agent shape).
    farewell: String,
    done: bool,
}

impl<S> IdleTimeout<S> {
    /// Wrap `inner`; `farewell` is the `error` frame sent on timeout.
    pub fn new(inner: S, idle: Duration, farewell: String) -> IdleTimeout<S> {
        let now = Instant::now();
        IdleTimeout {
            inner,
            idle,
            last_seen: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle / 3)),
            farewell,
            done: false,
        }
    }
}

impl<S> Stream for IdleTimeout<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    type Item = Result<Message, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(item)) => {
                this.last_seen = Instant::now();
                let next_ping = this.last_seen + this.idle / 3;
                this.timer.as_mut().reset(next_ping);
                return Poll::Ready(Some(item));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        while this.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if now.duration_since(this.last_seen) >= this.idle {
                this.done = true;
                // Best effort: the frames are queued and flushed if the
                // socket takes them now; the connection closes either way.
                let mut sink = Pin::new(&mut this.inner);
                if let Poll::Ready(Ok(())) = sink.as_mut().poll_ready(cx) {
                    let _ = sink
                        .as_mut()
                        .start_send(Message::Text(this.farewell.clone().into()));
                }
                if let Poll::Ready(Ok(())) = sink.as_mut().poll_ready(cx) {
                    let _ = sink.as_mut().start_send(Message::Close(None));
                }
                let _ = sink.as_mut().poll_flush(cx);
                return Poll::Ready(Some(Err(axum::Error::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "WebSocket idle timeout",
                )))));
            }
            // Time to ping; the next check is a third of the timeout later
            // (or at the deadline, whichever comes first).
            let mut sink = Pin::new(&mut this.inner);
            if let Poll::Ready(Ok(())) = sink.as_mut().poll_ready(cx) {
                let _ = sink.as_mut().start_send(Message::Ping(Default::default()));
                let _ = sink.as_mut().poll_flush(cx);
            }
            let next = (now + this.idle / 3).min(this.last_seen + this.idle);
            this.timer
                .as_mut()
                .reset(next.max(now + Duration::from_millis(1)));
        }
        Poll::Pending
    }
}

impl<S> Sink<Message> for IdleTimeout<S>
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    type Error = axum::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        Pin::new(&mut self.inner).start_send(item)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
