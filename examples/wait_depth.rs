//! Wait until a RabbitMQ queue holds exactly N ready messages (passive declare, every
//! 5 ms): the benchmarks' stopwatch for work a broker does on its own, such as a shovel.
//! Usage: wait_depth AMQP_URL QUEUE N [TIMEOUT_SECS]

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, queue, n, rest @ ..] = args.as_slice() else {
        return Err("usage: wait_depth AMQP_URL QUEUE N [TIMEOUT_SECS]".into());
    };
    let want: u32 = n.parse()?;
    let timeout = Duration::from_secs(rest.first().map_or(Ok(300), |t| t.parse())?);
    let conn = Connection::connect(url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let start = Instant::now();
    loop {
        let q = ch
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        if q.message_count() == want {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "{queue} holds {} after {timeout:?}, not {want}",
                q.message_count()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
