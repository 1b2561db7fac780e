//! `switchyard top`: the broker at a glance in a terminal, in the spirit of nats-top, for when there
//! is no browser. It reads the JSON API of the broker's HTTP listener once per `--interval` and
//! redraws the screen; `--once` prints one snapshot and exits, for scripts and tests.

mod fetch;
mod render;

use std::io::Write;

use secrecy::ExposeSecret;

use self::{fetch::Api, render::Screen};
use super::{Failure, interrupted};
use crate::cli::TopArgs;

pub use render::SortBy;

pub const HELP: &str = "\
It reads the JSON API of the broker's HTTP listener (--url, the broker's --http address), so \
the broker must run with its HTTP listener on (the default, 127.0.0.1:50052). With \
authentication on, give an admin token. Rates are per second over the broker's last second.

Examples:
  switchyard top
  switchyard top --url http://10.0.0.5:50052 --token $ADMIN_TOKEN --sort ready
  switchyard top --once";

/// Clears the screen and moves the cursor home: every refresh draws a whole screen.
const CLEAR: &str = "\x1b[H\x1b[2J";

pub async fn run(args: TopArgs) -> Result<(), Failure> {
    let token = args
        .auth
        .token
        .as_ref()
        .map(|token| token.expose_secret().to_owned());
    let api = Api::new(&args.url, token).map_err(Failure::new)?;
    if args.once {
        let screen = fetch(&api).await.map_err(Failure::new)?;
        return print(&screen.render(args.sort));
    }
    let mut tick = tokio::time::interval(args.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = interrupted();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => return Ok(()),
        }
        // Ctrl-C ends a fetch that hangs too (an address that drops packets).
        let fetched = tokio::select! {
            fetched = fetch(&api) => fetched,
            () = &mut stop => return Ok(()),
        };
        let frame = match fetched {
            Ok(screen) => screen.render(args.sort),
            // A broker restarting is worth watching through: keep trying.
            Err(error) => format!(
                "{error}\nretrying every {:?}; Ctrl-C to quit\n",
                args.interval
            ),
        };
        print(&format!("{CLEAR}{frame}"))?;
    }
}

async fn fetch(api: &Api) -> Result<Screen, String> {
    let (overview, groups, subscriptions, connections) = tokio::try_join!(
        api.get("/api/overview"),
        api.get("/api/groups"),
        api.get("/api/subscriptions"),
        api.get("/api/connections"),
    )?;
    Ok(Screen {
        overview,
        groups,
        subscriptions,
        connections,
    })
}

fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|_| Failure::OutputClosed)
}
