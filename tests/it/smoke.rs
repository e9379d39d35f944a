//! The basic loop: simulator → hydrant → client.

use hydrant::config::ServeArgs;

use crate::common::*;

#[tokio::test]
async fn redirect_then_hit() {
    let s = Stack::start(ServeArgs::default()).await;
    let r = s
        .client
        .get(&s.url(&format!("/files/{READY}/redirect")), None)
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("x-cache"), Some("MISS"));
    let r2 = s
        .client
        .get(&s.url(&format!("/files/{READY}/redirect")), None)
        .await;
    assert_eq!(r2.status, 302);
    assert_eq!(r2.header("x-cache"), Some("HIT"));
    assert_eq!(r.header("location"), r2.header("location"));
    assert_eq!(s.sim.hydrate_calls(READY), 1);
    s.stop().await;
}
