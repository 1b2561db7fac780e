//! Request/reply with a slow responder: a transcoder takes about a second per video, and the
//! requester waits for the URL of the result.
//!
//! The transcoder answers with `Client::serve` from the group `transcoders` (more transcoders would
//! share the requests). Its work fits well within the group's ack deadline, so it extends nothing;
//! the requests carry a timeout long enough for the work. The group is declared at the start and
//! deleted at the end.
//!
//! ```sh
//! cargo run -p switchyard-client --example video_transcode -- --server http://127.0.0.1:50051
//! ```

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use support::{BoxError, say, within};
use switchyard_client::{Client, GroupConfig, ServeOptions};

/// The videos to transcode: source and target resolution.
const VIDEOS: [(&str, &str); 2] = [("uploads/cat.mov", "720p"), ("uploads/dog.mov", "1080p")];
/// How long one transcode takes.
const WORK: Duration = Duration::from_secs(1);
/// How long a requester waits for its reply: the work, with room to spare.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the run did: each source with the URL the transcoder replied.
#[derive(Debug)]
pub struct Outcome {
    pub urls: Vec<(String, String)>,
    pub took: Duration,
    /// Requests the transcoder acked before it left its group.
    pub acked: u64,
}

pub async fn run(client: Client) -> Result<Outcome, BoxError> {
    let topic = format!("{}.video.transcode", support::run_token("media"));
    // Declared first, so a request finds its responder even before the transcoder has joined: the
    // group keeps the request until then.
    client
        .admin()
        .declare_group(GroupConfig::new(topic.clone(), "transcoders"))
        .await?;

    let transcoder = {
        let (client, topic) = (client.clone(), topic.clone());
        tokio::spawn(async move {
            let options = ServeOptions::default().concurrency(VIDEOS.len());
            client
                .serve_with(topic, "transcoders", options, transcode)
                .await
        })
    };
    say("transcoder", "serving transcode requests");

    let started = Instant::now();
    let requests = VIDEOS.iter().map(|(source, resolution)| {
        let (client, topic) = (client.clone(), topic.clone());
        async move {
            say(
                "requester",
                format!("asks for {source} in {resolution} (waits up to {REQUEST_TIMEOUT:?})"),
            );
            let reply = client
                .request(topic, *source)
                .header("resolution", *resolution)
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await?;
            let url = String::from_utf8(reply.payload.to_vec())?;
            let took = started.elapsed().as_secs_f32();
            say("requester", format!("got {url} after {took:.1} s"));
            Ok::<_, BoxError>(((*source).to_owned(), url))
        }
    });
    let urls = try_join_all(requests).await?;
    let took = started.elapsed();

    // Stopping `serve` is graceful: the requests it answered are acked before it leaves the group,
    // so none is handed to another transcoder to be done again.
    transcoder.abort();
    let acked = within("the transcoder to leave", async {
        loop {
            let groups = client.admin().list_groups().await?;
            let ours = groups
                .iter()
                .find(|info| info.topic == topic && info.group == "transcoders");
            match ours {
                Some(info) if info.consumers == 0 => return Ok::<_, BoxError>(info.acked),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await??;
    say(
        "transcoder",
        format!("stopped; {acked} requests acked, none left for another transcoder"),
    );
    client.admin().delete_group(topic, "transcoders").await?;
    println!(
        "summary: {} videos transcoded in {:.1} s: {}",
        urls.len(),
        took.as_secs_f32(),
        urls.iter()
            .map(|(_, url)| url.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Outcome { urls, took, acked })
}

/// The handler: "transcodes" the source named in the request and answers with the result's URL.
async fn transcode(request: switchyard_client::Message) -> Result<String, String> {
    let source = String::from_utf8_lossy(&request.payload).into_owned();
    let resolution = request
        .headers
        .get("resolution")
        .ok_or_else(|| format!("no resolution for {source}"))?
        .clone();
    say(
        "transcoder",
        format!("transcoding {source} to {resolution} (about {WORK:?})"),
    );
    tokio::time::sleep(WORK).await;
    let name = source
        .rsplit('/')
        .next()
        .and_then(|file| file.split('.').next())
        .unwrap_or("video");
    let url = format!("https://cdn.example.com/videos/{name}-{resolution}.mp4");
    say("transcoder", format!("finished {source}: {url}"));
    Ok(url)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    support::main(run).await
}
