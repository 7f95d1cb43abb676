//! Keeps the process's view of the committed head current when other nodes append: `LISTEN`
//! on its own connection, each notification carrying the head a commit left; and a poll of the
//! head row every [`POLL`], so that a notification lost with a dropped connection delays an
//! event by at most that long and never loses it. A dropped listening connection is made again
//! at the next poll.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::{stream, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use super::{advance, read_head, NOTIFY_CHANNEL};

/// The safety net's period.
pub const POLL: Duration = Duration::from_secs(1);

/// Runs until the runtime stops.
pub async fn run(config: Config, pool: Pool, head: Arc<watch::Sender<u64>>) {
    let mut listening: Option<(Client, JoinHandle<()>)> = None;
    let mut warned = false;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if listening
            .as_ref()
            .is_none_or(|(_, task)| task.is_finished())
        {
            match listen(&config, head.clone()).await {
                Ok(connected) => {
                    listening = Some(connected);
                    if warned {
                        tracing::info!("listening for PostgreSQL notifications again");
                    }
                    warned = false;
                }
                Err(e) => {
                    listening = None;
                    if !warned {
                        tracing::warn!(
                            "cannot listen for PostgreSQL notifications ({e}); polling every {}s",
                            POLL.as_secs()
                        );
                    }
                    warned = true;
                }
            }
        }
        // After (re)connecting too: notifications sent while not listening are gone.
        match read_head(&pool).await {
            Ok(h) => advance(&head, h),
            Err(e) => tracing::debug!("polling the PostgreSQL head failed: {e}"),
        }
    }
}

/// Connects and listens. The task forwards notifications until the connection ends; the
/// client must be kept as long as the task runs (dropping it closes the connection).
async fn listen(
    config: &Config,
    head: Arc<watch::Sender<u64>>,
) -> Result<(Client, JoinHandle<()>), tokio_postgres::Error> {
    let mut config = config.clone();
    config.application_name("adjudicator listener");
    let (client, mut connection) = config.connect(NoTls).await?;
    let task = tokio::spawn(async move {
        let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => match n.payload().parse::<u64>() {
                    Ok(position) => advance(&head, position),
                    Err(_) => tracing::debug!("ignored a notification: {:?}", n.payload()),
                },
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("PostgreSQL listening connection lost: {e}");
                    break;
                }
            }
        }
    });
    if let Err(e) = client
        .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
        .await
    {
        task.abort();
        return Err(e);
    }
    Ok((client, task))
}
