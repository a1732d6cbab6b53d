//! `chronos messaging …`: the messaging database from the shell — topics, messages and dead
//! letters of a tenant (keyset pages, `--json` for one JSON object per line), saving a
//! message by hand (idempotent, as the library's save), and applying the configured
//! retention.

use chronos::messaging::{ListQuery, NewMessage, Order, Page};
use chronos::Chronos;
use chronos_core::time::{format_instant, now_ms, parse_instant};
use chronos_core::Result;
use clap::{Args as ClapArgs, Subcommand};
use serde::Serialize;
use serde_json::{json, Value};

use crate::output::Out;

/// Which tenant.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Tenant {
    /// Tenant id.
    #[arg(long, default_value = "default")]
    tenant: String,
}

/// A time-ordered page of one topic.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Listing {
    #[command(flatten)]
    tenant: Tenant,
    /// Topic.
    #[arg(long)]
    topic: String,
    /// Only after this instant (ISO-8601).
    #[arg(long)]
    after: Option<String>,
    /// Only before this instant (ISO-8601).
    #[arg(long)]
    before: Option<String>,
    /// At most this many (1..=1000).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Oldest first (default: newest first).
    #[arg(long)]
    oldest: bool,
    /// Continue after a previous page (the cursor it printed).
    #[arg(long)]
    cursor: Option<String>,
}

impl Listing {
    fn query(&self) -> Result<ListQuery> {
        let mut q = ListQuery::new(&self.topic).limit(self.limit);
        if let Some(a) = &self.after {
            q = q.after(parse_instant(a)?);
        }
        if let Some(b) = &self.before {
            q = q.before(parse_instant(b)?);
        }
        if self.oldest {
            q = q.order(Order::Oldest);
        }
        if let Some(c) = &self.cursor {
            q = q.cursor(c);
        }
        Ok(q)
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum MessagingCommand {
    /// A tenant's topics.
    Topics {
        #[command(flatten)]
        tenant: Tenant,
    },
    /// A page of a topic's messages.
    Messages(Listing),
    /// A page of a topic's dead letters.
    DeadLetters(Listing),
    /// Save one message (idempotent: the same id and content again is a duplicate, the same
    /// id with other content an error).
    Save {
        #[command(flatten)]
        tenant: Tenant,
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Message id.
        #[arg(long)]
        msg_id: String,
        /// Payload (JSON).
        #[arg(long)]
        payload: String,
        /// Headers (a JSON object).
        #[arg(long)]
        headers: Option<String>,
    },
    /// Apply the configured retention (`databases.messaging.retention`) to a tenant now.
    Retention {
        #[command(flatten)]
        tenant: Tenant,
    },
}

fn json_arg(what: &str, s: &str) -> Result<Value> {
    serde_json::from_str(s)
        .map_err(|e| chronos::Error::validation(format!("--{what} is not valid JSON: {e}")))
}

pub(crate) fn line<T: Serialize>(out: &Out, v: &T, human: impl FnOnce() -> String) {
    if out.is_json() {
        out!("{}", serde_json::to_value(v).unwrap_or(Value::Null));
    } else {
        out!("{}", human());
    }
}

fn page<T: Serialize>(out: &Out, p: &Page<T>, human: impl Fn(&T) -> String) {
    for item in &p.items {
        line(out, item, || human(item));
    }
    if let Some(next) = &p.next {
        if out.is_json() {
            out!("{}", json!({ "next": next }));
        } else {
            out!("more: --cursor '{next}'");
        }
    }
}

pub(crate) async fn run(chronos: &Chronos, cmd: &MessagingCommand, out: &Out) -> Result<()> {
    match cmd {
        MessagingCommand::Topics { tenant } => {
            let m = chronos.messaging(&tenant.tenant).await?;
            let mut after: Option<String> = None;
            loop {
                let topics = m.topics().list(after.as_deref(), 1000).await?;
                for t in &topics {
                    line(out, t, || {
                        format!(
                            "{} ({} shards, since {})",
                            t.topic,
                            t.shards,
                            format_instant(t.created_at)
                        )
                    });
                }
                match topics.last() {
                    Some(t) if topics.len() == 1000 => after = Some(t.topic.clone()),
                    _ => break,
                }
            }
        }
        MessagingCommand::Messages(l) => {
            let m = chronos.messaging(&l.tenant.tenant).await?;
            let p = m.messages().list(&l.query()?).await?;
            page(out, &p, |x| {
                format!(
                    "{} {} {} bytes {}",
                    format_instant(x.first_seen_at),
                    x.msg_id,
                    x.size,
                    x.payload
                )
            });
        }
        MessagingCommand::DeadLetters(l) => {
            let m = chronos.messaging(&l.tenant.tenant).await?;
            let p = m.dead_letters().list(&l.query()?).await?;
            page(out, &p, |x| {
                format!(
                    "{} {} ({}): {} after {} deliveries",
                    format_instant(x.failed_at),
                    x.msg_id,
                    x.subscription,
                    x.reason,
                    x.deliveries
                )
            });
        }
        MessagingCommand::Save {
            tenant,
            topic,
            msg_id,
            payload,
            headers,
        } => {
            let m = chronos.messaging(&tenant.tenant).await?;
            let mut msg = NewMessage::new(topic, msg_id, json_arg("payload", payload)?);
            if let Some(h) = headers {
                match json_arg("headers", h)? {
                    Value::Object(h) => msg = msg.headers(h),
                    _ => {
                        return Err(
                            chronos::Error::validation("--headers must be a JSON object")
                                .with("field", "headers"),
                        )
                    }
                }
            }
            let outcome = m.messages().save(&msg).await?;
            line(out, &json!({"msgId": msg_id, "outcome": outcome}), || {
                format!(
                    "{msg_id}: {}",
                    serde_json::to_value(outcome)
                        .unwrap_or(Value::Null)
                        .as_str()
                        .unwrap_or("")
                )
            });
        }
        MessagingCommand::Retention { tenant } => {
            let m = chronos.messaging(&tenant.tenant).await?;
            let policy = m.settings().retention.clone();
            let r = m.apply_retention(&policy, now_ms()).await?;
            line(out, &r, || {
                format!(
                    "removed {} deliveries, {} dead letters, {} messages, {} versions; kept {} open deliveries and {} messages still needed",
                    r.deliveries, r.dead_letters, r.messages, r.versions, r.open_deliveries_kept, r.messages_kept
                )
            });
        }
    }
    Ok(())
}
