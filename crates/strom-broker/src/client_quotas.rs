//! Client quotas on the request path (Kafka's ClientQuotaManager family): a request's
//! use is recorded against the quota that governs its (user, client id) in the
//! metadata image, and the time the client must then wait comes back; the response
//! carries it as `throttle_time_ms` and the connection reads nothing more until it has
//! passed (`Mute`). The rules are strom-security's `quota`; this holds the buckets.
//!
//! Buckets are bounded: past `MAX_BUCKETS`, those idle long enough to have forgotten
//! everything go first, then the least recently used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strom_security::quota::{
    QuotaBucket, QuotaConfigs, QuotaKind, QuotaWindow, SampledRate, TokenBucket,
};
use strom_security::KafkaPrincipal;

use crate::config::BrokerConfig;

/// The most buckets of one kind kept at once.
const MAX_BUCKETS: usize = 50_000;

#[derive(Default)]
struct Buckets {
    rates: HashMap<(QuotaKind, QuotaBucket), SampledRate>,
    tokens: HashMap<QuotaBucket, TokenBucket>,
}

pub struct ClientQuotas {
    window: QuotaWindow,
    mutation_window: QuotaWindow,
    started: Instant,
    buckets: Mutex<Buckets>,
}

/// Who a request is counted for: the principal's name and the client id.
pub struct QuotaClient<'a> {
    pub principal: &'a KafkaPrincipal,
    pub client_id: &'a str,
}

impl ClientQuotas {
    pub fn new(config: &BrokerConfig) -> Self {
        Self {
            window: QuotaWindow {
                samples: config.quota_window_num,
                sample_ms: u64::from(config.quota_window_size_seconds) * 1000,
            },
            mutation_window: QuotaWindow {
                samples: config.controller_quota_window_num,
                sample_ms: u64::from(config.controller_quota_window_size_seconds) * 1000,
            },
            started: Instant::now(),
            buckets: Mutex::new(Buckets::default()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Records `value` of `kind` for `client`; the throttle time (ms), zero when no
    /// quota governs the client or it is within it. A request quota's throttle is at
    /// most one sample window, as Kafka bounds it.
    pub fn record(
        &self,
        configs: &QuotaConfigs,
        kind: QuotaKind,
        client: &QuotaClient,
        value: f64,
    ) -> u64 {
        let Some(governing) = configs.governing(kind, &client.principal.name, client.client_id)
        else {
            return 0;
        };
        let now = self.now_ms();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let rates = &mut buckets.rates;
        if rates.len() >= MAX_BUCKETS && !rates.contains_key(&(kind, governing.bucket.clone())) {
            evict(rates, self.window, now, |r| r.last_used_ms());
        }
        let rate = rates.entry((kind, governing.bucket)).or_default();
        let throttle = rate.record_and_throttle(self.window, governing.limit, value, now);
        match kind {
            QuotaKind::Request => throttle.min(self.window.sample_ms),
            _ => throttle,
        }
    }

    /// The most bytes one fetch may return to `client` without being throttled for
    /// sure (None: no consumer quota governs it).
    pub fn max_fetch_bytes(&self, configs: &QuotaConfigs, client: &QuotaClient) -> Option<u64> {
        configs
            .governing(QuotaKind::Fetch, &client.principal.name, client.client_id)
            .map(|g| self.window.max_value_in_window(g.limit).max(1.0) as u64)
    }

    /// Takes `partitions` from the client's controller mutation bucket. Strict (the
    /// request versions that know THROTTLING_QUOTA_EXCEEDED): refused with the throttle
    /// time while the bucket is negative. Permissive: always taken. Ok carries the
    /// throttle time left.
    pub fn take_mutation(
        &self,
        configs: &QuotaConfigs,
        client: &QuotaClient,
        partitions: u32,
        strict: bool,
    ) -> Result<u64, u64> {
        let Some(governing) = configs.governing(
            QuotaKind::ControllerMutation,
            &client.principal.name,
            client.client_id,
        ) else {
            return Ok(0);
        };
        let now = self.now_ms();
        let window = self.mutation_window;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let tokens = &mut buckets.tokens;
        if tokens.len() >= MAX_BUCKETS && !tokens.contains_key(&governing.bucket) {
            evict(tokens, window, now, |b| b.last_used_ms());
        }
        let bucket = tokens.entry(governing.bucket).or_default();
        let (limit, wanted) = (governing.limit, f64::from(partitions));
        if strict {
            // As Kafka's strict quota: a mutation that overdraws the bucket passes with
            // no throttle time; the next one is refused.
            bucket.take_strict(window, limit, wanted, now).map(|()| 0)
        } else {
            Ok(bucket.take_permissive(window, limit, wanted, now))
        }
    }
}

/// Makes room for one bucket: drops those idle past the window's span (they measure
/// nothing any more), else the least recently used tenth.
fn evict<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    window: QuotaWindow,
    now: u64,
    last_used: impl Fn(&V) -> u64,
) {
    let span = window.sample_ms * u64::from(window.samples.max(1));
    map.retain(|_, v| now.saturating_sub(last_used(v)) < span);
    if map.len() >= MAX_BUCKETS {
        let mut by_age: Vec<(u64, K)> =
            map.iter().map(|(k, v)| (last_used(v), k.clone())).collect();
        by_age.sort_unstable_by_key(|(at, _)| *at);
        for (_, key) in by_age.into_iter().take(MAX_BUCKETS / 10) {
            map.remove(&key);
        }
    }
}

/// A topic change refused by the controller's checks or by the controller mutation
/// quota (with the time to wait).
#[derive(Debug)]
pub enum MutationRefusal {
    Controller(strom_metadata::ControllerError),
    Throttled(u64),
}

impl From<strom_metadata::ControllerError> for MutationRefusal {
    fn from(e: strom_metadata::ControllerError) -> Self {
        Self::Controller(e)
    }
}

impl MutationRefusal {
    pub fn error(&self) -> (strom_types::ErrorCode, String) {
        match self {
            Self::Controller(e) => (crate::errors::controller_error_code(e), e.to_string()),
            Self::Throttled(_) => (
                strom_types::ErrorCode::ThrottlingQuotaExceeded,
                "The throttling quota has been exceeded.".into(),
            ),
        }
    }
}

/// The records a topic request has written so far plus `more`, or Kafka's refusal once
/// the request would write more than MAX_RECORDS_PER_USER_OP in all.
pub fn within_request_limit(so_far: usize, more: usize) -> Result<usize, MutationRefusal> {
    let total = so_far + more;
    if total > strom_metadata::controller::MAX_RECORDS_PER_USER_OP {
        return Err(MutationRefusal::Controller(
            strom_metadata::ControllerError::PolicyViolation(
                "Unable to perform excessively large batch operation.".into(),
            ),
        ));
    }
    Ok(total)
}

/// A request's controller mutation quota, as Kafka's ControllerMutationQuota: strict from
/// the request versions that know THROTTLING_QUOTA_EXCEEDED; `throttle_ms` is what the
/// response carries.
pub struct MutationQuota<'a> {
    broker: &'a crate::broker::Broker,
    configs: Option<Arc<QuotaConfigs>>,
    client: QuotaClient<'a>,
    strict: bool,
    pub throttle_ms: u64,
}

impl<'a> MutationQuota<'a> {
    pub fn new(
        broker: &'a crate::broker::Broker,
        ctx: &'a crate::apis::RequestContext,
        strict_since_version: i16,
    ) -> Self {
        let configs = broker.image().client_quotas().clone();
        Self {
            broker,
            configs: (!configs.is_empty() && !ctx.trusted).then_some(configs),
            client: ctx.quota_client(),
            strict: ctx.api_version >= strict_since_version,
            throttle_ms: 0,
        }
    }

    /// Takes `partitions` from the bucket, or refuses the change.
    pub fn take(&mut self, partitions: u32) -> Result<(), MutationRefusal> {
        let Some(configs) = &self.configs else {
            return Ok(());
        };
        match self
            .broker
            .quotas
            .take_mutation(configs, &self.client, partitions, self.strict)
        {
            Ok(throttle) => {
                if throttle > 0 {
                    self.throttle_ms = throttle;
                }
                Ok(())
            }
            Err(throttle) => {
                self.throttle_ms = throttle;
                Err(MutationRefusal::Throttled(throttle))
            }
        }
    }

    pub fn throttle_time_ms(&self) -> i32 {
        self.throttle_ms.min(i32::MAX as u64) as i32
    }
}

/// A connection's mute: after a throttled response it reads no request until then.
#[derive(Debug, Default)]
pub struct Mute {
    until: Mutex<Option<tokio::time::Instant>>,
}

impl Mute {
    pub fn extend(&self, by: Duration) {
        let at = tokio::time::Instant::now() + by;
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        if until.is_none_or(|u| u < at) {
            *until = Some(at);
        }
    }

    /// When the connection may read again, if it is muted; clears the mute.
    pub fn take(&self) -> Option<tokio::time::Instant> {
        self.until.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
