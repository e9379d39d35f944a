//! Who is calling: bearer extraction, the client-token swap, and the resulting tenant.
//!
//! A client's own key is forwarded as-is (its tenant is the hash of that key); a configured
//! client token is replaced by the proxy's key (and shares the proxy's tenant with `/files/...`
//! and webhooks). Token comparison is constant-time.

use http::{header, HeaderMap, HeaderValue};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::error::Error;
use crate::tenant::Tenant;

/// What a request is sent upstream with.
#[derive(Clone, Debug)]
pub struct UpstreamAuth {
    /// The full `Authorization` header value to send upstream.
    pub header: HeaderValue,
    /// The tenant that header belongs to.
    pub tenant: Tenant,
}

/// Auth settings, precomputed once.
pub struct Auth {
    proxy: Option<UpstreamAuth>,
    client_tokens: Vec<Vec<u8>>,
    admin_token: Option<Vec<u8>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("proxy_key", &self.proxy.is_some())
            .field("client_tokens", &self.client_tokens.len())
            .finish()
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = v.split_at(v.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

impl Auth {
    /// Build from configuration.
    pub fn new(cfg: &Config) -> Auth {
        let proxy = cfg.api_key.as_ref().and_then(|k| {
            let mut header = HeaderValue::from_str(&format!("Bearer {}", k.expose())).ok()?;
            header.set_sensitive(true);
            Some(UpstreamAuth {
                header,
                tenant: Tenant::of_key(k.expose().as_bytes()),
            })
        });
        Auth {
            proxy,
            client_tokens: cfg
                .client_tokens
                .iter()
                .map(|t| t.expose().as_bytes().to_vec())
                .collect(),
            admin_token: cfg
                .admin_token
                .as_ref()
                .map(|t| t.expose().as_bytes().to_vec()),
        }
    }

    /// The proxy's own credentials (for `/files/...` and webhooks).
    pub fn proxy(&self) -> Result<&UpstreamAuth, Error> {
        self.proxy.as_ref().ok_or(Error::NoProxyKey)
    }

    /// The proxy's tenant, when a key is configured.
    pub fn proxy_tenant(&self) -> Option<Tenant> {
        self.proxy.as_ref().map(|p| p.tenant)
    }

    /// Resolve a `/v1/...` request's credentials: `401` without a bearer.
    pub fn for_request(&self, headers: &HeaderMap) -> Result<UpstreamAuth, Error> {
        let token = bearer(headers).ok_or(Error::MissingApiKey)?;
        // Check every token so timing does not reveal which one matched.
        let mut is_client_token = false;
        for t in &self.client_tokens {
            is_client_token |= ct_eq(t, token);
        }
        if is_client_token {
            return self.proxy().cloned();
        }
        let mut header = headers
            .get(header::AUTHORIZATION)
            .cloned()
            .ok_or(Error::MissingApiKey)?;
        header.set_sensitive(true);
        Ok(UpstreamAuth {
            header,
            tenant: Tenant::of_key(token),
        })
    }

    /// Check the admin bearer: `404` when no admin token is configured, `401` when wrong.
    pub fn check_admin(&self, headers: &HeaderMap) -> Result<(), Error> {
        let Some(expected) = &self.admin_token else {
            return Err(Error::NotFound("Not found."));
        };
        match bearer(headers) {
            Some(t) if ct_eq(expected, t) => Ok(()),
            _ => Err(Error::AdminToken),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ServeArgs};

    fn cfg(tokens: Option<&str>) -> Config {
        Config::resolve(ServeArgs {
            api_key: Some("proxy-key".into()),
            client_tokens: tokens.map(Into::into),
            admin_token: Some("adm".into()),
            ..Default::default()
        })
        .unwrap()
    }

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn own_key_forwarded_as_is() {
        let a = Auth::new(&cfg(None));
        let u = a.for_request(&h("Bearer client-key")).unwrap();
        assert_eq!(u.header, "Bearer client-key");
        assert_eq!(u.tenant, Tenant::of_key(b"client-key"));
        assert_ne!(u.tenant, a.proxy_tenant().unwrap());
    }

    #[test]
    fn client_token_swapped_for_proxy_key() {
        let a = Auth::new(&cfg(Some("tok1,tok2")));
        let u = a.for_request(&h("Bearer tok2")).unwrap();
        assert_eq!(u.header, "Bearer proxy-key");
        assert_eq!(u.tenant, a.proxy_tenant().unwrap());
    }

    #[test]
    fn missing_or_malformed_bearer_is_401() {
        let a = Auth::new(&cfg(None));
        assert!(matches!(
            a.for_request(&HeaderMap::new()),
            Err(Error::MissingApiKey)
        ));
        assert!(matches!(
            a.for_request(&h("Basic abc")),
            Err(Error::MissingApiKey)
        ));
        assert!(matches!(
            a.for_request(&h("Bearer ")),
            Err(Error::MissingApiKey)
        ));
        assert!(a.for_request(&h("bearer x")).is_ok());
    }

    #[test]
    fn admin() {
        let a = Auth::new(&cfg(None));
        assert!(a.check_admin(&h("Bearer adm")).is_ok());
        assert!(matches!(
            a.check_admin(&h("Bearer nope")),
            Err(Error::AdminToken)
        ));
        let none = Auth::new(&Config::resolve(ServeArgs::default()).unwrap());
        assert!(matches!(
            none.check_admin(&h("Bearer adm")),
            Err(Error::NotFound(_))
        ));
    }
}
