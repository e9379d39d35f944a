//! Webhook dedupe for the whole cluster: `SET NX` of an in-flight marker with a TTL, replaced
//! by a "done" marker for the dedupe window once the delivery completed. The id is VideoGen's
//! `webhook-id` of a verified delivery; nothing secret is written.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::Cluster;
use crate::webhooks::{Delivery, SharedDedupe};

impl Cluster {
    fn delivery_key(&self, id: &str) -> String {
        format!("{}{{webhooks}}:{id}", self.inner.prefix)
    }
}

impl SharedDedupe for Cluster {
    fn begin(&self, id: String, hold: Duration) -> BoxFuture<'static, Option<Delivery>> {
        let this = self.clone();
        Box::pin(async move {
            let deadline = this.deadline();
            let key = this.delivery_key(&id);
            let mut conn = this.conn();
            let mut set = redis::cmd("SET");
            set.arg(&key)
                .arg("inflight")
                .arg("NX")
                .arg("PX")
                .arg(hold.as_millis() as u64);
            let taken = this
                .run(
                    "webhook_begin",
                    deadline,
                    set.query_async::<Option<String>>(&mut conn),
                )
                .await?;
            if taken.is_some() {
                return Some(Delivery::New);
            }
            let mut get = redis::cmd("GET");
            get.arg(&key);
            let seen = this
                .run(
                    "webhook_begin",
                    deadline,
                    get.query_async::<Option<String>>(&mut conn),
                )
                .await?;
            Some(match seen.as_deref() {
                Some("done") => Delivery::Done,
                Some(_) => Delivery::InProgress,
                // It lapsed between the two commands: treat as new.
                None => Delivery::New,
            })
        })
    }

    fn finish(&self, id: String, done: bool, window: Duration) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move {
            let key = this.delivery_key(&id);
            let mut conn = this.conn();
            let c = if done {
                let mut c = redis::cmd("SET");
                c.arg(&key)
                    .arg("done")
                    .arg("PX")
                    .arg(window.as_millis() as u64);
                c
            } else {
                let mut c = redis::cmd("DEL");
                c.arg(&key);
                c
            };
            let _ = this
                .run(
                    "webhook_finish",
                    this.deadline(),
                    c.query_async::<()>(&mut conn),
                )
                .await;
        })
    }
}
