//! Client quotas as Kafka's ClientQuotaManager applies them, without sockets or clocks:
//! which configured entity governs a (user, client id) pair, the entity and value checks
//! of AlterClientQuotas, and the sampled rate and token bucket that measure a client's
//! use. Times are milliseconds the caller passes in.

use std::collections::BTreeMap;

/// The entity types of a quota, as the protocol names them.
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// A named entity or the default one (a null name on the wire).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntityName {
    Default,
    Named(String),
}

impl EntityName {
    pub fn of(name: Option<&str>) -> Self {
        name.map_or(Self::Default, |n| Self::Named(n.to_string()))
    }

    /// The wire form: None for the default entity.
    pub fn as_wire(&self) -> Option<&str> {
        match self {
            Self::Default => None,
            Self::Named(name) => Some(name),
        }
    }
}

/// What a quota applies to: a user, a client id, both, or an IP address.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuotaEntity {
    pub user: Option<EntityName>,
    pub client_id: Option<EntityName>,
    pub ip: Option<EntityName>,
}

impl QuotaEntity {
    pub fn user(name: Option<&str>) -> Self {
        Self {
            user: Some(EntityName::of(name)),
            ..Self::default()
        }
    }

    pub fn client_id(name: Option<&str>) -> Self {
        Self {
            client_id: Some(EntityName::of(name)),
            ..Self::default()
        }
    }

    pub fn user_and_client_id(user: Option<&str>, client_id: Option<&str>) -> Self {
        Self {
            user: Some(EntityName::of(user)),
            client_id: Some(EntityName::of(client_id)),
            ip: None,
        }
    }

    /// Its (type, name) pairs, as the protocol and the metadata records carry them.
    pub fn components(&self) -> Vec<(&'static str, Option<&str>)> {
        [
            (USER, &self.user),
            (CLIENT_ID, &self.client_id),
            (IP, &self.ip),
        ]
        .into_iter()
        .filter_map(|(kind, name)| name.as_ref().map(|n| (kind, n.as_wire())))
        .collect()
    }

    /// An entity from its (type, name) pairs, checked as Kafka's ClientQuotaControlManager
    /// checks an alteration's entity. The message is Kafka's INVALID_REQUEST message.
    pub fn from_components<'a>(
        components: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Self, String> {
        let mut entity = Self::default();
        let mut any = false;
        for (kind, name) in components {
            any = true;
            let slot = match kind {
                USER => &mut entity.user,
                CLIENT_ID => &mut entity.client_id,
                IP => &mut entity.ip,
                other => return Err(format!("Unhandled client quota entity type: {other}")),
            };
            if slot.is_some() {
                return Err(format!(
                    "Invalid client quota entity, duplicate entity entry {kind}"
                ));
            }
            if name == Some("") {
                return Err(format!("Empty {kind} not supported"));
            }
            *slot = Some(EntityName::of(name));
        }
        if !any {
            return Err("Invalid empty client quota entity".into());
        }
        if entity.ip.is_some() && (entity.user.is_some() || entity.client_id.is_some()) {
            return Err("Invalid quota entity combination, IP entity should not be combined with User or ClientId".into());
        }
        if let Some(EntityName::Named(ip)) = &entity.ip {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(format!("{ip} is not a valid IP or resolvable host."));
            }
        }
        Ok(entity)
    }
}

impl std::fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .components()
            .into_iter()
            .map(|(kind, name)| format!("{kind}={}", name.unwrap_or("<default>")))
            .collect();
        write!(f, "{}", parts.join(","))
    }
}

/// The quota keys Kafka knows, with the type its QuotaConfig gives each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaKey {
    ProducerByteRate,
    ConsumerByteRate,
    RequestPercentage,
    ControllerMutationRate,
    ConnectionCreationRate,
}

impl QuotaKey {
    pub const USER_AND_CLIENT: [QuotaKey; 4] = [
        QuotaKey::ProducerByteRate,
        QuotaKey::ConsumerByteRate,
        QuotaKey::RequestPercentage,
        QuotaKey::ControllerMutationRate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ProducerByteRate => "producer_byte_rate",
            Self::ConsumerByteRate => "consumer_byte_rate",
            Self::RequestPercentage => "request_percentage",
            Self::ControllerMutationRate => "controller_mutation_rate",
            Self::ConnectionCreationRate => "connection_creation_rate",
        }
    }

    pub fn of_name(name: &str) -> Option<Self> {
        [
            Self::ProducerByteRate,
            Self::ConsumerByteRate,
            Self::RequestPercentage,
            Self::ControllerMutationRate,
            Self::ConnectionCreationRate,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }

    /// The largest value the key's type holds, for the integral ones.
    fn integral_bound(self) -> Option<(f64, &'static str)> {
        match self {
            Self::ProducerByteRate | Self::ConsumerByteRate => Some((i64::MAX as f64, "a LONG")),
            Self::ConnectionCreationRate => Some((i32::MAX as f64, "an INT")),
            Self::RequestPercentage | Self::ControllerMutationRate => None,
        }
    }
}

/// Checks one key and value set on `entity`, as ClientQuotaControlManager does; the
/// message is Kafka's INVALID_REQUEST message.
pub fn check_quota_value(entity: &QuotaEntity, key: &str, value: f64) -> Result<QuotaKey, String> {
    let known = QuotaKey::of_name(key)
        .filter(|k| (*k == QuotaKey::ConnectionCreationRate) == entity.ip.is_some());
    let Some(known) = known else {
        return Err(format!("Invalid configuration key {key}"));
    };
    if value.is_nan() || value <= 0.0 {
        return Err(format!("Quota {key} must be greater than 0"));
    }
    if let Some((bound, type_name)) = known.integral_bound() {
        if value > bound {
            return Err(format!(
                "Proposed value for {key} is too large for {type_name}."
            ));
        }
        if (value % 1.0).abs() > 1e-6 {
            return Err(format!("{key} cannot be a fractional value."));
        }
    }
    Ok(known)
}

/// What a client's use is measured against, one per quota manager of Kafka's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaKind {
    /// Bytes of produce requests per second.
    Produce,
    /// Bytes of fetch responses per second.
    Fetch,
    /// Percent of one thread's time spent on the client's requests.
    Request,
    /// Partitions created or deleted per second (a token bucket).
    ControllerMutation,
}

impl QuotaKind {
    pub fn key(self) -> QuotaKey {
        match self {
            Self::Produce => QuotaKey::ProducerByteRate,
            Self::Fetch => QuotaKey::ConsumerByteRate,
            Self::Request => QuotaKey::RequestPercentage,
            Self::ControllerMutation => QuotaKey::ControllerMutationRate,
        }
    }
}

/// The (user, client id) a client's use is counted under: clients governed by the same
/// configured entity share it (all of a user's client ids, for a user quota), as
/// Kafka's metric tags do. An empty string stands for "not part of the key".
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuotaBucket {
    pub user: String,
    pub client_id: String,
}

/// The quota governing a client, and the bucket its use is counted in.
#[derive(Clone, Debug, PartialEq)]
pub struct Governing {
    pub bucket: QuotaBucket,
    pub limit: f64,
}

/// A level of precedence: the user and client id entity names it looks up (None: the
/// entity lacks that part; Some(None): the default), and whether its bucket keeps each.
type Candidate<'a> = (Option<Option<&'a str>>, Option<Option<&'a str>>, bool, bool);

/// The configured quotas, by entity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuotaConfigs {
    entries: BTreeMap<QuotaEntity, BTreeMap<String, f64>>,
}

impl QuotaConfigs {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn set(&mut self, entity: QuotaEntity, key: &str, value: f64) {
        self.entries
            .entry(entity)
            .or_default()
            .insert(key.to_string(), value);
    }

    pub fn remove(&mut self, entity: &QuotaEntity, key: &str) {
        if let Some(values) = self.entries.get_mut(entity) {
            values.remove(key);
            if values.is_empty() {
                self.entries.remove(entity);
            }
        }
    }

    pub fn get(&self, entity: &QuotaEntity) -> Option<&BTreeMap<String, f64>> {
        self.entries.get(entity)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&QuotaEntity, &BTreeMap<String, f64>)> {
        self.entries.iter()
    }

    fn value(&self, entity: &QuotaEntity, key: QuotaKey) -> Option<f64> {
        self.entries.get(entity)?.get(key.name()).copied()
    }

    /// The quota of `kind` that governs `user` (the principal's name) connecting with
    /// `client_id`, in Kafka's order of precedence: user and client id, user and default
    /// client id, user, default user and client id, default user and default client id,
    /// default user, client id, default client id. None: the client is not limited.
    pub fn governing(&self, kind: QuotaKind, user: &str, client_id: &str) -> Option<Governing> {
        let key = kind.key();
        let (user_named, client_named) = (Some(Some(user)), Some(Some(client_id)));
        let default = Some(None);
        // Each candidate, and whether its bucket keeps the user and the client id.
        let candidates: [Candidate; 8] = [
            (user_named, client_named, true, true),
            (user_named, default, true, true),
            (user_named, None, true, false),
            (default, client_named, true, true),
            (default, default, true, true),
            (default, None, true, false),
            (None, client_named, false, true),
            (None, default, false, true),
        ];
        candidates
            .into_iter()
            .find_map(|(u, c, keeps_user, keeps_client)| {
                let entity = QuotaEntity {
                    user: u.map(EntityName::of),
                    client_id: c.map(EntityName::of),
                    ip: None,
                };
                self.value(&entity, key).map(|limit| Governing {
                    bucket: QuotaBucket {
                        user: if keeps_user {
                            user.into()
                        } else {
                            String::new()
                        },
                        client_id: if keeps_client {
                            client_id.into()
                        } else {
                            String::new()
                        },
                    },
                    limit,
                })
            })
    }

    /// The connection creation rate governing connections from `ip` (its own, else the
    /// default IP's).
    pub fn ip_connection_rate(&self, ip: &str) -> Option<f64> {
        let entity = |name: Option<&str>| QuotaEntity {
            ip: Some(EntityName::of(name)),
            ..QuotaEntity::default()
        };
        self.value(&entity(Some(ip)), QuotaKey::ConnectionCreationRate)
            .or_else(|| self.value(&entity(None), QuotaKey::ConnectionCreationRate))
    }
}

/// `quota.window.num` samples of `quota.window.size.seconds` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaWindow {
    pub samples: u32,
    pub sample_ms: u64,
}

impl Default for QuotaWindow {
    /// Kafka's defaults: 11 samples of one second.
    fn default() -> Self {
        Self {
            samples: 11,
            sample_ms: 1000,
        }
    }
}

impl QuotaWindow {
    fn samples(&self) -> usize {
        self.samples.max(1) as usize
    }

    pub fn span_ms(&self) -> u64 {
        self.sample_ms.saturating_mul(self.samples() as u64)
    }

    /// The most one request may use without certainly being throttled (Kafka's
    /// getMaxValueInQuotaWindow), which bounds a fetch's size.
    pub fn max_value_in_window(&self, limit: f64) -> f64 {
        limit * (self.samples() - 1) as f64 * self.sample_ms as f64 / 1000.0
    }
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    started_ms: u64,
    last_event_ms: u64,
    total: f64,
}

impl Sample {
    fn new(now_ms: u64) -> Self {
        Self {
            started_ms: now_ms,
            last_event_ms: now_ms,
            total: 0.0,
        }
    }
}

/// A rate over the last few windows, as Kafka's `Rate` over a `SampledStat` of totals
/// measures it: one slot more than the samples, for a sample overlapping the window's
/// start; a sample with no event for the whole span is forgotten; and a young
/// measurement counts as if it covered all windows but the current one, so a first
/// burst is not measured as a huge rate.
#[derive(Clone, Debug, Default)]
pub struct SampledRate {
    samples: Vec<Sample>,
    current: usize,
    last_used_ms: u64,
}

impl SampledRate {
    /// When it was last recorded or measured.
    pub fn last_used_ms(&self) -> u64 {
        self.last_used_ms
    }

    pub fn record(&mut self, window: QuotaWindow, value: f64, now_ms: u64) {
        self.last_used_ms = self.last_used_ms.max(now_ms);
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now_ms));
            self.current = 0;
        }
        if now_ms.saturating_sub(self.samples[self.current].started_ms) >= window.sample_ms {
            self.current = (self.current + 1) % (window.samples() + 1);
            if self.current >= self.samples.len() {
                self.samples.push(Sample::new(now_ms));
                self.current = self.samples.len() - 1;
            } else {
                self.samples[self.current] = Sample::new(now_ms);
            }
        }
        let sample = &mut self.samples[self.current];
        sample.total += value;
        sample.last_event_ms = now_ms;
    }

    fn purge(&mut self, window: QuotaWindow, now_ms: u64) {
        let span = window.span_ms();
        for sample in &mut self.samples {
            if now_ms.saturating_sub(sample.last_event_ms) >= span {
                *sample = Sample::new(now_ms);
            }
        }
    }

    /// The time the rate is measured over, in milliseconds (at least 1).
    pub fn window_size_ms(&mut self, window: QuotaWindow, now_ms: u64) -> u64 {
        self.purge(window, now_ms);
        let oldest = self
            .samples
            .iter()
            .map(|s| s.started_ms)
            .min()
            .unwrap_or(now_ms);
        let mut elapsed = now_ms.saturating_sub(oldest);
        let full = elapsed / window.sample_ms.max(1);
        let min_full = window.samples() as u64 - 1;
        if full < min_full {
            elapsed += (min_full - full) * window.sample_ms;
        }
        elapsed.max(1)
    }

    /// The rate per second.
    pub fn measure(&mut self, window: QuotaWindow, now_ms: u64) -> f64 {
        self.last_used_ms = self.last_used_ms.max(now_ms);
        self.purge(window, now_ms);
        let total: f64 = self.samples.iter().map(|s| s.total).sum();
        total / (self.window_size_ms(window, now_ms) as f64 / 1000.0)
    }

    /// Records `value` and returns how long the client must wait (ms) for its rate to
    /// come back to `limit` (Kafka's QuotaUtils.throttleTime): zero when within it.
    pub fn record_and_throttle(
        &mut self,
        window: QuotaWindow,
        limit: f64,
        value: f64,
        now_ms: u64,
    ) -> u64 {
        self.record(window, value, now_ms);
        let observed = self.measure(window, now_ms);
        if observed <= limit {
            return 0;
        }
        let size = self.window_size_ms(window, now_ms) as f64;
        ((observed - limit) / limit * size).round().max(0.0) as u64
    }
}

/// Kafka's TokenBucket for controller mutations: `limit` tokens a second refill a bucket
/// of `limit` times the window's span; a mutation takes as many tokens as partitions, the
/// bucket may go negative, and while it is, mutations are refused.
#[derive(Clone, Debug, Default)]
pub struct TokenBucket {
    tokens: f64,
    updated_ms: Option<u64>,
}

impl TokenBucket {
    fn burst(window: QuotaWindow, limit: f64) -> f64 {
        limit * window.span_ms() as f64 / 1000.0
    }

    fn refill(&mut self, window: QuotaWindow, limit: f64, now_ms: u64) {
        let burst = Self::burst(window, limit);
        self.tokens = match self.updated_ms {
            None => burst,
            Some(at) => {
                (self.tokens + limit * now_ms.saturating_sub(at) as f64 / 1000.0).min(burst)
            }
        };
        self.updated_ms = Some(now_ms);
    }

    pub fn last_used_ms(&self) -> u64 {
        self.updated_ms.unwrap_or(0)
    }

    /// How long until the bucket is no longer negative (ms); zero when it is not.
    pub fn throttle_ms(&mut self, window: QuotaWindow, limit: f64, now_ms: u64) -> u64 {
        self.refill(window, limit, now_ms);
        if self.tokens < 0.0 {
            (-self.tokens / limit * 1000.0).round() as u64
        } else {
            0
        }
    }

    /// Kafka's strict controller mutation quota: refused (with the throttle time) while
    /// the bucket is negative, else the tokens are taken.
    pub fn take_strict(
        &mut self,
        window: QuotaWindow,
        limit: f64,
        tokens: f64,
        now_ms: u64,
    ) -> Result<(), u64> {
        match self.throttle_ms(window, limit, now_ms) {
            0 => {
                self.tokens = (self.tokens - tokens).min(Self::burst(window, limit));
                Ok(())
            }
            wait => Err(wait),
        }
    }

    /// The permissive quota of older request versions: the tokens are taken regardless;
    /// returns the throttle time that leaves.
    pub fn take_permissive(
        &mut self,
        window: QuotaWindow,
        limit: f64,
        tokens: f64,
        now_ms: u64,
    ) -> u64 {
        self.refill(window, limit, now_ms);
        self.tokens = (self.tokens - tokens).min(Self::burst(window, limit));
        self.throttle_ms(window, limit, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_follows_kafka() {
        let mut configs = QuotaConfigs::default();
        let key = "producer_byte_rate";
        configs.set(QuotaEntity::client_id(None), key, 8.0);
        let g = configs
            .governing(QuotaKind::Produce, "alice", "app")
            .unwrap();
        assert_eq!(
            (g.limit, g.bucket.user.as_str(), g.bucket.client_id.as_str()),
            (8.0, "", "app")
        );
        configs.set(QuotaEntity::client_id(Some("app")), key, 7.0);
        assert_eq!(
            configs
                .governing(QuotaKind::Produce, "alice", "app")
                .unwrap()
                .limit,
            7.0
        );
        configs.set(QuotaEntity::user(None), key, 6.0);
        let g = configs
            .governing(QuotaKind::Produce, "alice", "app")
            .unwrap();
        assert_eq!(
            (g.limit, g.bucket.user.as_str(), g.bucket.client_id.as_str()),
            (6.0, "alice", "")
        );
        configs.set(QuotaEntity::user_and_client_id(None, None), key, 5.0);
        configs.set(QuotaEntity::user_and_client_id(None, Some("app")), key, 4.0);
        assert_eq!(
            configs
                .governing(QuotaKind::Produce, "alice", "app")
                .unwrap()
                .limit,
            4.0
        );
        configs.set(QuotaEntity::user(Some("alice")), key, 3.0);
        let g = configs
            .governing(QuotaKind::Produce, "alice", "app")
            .unwrap();
        assert_eq!((g.limit, g.bucket.client_id.as_str()), (3.0, ""));
        configs.set(
            QuotaEntity::user_and_client_id(Some("alice"), None),
            key,
            2.0,
        );
        configs.set(
            QuotaEntity::user_and_client_id(Some("alice"), Some("app")),
            key,
            1.0,
        );
        let g = configs
            .governing(QuotaKind::Produce, "alice", "app")
            .unwrap();
        assert_eq!(
            (g.limit, g.bucket.user.as_str(), g.bucket.client_id.as_str()),
            (1.0, "alice", "app")
        );
        assert_eq!(
            configs
                .governing(QuotaKind::Produce, "alice", "other")
                .unwrap()
                .limit,
            2.0
        );
        // Another kind's key governs nothing here.
        assert!(configs
            .governing(QuotaKind::Fetch, "alice", "app")
            .is_none());
    }

    #[test]
    fn entities_and_values_are_checked_as_kafka_does() {
        assert_eq!(
            QuotaEntity::from_components([]).unwrap_err(),
            "Invalid empty client quota entity"
        );
        assert_eq!(
            QuotaEntity::from_components([("group", Some("g"))]).unwrap_err(),
            "Unhandled client quota entity type: group"
        );
        assert_eq!(
            QuotaEntity::from_components([("user", Some(""))]).unwrap_err(),
            "Empty user not supported"
        );
        assert!(QuotaEntity::from_components([("ip", None), ("user", None)]).is_err());
        let user =
            QuotaEntity::from_components([("user", Some("alice")), ("client-id", None)]).unwrap();
        assert_eq!(user, QuotaEntity::user_and_client_id(Some("alice"), None));
        assert_eq!(
            check_quota_value(&user, "producer_byte_rate", 1024.0),
            Ok(QuotaKey::ProducerByteRate)
        );
        assert_eq!(
            check_quota_value(&user, "producer_byte_rate", 1.5).unwrap_err(),
            "producer_byte_rate cannot be a fractional value."
        );
        assert_eq!(
            check_quota_value(&user, "request_percentage", 0.0).unwrap_err(),
            "Quota request_percentage must be greater than 0"
        );
        assert_eq!(
            check_quota_value(&user, "connection_creation_rate", 5.0).unwrap_err(),
            "Invalid configuration key connection_creation_rate"
        );
        assert!(check_quota_value(&user, "request_percentage", 12.5).is_ok());
    }

    #[test]
    fn a_rate_over_its_limit_is_throttled_for_the_time_that_brings_it_back() {
        let window = QuotaWindow::default();
        let mut rate = SampledRate::default();
        // 1,000 bytes/s allowed; 5,000 at once at t=0 is measured over 10 s: 500/s.
        assert_eq!(rate.record_and_throttle(window, 1000.0, 5000.0, 0), 0);
        // 20,000 more: 25,000 over 10 s is 2,500/s; (2500-1000)/1000 * 10 s = 15 s.
        assert_eq!(rate.record_and_throttle(window, 1000.0, 20000.0, 0), 15000);
        // Eleven windows later the samples have expired.
        assert_eq!(rate.measure(window, 11_000), 0.0);
    }

    #[test]
    fn samples_advance_per_window_and_expire_when_idle() {
        let window = QuotaWindow {
            samples: 2,
            sample_ms: 1000,
        };
        let mut rate = SampledRate::default();
        rate.record(window, 5.0, 0);
        rate.record(window, 5.0, 1500);
        // Two samples spanning 1.5 s (at least one whole window): 10 / 1.5 s.
        assert!((rate.measure(window, 1500) - 10.0 / 1.5).abs() < 1e-9);
        // A third window takes the spare slot; a fourth reuses the oldest of three.
        rate.record(window, 1.0, 2600);
        rate.record(window, 1.0, 3700);
        assert_eq!(rate.samples.len(), 3);
        // A sample is kept while it saw an event within the span, though it began before.
        let mut rate = SampledRate::default();
        for _ in 0..30 {
            rate.record(QuotaWindow::default(), 1.0, 0);
        }
        assert!((rate.measure(QuotaWindow::default(), 0) - 3.0).abs() < 1e-9);
        assert_eq!(rate.measure(QuotaWindow::default(), 11_000), 0.0);
    }

    #[test]
    fn the_token_bucket_refuses_while_negative_and_refills() {
        let window = QuotaWindow::default();
        let mut bucket = TokenBucket::default();
        // 2 partitions a second: a burst of 22, overdrawn by a 30-partition topic.
        assert_eq!(bucket.take_strict(window, 2.0, 30.0, 0), Ok(()));
        assert_eq!(bucket.take_strict(window, 2.0, 1.0, 0), Err(4000));
        assert_eq!(bucket.take_strict(window, 2.0, 1.0, 3000), Err(1000));
        assert_eq!(bucket.take_strict(window, 2.0, 1.0, 4000), Ok(()));
        assert_eq!(bucket.take_permissive(window, 2.0, 3.0, 4000), 2000);
    }
}
