//! A blocking ureq agent whose TLS is the rustls `ClientConfig` it is given.
//!
//! Owns the connector chain of that agent: a CONNECT proxy when one is configured, then TCP,
//! then TLS for `https` over the shared config. ureq's own rustls connector builds its
//! `ClientConfig` from a `TlsConfig` (roots, provider) and cannot take a built one; the root
//! crate builds exactly one, with one crypto provider and the platform verifier, for every
//! client it has. So this module wraps the chained transport in a rustls `ClientConnection` over
//! that `Arc<ClientConfig>` itself. It chooses no provider and no roots, and never falls back
//! to ureq's defaults.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    TcpConnector, Transport, TransportAdapter,
};

/// An agent that answers any status as a response (the caller judges it), gives up after
/// `timeout` for the whole exchange, and speaks TLS with `tls`.
pub(crate) fn agent(tls: &Arc<ClientConfig>, timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build();
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector::default())
            .chain(SharedTls {
                config: Arc::clone(tls),
            });
    ureq::Agent::with_parts(config, connector, DefaultResolver::default())
}

/// Wraps the chained transport in TLS when the URL is `https`.
struct SharedTls {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for SharedTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedTls").finish_non_exhaustive()
    }
}

impl<In: Transport> Connector<In> for SharedTls {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        // Plain http, or already TLS (to an https proxy): pass it on as it is.
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details
            .uri
            .authority()
            .map(|authority| authority.host())
            .ok_or(ureq::Error::Tls(
                "the URL has no host to check the certificate against",
            ))?;
        // An IPv6 literal comes in brackets; a certificate names the bare address.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare)
            .map_err(|_| ureq::Error::Tls("the URL's host is not a TLS server name"))?
            .to_owned();
        let mut connection = ClientConnection::new(Arc::clone(&self.config), name)?;
        let inner: Box<dyn Transport> = Box::new(transport);
        let mut socket = TransportAdapter::new(inner, details.current_time.clone());
        socket.set_timeout(details.timeout);
        connection
            .complete_io(&mut socket)
            .map_err(handshake_error)?;
        Ok(Some(Either::B(TlsTransport {
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            stream: StreamOwned::new(connection, socket),
        })))
    }
}

/// A failed handshake as ureq's typed error: rustls's own error (a certificate no root signed)
/// stays a rustls error rather than an opaque I/O one; a timeout stays a timeout.
fn handshake_error(error: io::Error) -> ureq::Error {
    let tls = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match tls {
        Some(tls) => ureq::Error::Rustls(tls),
        None => ureq::Error::from(error),
    }
}

/// An HTTP/1.1 transport inside a rustls session.
pub(crate) struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport")
            .field("inner", &self.stream.sock.inner())
            .finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
