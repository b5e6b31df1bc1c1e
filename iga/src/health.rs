//! `iga health`: the container health check. Asks `/healthz` (or `/readyz`)
//! of the instance at `--listen` and turns the answer into an exit status.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::cli::{anyhow_like::Result, HealthArgs};

pub async fn health(args: HealthArgs) -> Result<()> {
    let url = url(args.listen, args.ready);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms))
        .build()?;
    let answer = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = answer.status();
    if !status.is_success() {
        let body = answer.text().await.unwrap_or_default();
        return Err(format!("{url}: {status} {}", body.trim()).into());
    }
    println!("{url}: {status}");
    Ok(())
}

/// Where to ask: an unspecified listen address is reached on loopback.
fn url(listen: SocketAddr, ready: bool) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let path = if ready { "/readyz" } else { "/healthz" };
    format!("http://{}{path}", SocketAddr::new(ip, listen.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_address_is_asked_on_loopback() {
        assert_eq!(
            url("0.0.0.0:8080".parse().unwrap(), false),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(
            url("[::]:9000".parse().unwrap(), true),
            "http://[::1]:9000/readyz"
        );
        assert_eq!(
            url("10.0.0.5:80".parse().unwrap(), false),
            "http://10.0.0.5:80/healthz"
        );
    }
}
