//! Listeners and the broker's lifetime: bind, accept with a connection
//! limit, run housekeeping, and close every log cleanly on shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::apis::ListenerRole;
use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::connection::ListenerContext;
use crate::connection_quotas::{ConnectionQuotas, Refusal};

/// What the process around the broker lends it.
#[derive(Default)]
pub struct Services {
    /// The schema registry topics with schema validation check ids against.
    pub schema_ids: Option<crate::schema_validation::SharedSchemaIds>,
}

/// Runs a broker until `shutdown` resolves.
pub async fn run(
    config: BrokerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with(config, shutdown, Services::default()).await
}

/// [`run`], with services from the process around it.
pub async fn run_with(
    config: BrokerConfig,
    shutdown: impl std::future::Future<Output = ()>,
    services: Services,
) -> anyhow::Result<()> {
    let max_open_files = config
        .log_max_open_files
        .unwrap_or_else(|| (soft_open_file_limit() / 2) as usize);
    strom_log::set_max_open_files(max_open_files);
    info!(max_open_files, "segment files kept open at most");
    let broker = Broker::start(config).await?;
    if let Some(ids) = services.schema_ids {
        broker.set_schema_ids(ids);
    }
    let mut tasks = Vec::new();
    let mut jwks_tasks = Vec::new();
    let (client_quotas, controller_quotas) = connection_quotas(&broker).await?;
    for quotas in [&client_quotas, &controller_quotas] {
        tokio::spawn(quotas.clone().close_excess_connections(broker.clone()));
    }
    let request_memory =
        crate::request_memory::RequestMemory::new(broker.config.queued_max_request_bytes)
            .map(Arc::new);
    // The quorum's peers reach this voter before it has loaded its image: an election
    // may need it, and loading needs a leader. A broker-only node (an observer of the
    // metadata log) is sent the log on its broker listeners, so it binds them all first
    // and holds clients' requests until it is unfenced.
    let observer = !broker.config.cluster.roles.controller;
    let (controller_listeners, client_listeners): (Vec<_>, Vec<_>) = broker
        .config
        .listeners
        .iter()
        .partition(|l| broker.config.cluster.is_controller_listener(&l.name));
    // Every listener's security (TLS stores, OAUTHBEARER's JWKS) is loaded before any
    // of them opens, so a client that reaches one listener finds all of them bound.
    let mut prepared = Vec::new();
    for listener in controller_listeners.into_iter().chain(client_listeners) {
        let role = if broker.config.cluster.is_controller_listener(&listener.name) {
            ListenerRole::Controller
        } else {
            ListenerRole::Client
        };
        let context = Arc::new(listener_context(&broker, &listener.name, role)?);
        if let Some(tls) = &context.tls {
            tasks.push(tokio::spawn(crate::tls::watch_for_changes(tls.clone())));
        }
        // A JWKS that cannot be loaded stops the start.
        let jwks = context
            .security
            .sasl
            .as_ref()
            .and_then(|s| s.oauthbearer.as_ref());
        if let Some(jwks) = jwks.and_then(|o| o.jwks.clone()) {
            let refresh = crate::oauth_jwks::start(jwks)
                .await
                .map_err(|e| anyhow::anyhow!("listener {}: {e}", listener.name))?;
            jwks_tasks.extend(refresh);
        }
        prepared.push((listener, role, context));
    }
    let mut opened_for_clients = false;
    for (listener, role, context) in prepared {
        if role == ListenerRole::Client && !observer && !opened_for_clients {
            open_for_clients(&broker).await?;
            opened_for_clients = true;
        }
        let addr = listener.socket_addr()?;
        let socket = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        match role {
            ListenerRole::Client => {
                info!(listener = %listener.name, %addr, security_protocol = context.security.protocol.name(), "listening for Kafka clients")
            }
            ListenerRole::Controller => {
                info!(listener = %listener.name, %addr, "listening for the controller's peers")
            }
        }
        tasks.push(tokio::spawn(accept_loop(
            broker.clone(),
            socket,
            match role {
                ListenerRole::Client => client_quotas.clone(),
                ListenerRole::Controller => controller_quotas.clone(),
            },
            request_memory.clone(),
            context,
        )));
    }
    if !opened_for_clients {
        open_for_clients(&broker).await?;
    }
    if let Some(addr) = broker.config.metrics_listener {
        let socket = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))?;
        info!(%addr, "serving Prometheus metrics at /metrics");
        tasks.push(tokio::spawn(crate::metrics::serve(broker.clone(), socket)));
    }
    tasks.extend(crate::housekeeping::spawn(broker.clone()));
    info!(node_id = broker.config.node_id, cluster_id = %broker.cluster_id, "strom broker started");
    shutdown.await;
    info!("shutting down");
    broker.controlled_shutdown().await;
    for task in tasks.iter().chain(&jwks_tasks) {
        task.abort();
    }
    broker.shutdown().await;
    Ok(())
}

/// A listener's name, role and security; a TLS listener's key and trust stores are
/// read here, so a bad store stops the start with its reason.
fn listener_context(
    broker: &Broker,
    name: &str,
    role: ListenerRole,
) -> anyhow::Result<ListenerContext> {
    let security = broker
        .config
        .security
        .get(name)
        .cloned()
        .unwrap_or_else(crate::security_config::ListenerSecurity::plaintext);
    let tls = match &security.tls {
        Some(settings) => Some(Arc::new(
            crate::tls::TlsListener::new(name, settings.clone())
                .map_err(|e| anyhow::anyhow!("listener {name}: {e}"))?,
        )),
        None => None,
    };
    Ok(ListenerContext {
        name: Arc::from(name),
        role,
        security,
        tls,
    })
}

/// Loads the image and joins the cluster: a one-voter node registers itself; a broker of
/// several nodes registers with the active controller and waits until it is unfenced; a
/// controller-only node registers nothing (it hosts no partitions). Voters run the
/// active controller's session timer.
async fn open_for_clients(broker: &Arc<Broker>) -> anyhow::Result<()> {
    broker.load().await?;
    let roles = broker.config.cluster.roles;
    if broker.config.cluster.is_single_voter() {
        broker.register().await?;
    } else {
        if roles.controller {
            tokio::spawn(broker.clone().run_session_timer());
        }
        if roles.broker {
            broker.join_cluster().await;
        }
    }
    broker.open_to_clients();
    Ok(())
}

/// The process's soft RLIMIT_NOFILE (1024 when it cannot be read).
fn soft_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        return 1 << 20;
    }
    limit.rlim_cur
}

/// The connection limits of the client listeners and, apart as in KRaft, of the
/// controller's. The per-ip overrides' names are resolved now: one that does not
/// resolve stops the start, as in Kafka.
async fn connection_quotas(
    broker: &Broker,
) -> anyhow::Result<(Arc<ConnectionQuotas>, Arc<ConnectionQuotas>)> {
    let config = &broker.config;
    let overrides_value = config.max_connections_per_ip_overrides.clone();
    let value = overrides_value.clone();
    let overrides = tokio::task::spawn_blocking(move || {
        crate::connection_quotas::resolve_per_ip_overrides(&value)
    })
    .await?
    .map_err(|why| anyhow::anyhow!("max.connections.per.ip.overrides: {why}"))?;
    let (controller, client): (Vec<Arc<str>>, Vec<Arc<str>>) = config
        .listeners
        .iter()
        .map(|l| Arc::<str>::from(l.name.as_str()))
        .partition(|name| config.cluster.is_controller_listener(name));
    let window_ms = i64::from(config.quota_window_size_seconds) * 1000;
    let quotas = |listeners: &[Arc<str>], ip_quotas: bool| {
        Arc::new(ConnectionQuotas::new(
            crate::connection_quotas::QuotaState::new(
                listeners,
                Some(&config.cluster.inter_broker_listener_name),
                config.quota_window_num,
                window_ms,
            ),
            (overrides_value.clone(), overrides.clone()),
            ip_quotas,
        ))
    };
    Ok((quotas(&client, true), quotas(&controller, false)))
}

async fn accept_loop(
    broker: Arc<Broker>,
    socket: TcpListener,
    quotas: Arc<ConnectionQuotas>,
    request_memory: Option<Arc<crate::request_memory::RequestMemory>>,
    listener: Arc<ListenerContext>,
) {
    let mut backoff = Duration::from_millis(5);
    loop {
        match socket.accept().await {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                // Waits out the creation rate and max.connections: this listener
                // accepts nothing meanwhile. An IPv4 client of a dual-stack socket
                // counts as its IPv4 address, as Java sees it.
                let ip = peer.ip().to_canonical();
                let slot = match quotas.admit(&broker, &listener.name, ip).await {
                    Ok(slot) => slot,
                    Err(Refusal::TooMany { max }) => {
                        info!(%ip, listener = %listener.name, max,
                            "rejected connection: the address already has the configured maximum of connections");
                        drop(stream);
                        continue;
                    }
                    Err(Refusal::Throttled { throttle_ms }) => {
                        debug!(%ip, listener = %listener.name, throttle_ms,
                            "throttled connection: the address is over its connection_creation_rate quota; closing it after the throttle time");
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(throttle_ms)).await;
                            drop(stream);
                        });
                        continue;
                    }
                };
                let broker = broker.clone();
                let memory = request_memory.clone();
                let listener = listener.clone();
                tokio::spawn(async move {
                    crate::connection::serve(broker, memory, stream, peer, listener, slot.live())
                        .await;
                    drop(slot);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}
