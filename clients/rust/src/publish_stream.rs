//! One PublishStream: numbered batches out, their answers back in the same order.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::{
    client::Client,
    message::Published,
    pb::{self, publish_stream_response},
};

/// What a PublishStream frame adds around its messages, at most: the sequence and field tags.
pub(crate) const FRAME_ENVELOPE: usize = 16;

/// Frames handed to the transport ahead of the network. The publisher keeps fewer than this many
/// batches unanswered, so sending never waits.
pub(crate) const FRAMES: usize = 256;

/// The broker's answer to one batch.
pub(crate) struct Answer {
    pub(crate) sequence: u64,
    pub(crate) result: Result<Vec<Published>, Status>,
}

/// An open PublishStream.
pub(crate) struct PublishStream {
    frames: mpsc::Sender<pb::PublishStreamRequest>,
    answers: Streaming<pb::PublishStreamResponse>,
    next_sequence: u64,
    /// Every batch asks the broker to wait for room rather than refuse it when full.
    wait_for_room: bool,
}

impl PublishStream {
    /// Opens a stream carrying `first` as batch 1, within the client's call timeout.
    pub(crate) async fn open(
        client: &Client,
        first: Vec<pb::Message>,
        wait_for_room: bool,
    ) -> Result<(Self, u64), Status> {
        let (frames, body) = mpsc::channel(FRAMES);
        let mut broker = client.broker.clone();
        let call = broker.publish_stream(ReceiverStream::new(body));
        // The first batch goes with the headers; room is certain, the channel is new.
        let _ = frames.try_send(pb::PublishStreamRequest {
            sequence: 1,
            messages: first,
            wait_for_room,
        });
        let answers = match tokio::time::timeout(client.call_timeout, call).await {
            Ok(opened) => opened?.into_inner(),
            Err(_) => {
                return Err(Status::deadline_exceeded(format!(
                    "the broker did not open a publish stream within {} ms",
                    client.call_timeout.as_millis()
                )));
            }
        };
        let stream = Self {
            frames,
            answers,
            next_sequence: 1,
            wait_for_room,
        };
        Ok((stream, 1))
    }

    /// Sends a batch and returns its sequence number.
    pub(crate) fn send(&mut self, messages: Vec<pb::Message>) -> Result<u64, Status> {
        self.next_sequence += 1;
        let frame = pb::PublishStreamRequest {
            sequence: self.next_sequence,
            messages,
            wait_for_room: self.wait_for_room,
        };
        self.frames.try_send(frame).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => {
                Status::internal("more publish batches in flight than the stream buffers")
            }
            mpsc::error::TrySendError::Closed(_) => {
                Status::unavailable("the publish stream closed")
            }
        })?;
        Ok(self.next_sequence)
    }

    /// The next answer; an error when the stream broke or ended.
    pub(crate) async fn next_answer(&mut self) -> Result<Answer, Status> {
        let answer = self
            .answers
            .message()
            .await?
            .ok_or_else(|| Status::unavailable("the broker ended the publish stream"))?;
        let result = match answer.result {
            Some(publish_stream_response::Result::Published(response)) => Ok(response
                .published
                .into_iter()
                .map(Published::from)
                .collect()),
            Some(publish_stream_response::Result::Error(error)) => {
                Err(crate::error::frame_status(error))
            }
            None => Err(Status::internal("the broker sent an empty answer")),
        };
        Ok(Answer {
            sequence: answer.sequence,
            result,
        })
    }
}
