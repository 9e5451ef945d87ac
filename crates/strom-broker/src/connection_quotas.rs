//! Connection limits as Kafka's `ConnectionQuotas` applies them when a listener
//! accepts a socket:
//!
//! - `max.connection.creation.rate`, broker-wide and per listener
//!   (`listener.name.<l>.max.connection.creation.rate`, which defaults to the
//!   broker-wide value): each new connection is recorded in a windowed rate (Kafka's
//!   `Rate` over `quota.window.num` samples of `quota.window.size.seconds`); over the
//!   limit, the listener waits before it accepts anything more (at most one window),
//!   it does not refuse.
//! - `max.connections`, broker-wide and per listener (`listener.name.<l>.max.connections`,
//!   defaulting to the broker-wide value): at the limit the listener stops accepting
//!   until a connection closes. The inter-broker listener is exempt from the broker-wide
//!   limit when there are other listeners, as in Kafka. When more connections are open
//!   than the broker-wide limit (it was lowered, or the inter-broker listener went past
//!   it), the least recently active ones of the other listeners are closed, as Kafka's
//!   processors close their lowest-priority channel.
//! - `max.connections.per.ip` and `max.connections.per.ip.overrides`: a connection over
//!   its address's limit is accepted and closed at once, with a log line.
//! - The client quota `connection_creation_rate` of an IP entity (or the default IP's),
//!   on client listeners: a connection that takes its address over the rate is accepted,
//!   not served, and closed once the throttle time (at most one window) has passed, as
//!   Kafka's acceptor does with a ConnectionThrottledException.
//!
//! `QuotaState` is the bookkeeping alone (time passed in); `ConnectionQuotas` wraps it
//! for the accept loops. Controller listeners get their own instance, as KRaft's
//! controller has its own socket server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::broker::Broker;
use strom_security::quota::{QuotaWindow, SampledRate};

/// Kafka's `quota.window.num` and `quota.window.size.seconds` defaults.
pub const DEFAULT_QUOTA_WINDOW_NUM: u32 = 11;
pub const DEFAULT_QUOTA_WINDOW_SIZE_SECONDS: u32 = 1;

/// The limits in force for one listener when a connection arrives (they are dynamic).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionLimits {
    pub broker_max: u32,
    pub listener_max: u32,
    pub per_ip: u32,
    pub per_ip_overrides: Arc<HashMap<IpAddr, u32>>,
    pub broker_rate: u32,
    pub listener_rate: u32,
}

impl ConnectionLimits {
    pub fn unlimited() -> Self {
        Self {
            broker_max: u32::MAX,
            listener_max: u32::MAX,
            per_ip: u32::MAX,
            per_ip_overrides: Arc::default(),
            broker_rate: u32::MAX,
            listener_rate: u32::MAX,
        }
    }

    fn max_for(&self, ip: IpAddr) -> u32 {
        self.per_ip_overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.per_ip)
    }
}

/// Why a connection just accepted is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address already holds its maximum of connections: closed at once.
    TooMany { max: u32 },
    /// Its address is over its `connection_creation_rate`: closed after `throttle_ms`.
    Throttled { throttle_ms: u64 },
}

/// At most this many addresses have a connection rate kept; idle ones go first.
const MAX_IP_RATES: usize = 65_536;

/// Records one new connection in `rate` and returns how long to wait (ms) to bring it
/// back to `bound` connections a second, at most one window as Kafka bounds it; a zero
/// bound delays every connection by one window.
pub fn creation_delay_ms(
    rate: &mut SampledRate,
    window: QuotaWindow,
    bound: u32,
    now_ms: i64,
) -> i64 {
    let now = now_ms.max(0) as u64;
    if bound == 0 {
        rate.record(window, 1.0, now);
        return window.sample_ms as i64;
    }
    rate.record_and_throttle(window, f64::from(bound), 1.0, now)
        .min(window.sample_ms) as i64
}

/// The counts behind the limits, without clocks or sockets.
#[derive(Debug)]
pub struct QuotaState {
    per_ip: HashMap<IpAddr, u32>,
    per_listener: HashMap<Arc<str>, u32>,
    total: u32,
    broker_rate: SampledRate,
    listener_rates: HashMap<Arc<str>, SampledRate>,
    /// Connection rates of addresses with a `connection_creation_rate` quota.
    ip_rates: HashMap<IpAddr, SampledRate>,
    /// The inter-broker listener, exempt from the broker-wide limits while others exist.
    inter_broker_listener: Option<Arc<str>>,
    listeners: usize,
    window: QuotaWindow,
}

impl QuotaState {
    pub fn new(
        listeners: &[Arc<str>],
        inter_broker_listener: Option<&str>,
        num_samples: u32,
        window_ms: i64,
    ) -> Self {
        Self {
            per_ip: HashMap::new(),
            per_listener: listeners.iter().map(|l| (l.clone(), 0)).collect(),
            total: 0,
            broker_rate: SampledRate::default(),
            listener_rates: listeners
                .iter()
                .map(|l| (l.clone(), SampledRate::default()))
                .collect(),
            ip_rates: HashMap::new(),
            inter_broker_listener: inter_broker_listener
                .filter(|name| listeners.iter().any(|l| &**l == *name))
                .map(Arc::from),
            listeners: listeners.len(),
            window: QuotaWindow {
                samples: num_samples.max(1),
                sample_ms: window_ms.max(1) as u64,
            },
        }
    }

    fn protected(&self, listener: &str) -> bool {
        self.listeners > 1 && self.inter_broker_listener.as_deref() == Some(listener)
    }

    /// Records a new connection on `listener` and returns how long (ms) the listener
    /// waits before taking it: the longer of the broker-wide and the listener's delay.
    pub fn record_creation(
        &mut self,
        listener: &Arc<str>,
        limits: &ConnectionLimits,
        now_ms: i64,
    ) -> i64 {
        let broker = if self.protected(listener) {
            0
        } else {
            creation_delay_ms(
                &mut self.broker_rate,
                self.window,
                limits.broker_rate,
                now_ms,
            )
        };
        let listener_rate = self.listener_rates.entry(listener.clone()).or_default();
        let listener_delay =
            creation_delay_ms(listener_rate, self.window, limits.listener_rate, now_ms);
        broker.max(listener_delay)
    }

    /// Records a new connection from `ip` under its `connection_creation_rate` of
    /// `quota` a second and returns how long (ms, at most one window) it is throttled.
    pub fn record_ip_creation(&mut self, ip: IpAddr, quota: f64, now_ms: i64) -> u64 {
        let now = now_ms.max(0) as u64;
        if self.ip_rates.len() >= MAX_IP_RATES && !self.ip_rates.contains_key(&ip) {
            let span = self.window.span_ms();
            self.ip_rates
                .retain(|_, rate| now.saturating_sub(rate.last_used_ms()) < span);
            if self.ip_rates.len() >= MAX_IP_RATES {
                // Every address busy: forget one rather than grow.
                if let Some(victim) = self.ip_rates.keys().next().copied() {
                    self.ip_rates.remove(&victim);
                }
            }
        }
        let rate = self.ip_rates.entry(ip).or_default();
        rate.record_and_throttle(self.window, quota, 1.0, now)
            .min(self.window.sample_ms)
    }

    /// Whether `listener` may take one more connection under `max.connections`.
    pub fn slot_available(&self, listener: &str, limits: &ConnectionLimits) -> bool {
        let on_listener = self.per_listener.get(listener).copied().unwrap_or(0);
        if on_listener >= limits.listener_max {
            return false;
        }
        self.protected(listener) || self.total < limits.broker_max
    }

    /// Counts a connection from `ip`, or refuses it when its address already holds
    /// its maximum (then nothing is counted).
    pub fn admit(
        &mut self,
        listener: &Arc<str>,
        ip: IpAddr,
        limits: &ConnectionLimits,
    ) -> Result<(), Refusal> {
        let max = limits.max_for(ip);
        let from_ip = self.per_ip.entry(ip).or_insert(0);
        if *from_ip >= max {
            if *from_ip == 0 {
                self.per_ip.remove(&ip);
            }
            return Err(Refusal::TooMany { max });
        }
        *from_ip += 1;
        *self.per_listener.entry(listener.clone()).or_insert(0) += 1;
        self.total += 1;
        Ok(())
    }

    pub fn release(&mut self, listener: &str, ip: IpAddr) {
        if let Some(count) = self.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
        if let Some(count) = self.per_listener.get_mut(listener) {
            *count = count.saturating_sub(1);
        }
        self.total = self.total.saturating_sub(1);
    }

    pub fn from_ip(&self, ip: IpAddr) -> u32 {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// How many connections must close to bring the count back to `broker_max`, and
    /// whether `listener`'s may be among them (the inter-broker listener's never are).
    pub fn excess(&self, broker_max: u32) -> u32 {
        self.total.saturating_sub(broker_max)
    }

    pub fn may_evict_on(&self, listener: &str) -> bool {
        !self.protected(listener)
    }
}

/// What the limits know of one open connection: when it was last active, and how to
/// ask it to close.
#[derive(Debug, Default)]
pub struct LiveConnection {
    last_active_ms: AtomicI64,
    evicting: AtomicBool,
    evict: Notify,
}

impl LiveConnection {
    /// Socket activity: the connection is not the least recently used one.
    pub fn touch(&self) {
        self.last_active_ms
            .store(crate::broker::now_ms(), Ordering::Relaxed);
    }

    /// Resolves once the connection is to close (a permit is kept if it is busy).
    pub async fn evicted(&self) {
        self.evict.notified().await
    }
}

/// Of the connections `(id, listener, last active ms)` that may be closed, the `count`
/// least recently active (ties by id, the older first).
pub fn least_recently_active(mut candidates: Vec<(u64, Arc<str>, i64)>, count: usize) -> Vec<u64> {
    candidates.sort_by_key(|(id, _, active)| (*active, *id));
    candidates
        .into_iter()
        .take(count)
        .map(|(id, ..)| id)
        .collect()
}

/// `max.connections.per.ip.overrides`: `host:count` pairs separated by commas, split at
/// the last colon as Kafka does (so `::1:5` names `::1`). Hosts are checked against
/// Kafka's allowed characters; resolving names is left to the caller.
pub fn parse_per_ip_overrides(value: &str) -> Result<Vec<(String, u32)>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in value.split(',') {
        let entry = entry.trim();
        let (host, count) = entry
            .rsplit_once(':')
            .ok_or_else(|| format!("{entry:?} is not host:count"))?;
        let host = host.trim();
        let valid_host = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '%' | '.' | '_' | ':'));
        if !valid_host {
            return Err(format!("contains invalid addresses : {host}"));
        }
        let count: i32 = count
            .trim()
            .parse()
            .map_err(|e| format!("{entry:?}: {e}"))?;
        out.push((host.to_string(), count.max(0) as u32));
    }
    Ok(out)
}

/// The overrides with every host as an address: literals as they are, names resolved
/// (the first address, as Java's `InetAddress.getByName`). Blocking: names may need DNS.
pub fn resolve_per_ip_overrides(value: &str) -> Result<HashMap<IpAddr, u32>, String> {
    use std::net::ToSocketAddrs;
    let mut map = HashMap::new();
    for (host, count) in parse_per_ip_overrides(value)? {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let ip = match literal.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => (host.as_str(), 0)
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .map(|a| a.ip())
                .ok_or_else(|| format!("cannot resolve {host}"))?,
        };
        map.insert(ip, count);
    }
    Ok(map)
}

/// Every counted connection by id, with its listener.
type LiveConnections = HashMap<u64, (Arc<str>, Arc<LiveConnection>)>;

/// A counted connection; dropping it gives its place back.
pub struct ConnectionSlot {
    quotas: Arc<ConnectionQuotas>,
    listener: Arc<str>,
    ip: IpAddr,
    id: u64,
    live: Arc<LiveConnection>,
}

impl ConnectionSlot {
    pub fn live(&self) -> Arc<LiveConnection> {
        self.live.clone()
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.quotas.live().remove(&self.id);
        self.quotas
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .release(&self.listener, self.ip);
        self.quotas.changed.notify_waiters();
    }
}

/// The connection limits of one socket server (the client listeners, or the controller's).
pub struct ConnectionQuotas {
    state: Mutex<QuotaState>,
    /// Client listeners apply IP entities' `connection_creation_rate`; controllers do not.
    ip_quotas: bool,
    changed: Notify,
    /// The last `max.connections.per.ip.overrides` value seen and its resolved form.
    overrides: Mutex<(String, Arc<HashMap<IpAddr, u32>>)>,
    /// Every counted connection, by id, with its listener.
    live: Mutex<LiveConnections>,
    next_id: AtomicU64,
}

impl ConnectionQuotas {
    pub fn new(
        state: QuotaState,
        overrides: (String, HashMap<IpAddr, u32>),
        ip_quotas: bool,
    ) -> Self {
        Self {
            state: Mutex::new(state),
            ip_quotas,
            changed: Notify::new(),
            overrides: Mutex::new((overrides.0, Arc::new(overrides.1))),
            live: Mutex::default(),
            next_id: AtomicU64::new(0),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, LiveConnections> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the least recently active connections while more are open than the
    /// broker-wide `max.connections` (dynamic), checked every second: Kafka's
    /// Processor.closeExcessConnections. Runs for the life of the listeners.
    pub async fn close_excess_connections(self: Arc<Self>, broker: Arc<Broker>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(any_listener) = self.live().values().next().map(|(l, _)| l.clone()) else {
                continue;
            };
            let broker_max = self.limits(&broker, &any_listener).await.broker_max;
            let (excess, evictable) = {
                let state = self.state();
                let live = self.live();
                let pending = live
                    .values()
                    .filter(|(_, c)| c.evicting.load(Ordering::Relaxed))
                    .count() as u32;
                let candidates: Vec<(u64, Arc<str>, i64)> = live
                    .iter()
                    .filter(|(_, (listener, c))| {
                        state.may_evict_on(listener) && !c.evicting.load(Ordering::Relaxed)
                    })
                    .map(|(id, (listener, c))| {
                        (
                            *id,
                            listener.clone(),
                            c.last_active_ms.load(Ordering::Relaxed),
                        )
                    })
                    .collect();
                (state.excess(broker_max).saturating_sub(pending), candidates)
            };
            if excess == 0 {
                continue;
            }
            let chosen = least_recently_active(evictable, excess as usize);
            let live = self.live();
            for id in chosen {
                if let Some((listener, connection)) = live.get(&id) {
                    tracing::info!(listener = %listener, max_connections = broker_max, "closing the least recently active connection: more are open than max.connections");
                    connection.evicting.store(true, Ordering::Relaxed);
                    connection.evict.notify_one();
                }
            }
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, QuotaState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The limits for `listener` as the broker's configs say now (dynamic, static, default).
    async fn limits(&self, broker: &Broker, listener: &str) -> ConnectionLimits {
        let (limits, overrides_value) = {
            let dynamic = broker.dynamic_configs();
            let layers = dynamic.over(&broker.config);
            let number = |name: &str, fallback: i64| -> u32 {
                layers
                    .effective(name)
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .unwrap_or(fallback)
                    .clamp(0, i64::from(u32::MAX)) as u32
            };
            let listener = listener.to_lowercase();
            let config = &broker.config;
            let broker_max = number("max.connections", config.max_connections as i64);
            let broker_rate = number(
                "max.connection.creation.rate",
                config.max_connection_creation_rate,
            );
            let limits = ConnectionLimits {
                broker_max,
                listener_max: number(
                    &format!("listener.name.{listener}.max.connections"),
                    i64::from(broker_max),
                ),
                per_ip: number("max.connections.per.ip", config.max_connections_per_ip),
                per_ip_overrides: Arc::default(),
                broker_rate,
                listener_rate: number(
                    &format!("listener.name.{listener}.max.connection.creation.rate"),
                    i64::from(broker_rate),
                ),
            };
            let overrides = layers
                .effective("max.connections.per.ip.overrides")
                .unwrap_or_else(|| config.max_connections_per_ip_overrides.clone());
            (limits, overrides)
        };
        ConnectionLimits {
            per_ip_overrides: self.overrides_for(overrides_value).await,
            ..limits
        }
    }

    /// The resolved overrides, resolved again (off the async workers) when the value changed.
    async fn overrides_for(&self, value: String) -> Arc<HashMap<IpAddr, u32>> {
        {
            let current = self.overrides.lock().unwrap_or_else(|p| p.into_inner());
            if current.0 == value {
                return current.1.clone();
            }
        }
        let parse = value.clone();
        let resolved = match tokio::task::spawn_blocking(move || resolve_per_ip_overrides(&parse))
            .await
        {
            Ok(Ok(map)) => Arc::new(map),
            Ok(Err(why)) => {
                tracing::warn!(value = %value, %why, "max.connections.per.ip.overrides not applied");
                Arc::default()
            }
            Err(e) => {
                tracing::warn!(error = %e, "max.connections.per.ip.overrides not applied");
                Arc::default()
            }
        };
        let mut current = self.overrides.lock().unwrap_or_else(|p| p.into_inner());
        *current = (value, resolved.clone());
        resolved
    }

    /// The `connection_creation_rate` quota of `ip`, if any applies here.
    fn ip_quota(&self, broker: &Broker, ip: IpAddr) -> Option<f64> {
        if !self.ip_quotas {
            return None;
        }
        let image = broker.image();
        let quotas = image.client_quotas();
        if quotas.is_empty() {
            return None;
        }
        quotas.ip_connection_rate(&ip.to_string())
    }

    /// Takes a place for a connection just accepted on `listener` from `ip`: waits out
    /// the creation-rate delay and until `max.connections` has room (the listener accepts
    /// nothing meanwhile), then counts it, or refuses it when `ip` is at its maximum or
    /// over its connection rate quota.
    pub async fn admit(
        self: &Arc<Self>,
        broker: &Broker,
        listener: &Arc<str>,
        ip: IpAddr,
    ) -> Result<ConnectionSlot, Refusal> {
        let mut limits = self.limits(broker, listener).await;
        let throttle_ms = self
            .state()
            .record_creation(listener, &limits, crate::broker::now_ms());
        let throttled_until =
            tokio::time::Instant::now() + Duration::from_millis(throttle_ms.max(0) as u64);
        if throttle_ms > 0 {
            tracing::debug!(%ip, listener = %listener, throttle_ms, "connection creation rate over its limit: delaying accepts");
        }
        loop {
            // Registered before the check, so a close in between is not missed.
            let changed = self.changed.notified();
            let now = tokio::time::Instant::now();
            if now >= throttled_until {
                let ip_quota = self.ip_quota(broker, ip);
                let mut state = self.state();
                if state.slot_available(listener, &limits) {
                    if let Some(quota) = ip_quota {
                        let throttle_ms =
                            state.record_ip_creation(ip, quota, crate::broker::now_ms());
                        if throttle_ms > 0 {
                            return Err(Refusal::Throttled { throttle_ms });
                        }
                    }
                    state.admit(listener, ip, &limits)?;
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let live = Arc::new(LiveConnection::default());
                    live.touch();
                    self.live().insert(id, (listener.clone(), live.clone()));
                    return Ok(ConnectionSlot {
                        quotas: self.clone(),
                        listener: listener.clone(),
                        ip,
                        id,
                        live,
                    });
                }
            }
            // The limits are dynamic: read them again on each close and at least every second.
            let wait = if now < throttled_until {
                throttled_until - now
            } else {
                Duration::from_secs(1)
            };
            let _ = tokio::time::timeout(wait, changed).await;
            limits = self.limits(broker, listener).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limits() -> ConnectionLimits {
        ConnectionLimits::unlimited()
    }

    #[test]
    fn a_young_rate_counts_as_ten_windows_and_delays_are_kafkas() {
        let window = QuotaWindow::default();
        let mut rate = SampledRate::default();
        // 20 connections at once against 2/s: the rate is 20 over (11 - 1) seconds.
        for _ in 0..20 {
            assert_eq!(creation_delay_ms(&mut rate, window, 2, 0), 0);
        }
        // The 21st makes it 2.1/s: (2.1 - 2) / 2 of ten seconds.
        assert_eq!(creation_delay_ms(&mut rate, window, 2, 0), 500);
        // Further ones are bounded by one window, and a zero bound delays by one.
        assert_eq!(creation_delay_ms(&mut rate, window, 2, 0), 1000);
        assert_eq!(creation_delay_ms(&mut rate, window, 0, 0), 1000);
    }

    #[test]
    fn the_per_ip_limit_refuses_the_connection_over_it_and_overrides_raise_it() {
        let listener: Arc<str> = Arc::from("PLAINTEXT");
        let mut state = QuotaState::new(std::slice::from_ref(&listener), None, 11, 1000);
        let mut l = limits();
        l.per_ip = 2;
        l.per_ip_overrides = Arc::new(HashMap::from([(ip("127.0.0.2"), 3)]));
        let local = ip("127.0.0.1");
        assert_eq!(state.admit(&listener, local, &l), Ok(()));
        assert_eq!(state.admit(&listener, local, &l), Ok(()));
        assert_eq!(
            state.admit(&listener, local, &l),
            Err(Refusal::TooMany { max: 2 })
        );
        assert_eq!(state.from_ip(local), 2);
        for _ in 0..3 {
            assert_eq!(state.admit(&listener, ip("127.0.0.2"), &l), Ok(()));
        }
        assert_eq!(
            state.admit(&listener, ip("127.0.0.2"), &l),
            Err(Refusal::TooMany { max: 3 })
        );
        state.release(&listener, local);
        assert_eq!(state.admit(&listener, local, &l), Ok(()));
        // An override of 0 refuses every connection from that address.
        l.per_ip_overrides = Arc::new(HashMap::from([(ip("10.0.0.1"), 0)]));
        assert_eq!(
            state.admit(&listener, ip("10.0.0.1"), &l),
            Err(Refusal::TooMany { max: 0 })
        );
        assert_eq!(state.from_ip(ip("10.0.0.1")), 0);
    }

    #[test]
    fn max_connections_is_broker_wide_and_per_listener_and_spares_the_inter_broker_listener() {
        let client: Arc<str> = Arc::from("CLIENT");
        let internal: Arc<str> = Arc::from("INTERNAL");
        let mut state = QuotaState::new(
            &[client.clone(), internal.clone()],
            Some("INTERNAL"),
            11,
            1000,
        );
        let mut l = limits();
        l.broker_max = 2;
        for n in 0..2 {
            assert!(state.slot_available(&client, &l));
            state
                .admit(&client, ip(&format!("10.0.0.{n}")), &l)
                .unwrap();
        }
        assert!(!state.slot_available(&client, &l));
        // The inter-broker listener is not held back by the broker-wide limit ...
        assert!(state.slot_available(&internal, &l));
        // ... but by its own.
        l.listener_max = 0;
        assert!(!state.slot_available(&internal, &l));
        l.listener_max = u32::MAX;
        state.release(&client, ip("10.0.0.0"));
        assert!(state.slot_available(&client, &l));
        // With one listener, the inter-broker listener has no exemption.
        let mut alone =
            QuotaState::new(std::slice::from_ref(&internal), Some("INTERNAL"), 11, 1000);
        l.broker_max = 0;
        assert!(!alone.slot_available(&internal, &l));
        assert_eq!(alone.record_creation(&internal, &l, 0), 0);
    }

    #[test]
    fn the_longer_of_the_broker_and_listener_delays_applies() {
        let a: Arc<str> = Arc::from("A");
        let mut state = QuotaState::new(std::slice::from_ref(&a), None, 11, 1000);
        let mut l = limits();
        l.listener_rate = 1;
        for _ in 0..10 {
            assert_eq!(state.record_creation(&a, &l, 0), 0);
        }
        assert_eq!(state.record_creation(&a, &l, 0), 1000);
        l.listener_rate = u32::MAX;
        l.broker_rate = 1;
        // The broker-wide rate saw the same twelve connections.
        assert_eq!(state.record_creation(&a, &l, 0), 1000);
    }

    #[test]
    fn an_address_over_its_connection_rate_is_throttled_for_at_most_one_window() {
        let mut state = QuotaState::new(&[Arc::from("PLAINTEXT")], None, 2, 1000);
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        // A young rate counts as (samples - 1) windows: two connections at 2/s fit.
        assert_eq!(state.record_ip_creation(a, 2.0, 0), 0);
        assert_eq!(state.record_ip_creation(a, 2.0, 10), 0);
        // The third is over: 3 in 1.02 s, (2.94 - 2) / 2 * 1020 ms.
        assert_eq!(state.record_ip_creation(a, 2.0, 20), 480);
        assert_eq!(state.record_ip_creation(a, 2.0, 30), 970);
        // Bounded to one window.
        assert_eq!(state.record_ip_creation(a, 2.0, 40), 1000);
        // Each address has its own rate.
        assert_eq!(state.record_ip_creation(b, 2.0, 40), 0);
        // Once the samples have expired, the address may connect again.
        assert_eq!(state.record_ip_creation(a, 2.0, 5_000), 0);
    }

    #[test]
    fn the_excess_is_the_least_recently_active_of_the_evictable_listeners() {
        let mut state = QuotaState::new(
            &[Arc::from("PLAINTEXT"), Arc::from("INTERNAL")],
            Some("INTERNAL"),
            2,
            1000,
        );
        let mut l = limits();
        l.broker_max = 10;
        for listener in ["PLAINTEXT", "PLAINTEXT", "PLAINTEXT", "INTERNAL"] {
            state
                .admit(&Arc::from(listener), ip("10.0.0.1"), &l)
                .unwrap();
        }
        assert_eq!(state.excess(2), 2);
        assert_eq!(state.excess(4), 0);
        assert!(state.may_evict_on("PLAINTEXT") && !state.may_evict_on("INTERNAL"));
        let listener: Arc<str> = Arc::from("PLAINTEXT");
        let candidates = vec![
            (7, listener.clone(), 300),
            (3, listener.clone(), 100),
            (9, listener.clone(), 100),
            (1, listener.clone(), 200),
        ];
        assert_eq!(least_recently_active(candidates, 3), vec![3, 9, 1]);
    }

    #[test]
    fn overrides_parse_as_kafka_splits_them() {
        assert_eq!(parse_per_ip_overrides(""), Ok(vec![]));
        assert_eq!(
            parse_per_ip_overrides("127.0.0.1:5, host-a:100 ,::1:7"),
            Ok(vec![
                ("127.0.0.1".to_string(), 5),
                ("host-a".to_string(), 100),
                ("::1".to_string(), 7)
            ])
        );
        assert!(parse_per_ip_overrides("127.0.0.1").is_err());
        assert!(parse_per_ip_overrides("127.0.0.1:x").is_err());
        assert!(parse_per_ip_overrides("bad host:1").is_err());
        let resolved = resolve_per_ip_overrides("127.0.0.1:5,::1:7").unwrap();
        assert_eq!(
            resolved,
            HashMap::from([(ip("127.0.0.1"), 5), (ip("::1"), 7)])
        );
        let named = resolve_per_ip_overrides("localhost:9").unwrap();
        assert!(named.keys().all(|a| a.is_loopback()) && named.values().all(|&n| n == 9));
    }
}
