//! KIP-227 incremental fetch sessions, as Kafka's `FetchSession.scala` keeps
//! them. Sans-io: no clock (callers pass `now_ms`), no sockets, no locks.
//!
//! A full fetch (epoch 0) may create a session: the broker caches each
//! partition's fetch parameters and the high watermark and log start offset
//! it last answered. Later incremental fetches (epoch 1, 2, ...) name only
//! the partitions whose parameters changed, add or forget partitions, and get
//! back only the partitions with news (records, a moved high watermark or log
//! start offset, an error). Epoch -1 closes a session.
//!
//! The cache holds at most `max.incremental.fetch.session.cache.slots`
//! sessions. When it is full, a new session takes the slot of one that was
//! not used for `min.incremental.fetch.session.eviction.ms`, or else of the
//! least valuable one old enough to be evicted (followers' sessions are worth
//! more than consumers', then bigger ones more than smaller ones); if none
//! qualifies no session is created and the client keeps sending full fetches.
//! Kafka splits this cache into 8 shards, each with an eighth of the slots, to
//! spread lock contention; strom keeps one cache with all the slots, so a
//! small slot count behaves as the policy reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use strom_types::ErrorCode;
use uuid::Uuid;

/// Session id 0: no session.
pub const INVALID_SESSION_ID: i32 = 0;
/// The epoch of a full fetch that asks for a new session.
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full fetch that wants no session (and closes the one named).
pub const FINAL_EPOCH: i32 = -1;
/// Kafka's `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS` (not a config there either).
pub const MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS: i64 = 120_000;

/// The epoch after `epoch`, wrapping to 1 (0 means "new session").
pub fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        FINAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// A session's partition: by topic id from Fetch v13, by topic name before.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionPartition {
    ById(Uuid, i32),
    ByName(String, i32),
}

/// What a fetch asks of one partition; a session keeps the last one sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionParams {
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    pub log_start_offset: i64,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
}

/// What the broker answered for one partition, as far as sessions care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOutcome {
    pub records_bytes: usize,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub error_code: i16,
    /// A preferred read replica (KIP-392) or a diverging epoch (KIP-320): always sent.
    pub redirects: bool,
}

/// A request's session id and epoch (Fetch v7+; older versions send no session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchMetadata {
    pub session_id: i32,
    pub epoch: i32,
}

impl FetchMetadata {
    /// What a Fetch request before v7 means: a full fetch without a session.
    pub const LEGACY: FetchMetadata = FetchMetadata {
        session_id: INVALID_SESSION_ID,
        epoch: FINAL_EPOCH,
    };

    pub fn is_full(&self) -> bool {
        self.epoch == INITIAL_EPOCH || self.epoch == FINAL_EPOCH
    }
}

/// How to serve one fetch request.
#[derive(Debug, PartialEq)]
pub enum FetchContext {
    /// Refuse the request with this top-level error and session id 0.
    SessionError(ErrorCode),
    /// Answer every requested partition, with session id 0.
    Sessionless,
    /// Answer every requested partition; then `create_session` with the answers.
    Full,
    /// Read the session's partitions (in this order) and answer through
    /// `incremental_response`.
    Incremental {
        session_id: i32,
        request_epoch: i32,
        partitions: Vec<(SessionPartition, PartitionParams)>,
    },
}

/// Which partitions an incremental response carries.
#[derive(Debug, PartialEq, Eq)]
pub enum IncrementalAnswer {
    /// One flag per partition read: include it in the response.
    Include(Vec<bool>),
    /// Another request moved the session's epoch meanwhile (Kafka answers
    /// INVALID_FETCH_SESSION_EPOCH with the session id and no partitions).
    EpochChanged,
}

#[derive(Debug, Clone)]
struct CachedPartition {
    params: PartitionParams,
    /// -1 after an error, so the partition is sent again once it is healthy.
    high_watermark: i64,
    log_start_offset: i64,
    /// Position in the session's order; partitions that returned records
    /// move to the back, so the next reads start with the others.
    position: u64,
}

impl CachedPartition {
    /// Whether the partition must be in an incremental response, remembering
    /// what was sent.
    fn must_respond(&mut self, outcome: &PartitionOutcome) -> bool {
        let mut respond = outcome.records_bytes > 0;
        if self.high_watermark != outcome.high_watermark {
            respond = true;
            self.high_watermark = outcome.high_watermark;
        }
        if self.log_start_offset != outcome.log_start_offset {
            respond = true;
            self.log_start_offset = outcome.log_start_offset;
        }
        if outcome.error_code != 0 {
            self.high_watermark = -1;
            respond = true;
        }
        respond || outcome.redirects
    }
}

#[derive(Debug)]
struct Session {
    privileged: bool,
    uses_topic_ids: bool,
    creation_ms: i64,
    last_used_ms: i64,
    /// The epoch the next incremental request must carry.
    epoch: i32,
    partitions: HashMap<SessionPartition, CachedPartition>,
    order: BTreeMap<u64, SessionPartition>,
    next_position: u64,
    /// The size when last touched; the eviction keys use it.
    cached_size: usize,
}

impl Session {
    fn add(&mut self, key: SessionPartition, params: PartitionParams, hw: i64, log_start: i64) {
        let position = self.next_position;
        self.next_position += 1;
        self.order.insert(position, key.clone());
        self.partitions.insert(
            key,
            CachedPartition {
                params,
                high_watermark: hw,
                log_start_offset: log_start,
                position,
            },
        );
    }

    fn remove(&mut self, key: &SessionPartition) {
        if let Some(cached) = self.partitions.remove(key) {
            self.order.remove(&cached.position);
        }
    }

    fn move_to_back(&mut self, key: &SessionPartition) {
        let position = self.next_position;
        if let Some(cached) = self.partitions.get_mut(key) {
            self.order.remove(&cached.position);
            cached.position = position;
            self.order.insert(position, key.clone());
            self.next_position += 1;
        }
    }

    fn in_order(&self) -> Vec<(SessionPartition, PartitionParams)> {
        self.order
            .values()
            .filter_map(|key| self.partitions.get(key).map(|c| (key.clone(), c.params)))
            .collect()
    }
}

type EvictableKey = (bool, usize, i32);

/// The broker's fetch sessions.
#[derive(Debug)]
pub struct FetchSessionCache {
    max_slots: usize,
    eviction_ms: i64,
    sessions: HashMap<i32, Session>,
    /// (last used, id), least recently used first.
    last_used: BTreeSet<(i64, i32)>,
    /// Sessions any new session may take the slot of (older than eviction_ms).
    evictable_by_all: BTreeSet<EvictableKey>,
    /// Sessions a follower's new session may take the slot of (also every
    /// consumer session).
    evictable_by_privileged: BTreeSet<EvictableKey>,
    id_state: u64,
    total_partitions: usize,
    evictions: u64,
}

impl FetchSessionCache {
    /// `seed` draws the session ids, which clients should not guess.
    pub fn new(max_slots: usize, eviction_ms: i64, seed: u64) -> Self {
        Self {
            max_slots,
            eviction_ms,
            sessions: HashMap::new(),
            last_used: BTreeSet::new(),
            evictable_by_all: BTreeSet::new(),
            evictable_by_privileged: BTreeSet::new(),
            id_state: seed,
            total_partitions: 0,
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Partitions cached over all sessions (Kafka's NumIncrementalFetchPartitionsCached).
    pub fn total_partitions(&self) -> usize {
        self.total_partitions
    }

    /// Sessions evicted to make room so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Whether a session exists, and its next expected epoch.
    pub fn session_epoch(&self, id: i32) -> Option<i32> {
        self.sessions.get(&id).map(|s| s.epoch)
    }

    /// Decides how a request is served (Kafka's `FetchManager.newContext`).
    /// An incremental request updates its session here: partitions added,
    /// parameters updated, forgotten ones removed, the epoch moved on.
    pub fn new_context(
        &mut self,
        version: i16,
        metadata: FetchMetadata,
        fetch_data: &[(SessionPartition, PartitionParams)],
        forgotten: &[SessionPartition],
        now_ms: i64,
    ) -> FetchContext {
        if metadata.is_full() {
            if metadata.session_id != INVALID_SESSION_ID {
                // A full fetch closes the session it names.
                self.remove(metadata.session_id);
            }
            return if metadata.epoch == FINAL_EPOCH {
                FetchContext::Sessionless
            } else {
                FetchContext::Full
            };
        }
        let uses_topic_ids = version >= 13;
        let Some(session) = self.sessions.get_mut(&metadata.session_id) else {
            return FetchContext::SessionError(ErrorCode::FetchSessionIdNotFound);
        };
        if session.epoch != metadata.epoch {
            return FetchContext::SessionError(ErrorCode::InvalidFetchSessionEpoch);
        }
        if session.uses_topic_ids != uses_topic_ids {
            return FetchContext::SessionError(ErrorCode::FetchSessionTopicIdError);
        }
        for (key, params) in fetch_data {
            match session.partitions.get_mut(key) {
                Some(cached) => cached.params = *params,
                None => session.add(key.clone(), *params, -1, -1),
            }
        }
        for key in forgotten {
            session.remove(key);
        }
        if session.partitions.is_empty() {
            self.remove(metadata.session_id);
            return FetchContext::Sessionless;
        }
        session.epoch = next_epoch(session.epoch);
        let partitions = session.in_order();
        self.touch(metadata.session_id, now_ms);
        FetchContext::Incremental {
            session_id: metadata.session_id,
            request_epoch: metadata.epoch,
            partitions,
        }
    }

    /// After a full fetch was answered: caches its partitions in a new
    /// session if there is room (or a slot to take) and returns its id, else 0.
    pub fn create_session(
        &mut self,
        now_ms: i64,
        privileged: bool,
        uses_topic_ids: bool,
        answered: Vec<(SessionPartition, PartitionParams, PartitionOutcome)>,
    ) -> i32 {
        let size = answered.len();
        if self.sessions.len() >= self.max_slots
            && !self.try_evict(privileged, (privileged, size, 0), now_ms)
        {
            return INVALID_SESSION_ID;
        }
        let id = self.new_session_id();
        let mut session = Session {
            privileged,
            uses_topic_ids,
            creation_ms: now_ms,
            last_used_ms: now_ms,
            epoch: next_epoch(INITIAL_EPOCH),
            partitions: HashMap::with_capacity(size),
            order: BTreeMap::new(),
            next_position: 0,
            cached_size: 0,
        };
        for (key, params, outcome) in answered {
            session.add(
                key,
                params,
                outcome.high_watermark,
                outcome.log_start_offset,
            );
        }
        self.sessions.insert(id, session);
        self.last_used.insert((now_ms, id));
        self.touch(id, now_ms);
        id
    }

    /// After an incremental fetch was read: which partitions the response
    /// carries (those with records, a new high watermark or log start
    /// offset, or an error), remembering what they said. Partitions that
    /// returned records move to the back of the session's order.
    pub fn incremental_response(
        &mut self,
        session_id: i32,
        request_epoch: i32,
        outcomes: &[(SessionPartition, PartitionOutcome)],
    ) -> IncrementalAnswer {
        let Some(session) = self.sessions.get_mut(&session_id) else {
            // Evicted while the request was parked: answer everything; the
            // client learns at its next request that the session is gone.
            return IncrementalAnswer::Include(vec![true; outcomes.len()]);
        };
        if session.epoch != next_epoch(request_epoch) {
            return IncrementalAnswer::EpochChanged;
        }
        let mut include = Vec::with_capacity(outcomes.len());
        for (key, outcome) in outcomes {
            let respond = match session.partitions.get_mut(key) {
                Some(cached) => cached.must_respond(outcome),
                // Forgotten by a later request: nothing to remember.
                None => true,
            };
            if respond && outcome.records_bytes > 0 {
                session.move_to_back(key);
            }
            include.push(respond);
        }
        IncrementalAnswer::Include(include)
    }

    fn remove(&mut self, id: i32) -> bool {
        let Some(session) = self.sessions.remove(&id) else {
            return false;
        };
        self.last_used.remove(&(session.last_used_ms, id));
        let key = (session.privileged, session.cached_size, id);
        self.evictable_by_all.remove(&key);
        self.evictable_by_privileged.remove(&key);
        self.total_partitions -= session.cached_size;
        true
    }

    /// Records a use: the LRU order, the size, and which evictable sets the
    /// session is in now (Kafka's `touch`).
    fn touch(&mut self, id: i32, now_ms: i64) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        self.last_used.remove(&(session.last_used_ms, id));
        session.last_used_ms = now_ms;
        self.last_used.insert((now_ms, id));
        let old_key = (session.privileged, session.cached_size, id);
        self.evictable_by_all.remove(&old_key);
        self.evictable_by_privileged.remove(&old_key);
        self.total_partitions -= session.cached_size;
        session.cached_size = session.partitions.len();
        self.total_partitions += session.cached_size;
        let key = (session.privileged, session.cached_size, id);
        let old_enough = now_ms - session.creation_ms > self.eviction_ms;
        if !session.privileged || old_enough {
            self.evictable_by_privileged.insert(key);
        }
        if old_enough {
            self.evictable_by_all.insert(key);
        }
    }

    /// Frees a slot for a new session of `new_key`, if the policy allows.
    fn try_evict(&mut self, privileged: bool, new_key: EvictableKey, now_ms: i64) -> bool {
        let Some(&(last_used_ms, stale_id)) = self.last_used.first() else {
            return false;
        };
        if now_ms - last_used_ms > self.eviction_ms {
            self.remove(stale_id);
            self.evictions += 1;
            return true;
        }
        let candidates = if privileged {
            &self.evictable_by_privileged
        } else {
            &self.evictable_by_all
        };
        match candidates.first() {
            Some(&least) if new_key >= least => {
                self.remove(least.2);
                self.evictions += 1;
                true
            }
            _ => false,
        }
    }

    /// A random id in 1..=i32::MAX not in use (splitmix64).
    fn new_session_id(&mut self) -> i32 {
        loop {
            self.id_state = self.id_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.id_state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let id = (z & 0x7FFF_FFFF) as i32;
            if id != INVALID_SESSION_ID && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVICTION_MS: i64 = MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS;

    fn key(topic: &str, partition: i32) -> SessionPartition {
        SessionPartition::ByName(topic.into(), partition)
    }

    fn params(fetch_offset: i64) -> PartitionParams {
        PartitionParams {
            fetch_offset,
            partition_max_bytes: 1 << 20,
            log_start_offset: -1,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
        }
    }

    fn outcome(records_bytes: usize, high_watermark: i64) -> PartitionOutcome {
        PartitionOutcome {
            records_bytes,
            high_watermark,
            log_start_offset: 0,
            error_code: 0,
            redirects: false,
        }
    }

    fn full(session_id: i32) -> FetchMetadata {
        FetchMetadata {
            session_id,
            epoch: INITIAL_EPOCH,
        }
    }

    fn incremental(session_id: i32, epoch: i32) -> FetchMetadata {
        FetchMetadata { session_id, epoch }
    }

    /// A session over `partitions`, each answered with high watermark 10.
    fn session_of(cache: &mut FetchSessionCache, now: i64, partitions: &[(&str, i32)]) -> i32 {
        let data: Vec<_> = partitions
            .iter()
            .map(|&(t, p)| (key(t, p), params(0)))
            .collect();
        assert_eq!(
            cache.new_context(12, full(0), &data, &[], now),
            FetchContext::Full
        );
        cache.create_session(
            now,
            false,
            false,
            data.into_iter()
                .map(|(k, p)| (k, p, outcome(0, 10)))
                .collect(),
        )
    }

    fn read_keys(context: &FetchContext) -> Vec<SessionPartition> {
        match context {
            FetchContext::Incremental { partitions, .. } => {
                partitions.iter().map(|(k, _)| k.clone()).collect()
            }
            other => panic!("expected an incremental context, got {other:?}"),
        }
    }

    #[test]
    fn epochs_count_up_and_wrap_to_one() {
        assert_eq!(next_epoch(INITIAL_EPOCH), 1);
        assert_eq!(next_epoch(41), 42);
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(FINAL_EPOCH), FINAL_EPOCH);
    }

    #[test]
    fn full_fetch_creates_a_session_that_incremental_fetches_use() {
        let mut cache = FetchSessionCache::new(10, EVICTION_MS, 7);
        let id = session_of(&mut cache, 0, &[("a", 0), ("a", 1)]);
        assert_ne!(id, INVALID_SESSION_ID);
        assert_eq!(cache.session_epoch(id), Some(1));
        assert_eq!(cache.total_partitions(), 2);

        let context = cache.new_context(12, incremental(id, 1), &[], &[], 10);
        assert_eq!(read_keys(&context), vec![key("a", 0), key("a", 1)]);
        assert_eq!(cache.session_epoch(id), Some(2));
        // Only a-0 has news: records.
        let answer = cache.incremental_response(
            id,
            1,
            &[
                (key("a", 0), outcome(100, 10)),
                (key("a", 1), outcome(0, 10)),
            ],
        );
        assert_eq!(answer, IncrementalAnswer::Include(vec![true, false]));
        // a-0 returned records, so it is read last next time.
        let context = cache.new_context(12, incremental(id, 2), &[], &[], 20);
        assert_eq!(read_keys(&context), vec![key("a", 1), key("a", 0)]);
        // A moved high watermark is news too, but only once.
        let outcomes = [(key("a", 1), outcome(0, 10)), (key("a", 0), outcome(0, 12))];
        assert_eq!(
            cache.incremental_response(id, 2, &outcomes),
            IncrementalAnswer::Include(vec![false, true])
        );
        cache.new_context(12, incremental(id, 3), &[], &[], 30);
        assert_eq!(
            cache.incremental_response(id, 3, &outcomes),
            IncrementalAnswer::Include(vec![false, false])
        );
    }

    #[test]
    fn incremental_fetches_update_add_and_forget_partitions() {
        let mut cache = FetchSessionCache::new(10, EVICTION_MS, 7);
        let id = session_of(&mut cache, 0, &[("a", 0), ("a", 1)]);
        let context = cache.new_context(
            12,
            incremental(id, 1),
            &[(key("a", 0), params(5)), (key("b", 0), params(0))],
            &[key("a", 1)],
            10,
        );
        match &context {
            FetchContext::Incremental { partitions, .. } => assert_eq!(
                partitions,
                &vec![(key("a", 0), params(5)), (key("b", 0), params(0))]
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(cache.total_partitions(), 2);
        // The added partition is always answered the first time.
        assert_eq!(
            cache.incremental_response(
                id,
                1,
                &[(key("a", 0), outcome(0, 10)), (key("b", 0), outcome(0, 0))]
            ),
            IncrementalAnswer::Include(vec![false, true])
        );
        // Forgetting every partition closes the session.
        let context =
            cache.new_context(12, incremental(id, 2), &[], &[key("a", 0), key("b", 0)], 20);
        assert_eq!(context, FetchContext::Sessionless);
        assert_eq!(cache.session_epoch(id), None);
        assert_eq!(cache.total_partitions(), 0);
    }

    #[test]
    fn errors_are_always_answered_and_answered_again_once_healthy() {
        let mut cache = FetchSessionCache::new(10, EVICTION_MS, 7);
        let id = session_of(&mut cache, 0, &[("a", 0)]);
        cache.new_context(12, incremental(id, 1), &[], &[], 1);
        let failed = PartitionOutcome {
            error_code: ErrorCode::NotLeaderOrFollower.code(),
            ..outcome(0, 10)
        };
        let answers: Vec<_> = [failed, outcome(0, 10), outcome(0, 10)]
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let epoch = i as i32 + 1;
                if i > 0 {
                    cache.new_context(12, incremental(id, epoch), &[], &[], 1);
                }
                cache.incremental_response(id, epoch, &[(key("a", 0), *o)])
            })
            .collect();
        assert_eq!(
            answers,
            vec![
                IncrementalAnswer::Include(vec![true]),
                IncrementalAnswer::Include(vec![true]),
                IncrementalAnswer::Include(vec![false]),
            ]
        );
    }

    #[test]
    fn preferred_replicas_and_diverging_epochs_are_always_answered() {
        let mut cache = FetchSessionCache::new(10, EVICTION_MS, 7);
        let id = session_of(&mut cache, 0, &[("a", 0)]);
        let redirect = PartitionOutcome {
            redirects: true,
            ..outcome(0, 10)
        };
        let answers: Vec<_> = [outcome(0, 10), redirect, redirect, outcome(0, 10)]
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let epoch = i as i32 + 1;
                cache.new_context(12, incremental(id, epoch), &[], &[], 1);
                cache.incremental_response(id, epoch, &[(key("a", 0), *o)])
            })
            .collect();
        let included: Vec<_> = answers
            .into_iter()
            .map(|a| match a {
                IncrementalAnswer::Include(v) => v[0],
                IncrementalAnswer::EpochChanged => panic!("epoch changed"),
            })
            .collect();
        // Nothing new is left out; a redirect is sent every time, though nothing else changed.
        assert_eq!(included, vec![false, true, true, false]);
    }

    #[test]
    fn session_errors_as_kafka_returns_them() {
        let mut cache = FetchSessionCache::new(10, EVICTION_MS, 7);
        let id = session_of(&mut cache, 0, &[("a", 0)]);
        assert_eq!(
            cache.new_context(12, incremental(id.wrapping_add(1).max(1), 1), &[], &[], 1),
            FetchContext::SessionError(ErrorCode::FetchSessionIdNotFound)
        );
        assert_eq!(
            cache.new_context(12, incremental(id, 5), &[], &[], 1),
            FetchContext::SessionError(ErrorCode::InvalidFetchSessionEpoch)
        );
        // A session made with topic names cannot go on with topic ids (v13+).
        assert_eq!(
            cache.new_context(13, incremental(id, 1), &[], &[], 1),
            FetchContext::SessionError(ErrorCode::FetchSessionTopicIdError)
        );
        // None of those moved the epoch.
        assert_eq!(cache.session_epoch(id), Some(1));
    }

    #[test]
    fn a_concurrent_request_that_moved_the_epoch_fails_the_older_one() {
        let mut cache = FetchSessionCache::new(10, EVICTION_MS, 7);
        let id = session_of(&mut cache, 0, &[("a", 0)]);
        cache.new_context(12, incremental(id, 1), &[], &[], 1);
        cache.new_context(12, incremental(id, 2), &[], &[], 2);
        let outcomes = [(key("a", 0), outcome(0, 10))];
        assert_eq!(
            cache.incremental_response(id, 1, &outcomes),
            IncrementalAnswer::EpochChanged
        );
        assert_eq!(
            cache.incremental_response(id, 2, &outcomes),
            IncrementalAnswer::Include(vec![false])
        );
    }

    #[test]
    fn full_fetches_close_the_session_they_name() {
        let mut cache = FetchSessionCache::new(10, EVICTION_MS, 7);
        let id = session_of(&mut cache, 0, &[("a", 0)]);
        let closing = FetchMetadata {
            session_id: id,
            epoch: FINAL_EPOCH,
        };
        assert_eq!(
            cache.new_context(12, closing, &[(key("a", 0), params(0))], &[], 1),
            FetchContext::Sessionless
        );
        assert!(cache.is_empty());
        let id = session_of(&mut cache, 0, &[("a", 0)]);
        // A full fetch naming a session replaces it.
        assert_eq!(
            cache.new_context(12, full(id), &[(key("a", 0), params(0))], &[], 1),
            FetchContext::Full
        );
        assert_eq!(cache.session_epoch(id), None);
        // Fetch before v7: no session at all.
        assert_eq!(
            cache.new_context(6, FetchMetadata::LEGACY, &[], &[], 1),
            FetchContext::Sessionless
        );
    }

    #[test]
    fn a_full_cache_creates_no_session_until_one_is_stale() {
        let mut cache = FetchSessionCache::new(2, EVICTION_MS, 7);
        let first = session_of(&mut cache, 0, &[("a", 0)]);
        let second = session_of(&mut cache, 1_000, &[("a", 0)]);
        assert_ne!(first, INVALID_SESSION_ID);
        assert_ne!(second, INVALID_SESSION_ID);
        // Both young: a new consumer session finds no slot.
        assert_eq!(
            session_of(&mut cache, 2_000, &[("a", 0), ("a", 1)]),
            INVALID_SESSION_ID
        );
        assert_eq!(cache.len(), 2);
        // The second keeps being used; the first goes stale and is taken.
        cache.new_context(12, incremental(second, 1), &[], &[], 100_000);
        let third = session_of(&mut cache, EVICTION_MS + 1, &[("a", 0)]);
        assert_ne!(third, INVALID_SESSION_ID);
        assert_eq!(cache.session_epoch(first), None);
        assert_eq!(cache.session_epoch(second), Some(2));
        assert_eq!(cache.evictions(), 1);
    }

    #[test]
    fn old_sessions_are_evicted_smallest_first_for_bigger_ones() {
        let mut cache = FetchSessionCache::new(2, EVICTION_MS, 7);
        let small = session_of(&mut cache, 0, &[("a", 0)]);
        let big = session_of(&mut cache, 0, &[("a", 0), ("a", 1), ("a", 2)]);
        // Used after eviction_ms from their creation: both may be evicted by
        // anyone now, but neither is stale.
        let later = EVICTION_MS + 10;
        cache.new_context(12, incremental(small, 1), &[], &[], later);
        cache.new_context(12, incremental(big, 1), &[], &[], later);
        // An equal size does not evict: the new key (with id 0) sorts first.
        assert_eq!(
            session_of(&mut cache, later + 1, &[("b", 0)]),
            INVALID_SESSION_ID
        );
        // Two partitions beat the one-partition session.
        let two = session_of(&mut cache, later + 2, &[("b", 0), ("b", 1)]);
        assert_ne!(two, INVALID_SESSION_ID);
        assert_eq!(cache.session_epoch(small), None);
        assert_eq!(cache.session_epoch(big), Some(2));
    }

    #[test]
    fn followers_take_the_slots_of_consumers() {
        let mut cache = FetchSessionCache::new(2, EVICTION_MS, 7);
        let a = session_of(&mut cache, 0, &[("a", 0), ("a", 1)]);
        let b = session_of(&mut cache, 0, &[("a", 0)]);
        // A follower's session, even a smaller one, evicts the smallest consumer session.
        let follower = cache.create_session(10, true, false, vec![]);
        assert_ne!(follower, INVALID_SESSION_ID);
        assert_eq!(cache.session_epoch(b), None);
        assert_eq!(cache.session_epoch(a), Some(1));
        // A consumer cannot evict a young follower session nor a young consumer one.
        assert_eq!(session_of(&mut cache, 20, &[("c", 0)]), INVALID_SESSION_ID);
        // A follower cannot evict a young follower session, but does take a consumer's.
        let second_follower = cache.create_session(30, true, false, vec![]);
        assert_ne!(second_follower, INVALID_SESSION_ID);
        assert_eq!(cache.session_epoch(a), None);
        assert_eq!(
            cache.create_session(40, true, false, vec![]),
            INVALID_SESSION_ID
        );
    }

    #[test]
    fn zero_slots_means_no_sessions() {
        let mut cache = FetchSessionCache::new(0, EVICTION_MS, 7);
        assert_eq!(session_of(&mut cache, 0, &[("a", 0)]), INVALID_SESSION_ID);
        assert!(cache.is_empty());
    }

    #[test]
    fn session_ids_are_distinct_and_never_zero() {
        let mut cache = FetchSessionCache::new(1000, EVICTION_MS, 0);
        let ids: std::collections::HashSet<i32> = (0..1000)
            .map(|_| session_of(&mut cache, 0, &[("a", 0)]))
            .collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|&id| id > 0));
    }

    #[test]
    fn topic_id_sessions_key_partitions_by_id() {
        let mut cache = FetchSessionCache::new(10, EVICTION_MS, 7);
        let topic = Uuid::from_u128(42);
        let by_id = SessionPartition::ById(topic, 0);
        assert_eq!(
            cache.new_context(13, full(0), &[(by_id.clone(), params(0))], &[], 0),
            FetchContext::Full
        );
        let id = cache.create_session(
            0,
            false,
            true,
            vec![(by_id.clone(), params(0), outcome(0, 1))],
        );
        assert_eq!(
            cache.new_context(12, incremental(id, 1), &[], &[], 1),
            FetchContext::SessionError(ErrorCode::FetchSessionTopicIdError)
        );
        let context = cache.new_context(13, incremental(id, 1), &[], &[], 1);
        assert_eq!(read_keys(&context), vec![by_id]);
    }
}
