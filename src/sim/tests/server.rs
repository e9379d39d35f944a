//! Shutdown of the accept loop.

use std::time::Duration;

use super::sim;

#[tokio::test]
async fn shutdown_stops_accepting() {
    let s = sim().await;
    assert_eq!(s.get("/v1/me").await.status, 200);
    s.h.shutdown();
    s.h.shutdown();
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(s.h.addr()).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused);
}
