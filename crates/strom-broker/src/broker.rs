//! The broker's shared state: configuration, the metadata image, the
//! partitions hosted here, and the one path by which metadata changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use strom_log::{LogError, UnsyncedClose};
use strom_metadata::broker_config::BrokerConfigLayers;
use strom_metadata::{BrokerEndpoint, ConfigResource, MetadataImage, MetadataRecord, TopicImage};
use strom_types::TopicId;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::apis::ApiTable;
use crate::config::{BrokerConfig, DynamicBrokerConfigs};
use crate::fetch_session::{FetchSessionCache, MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS};
use crate::log_dirs::{
    self, open_partition_log, partition_dir, place_partition, remove_uncommitted_partition_dir,
    retire_partition_dir, DataDir, DirDeleter, Placement,
};
use crate::metadata_quorum::{MetadataApplier, MetadataQuorum, NodeTransport};
use crate::metrics::{Metrics, PartitionLabels};
use crate::partition::Partition;
use crate::topic_settings;
use strom_raft::{FileStorage, ProposeError, QuorumError, METADATA_LOG_DIR};

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("log dir {path}: {source}")]
    LogDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    MetaProperties(#[from] crate::meta_properties::MetaPropertiesError),
    #[error("metadata log: {0}")]
    MetadataLog(std::io::Error),
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    #[error("partition {topic}-{partition}: {source}")]
    Partition {
        topic: String,
        partition: i32,
        source: LogError,
    },
}

/// Why [`Broker::write_metadata`] made no change.
#[derive(Debug)]
pub enum MetadataWriteError<E> {
    /// The controller refused it (`decide` failed).
    Refused(E),
    /// The records could not be committed.
    Failed(LogError),
    /// This node is not the active controller (the one it knows of, if any).
    NotController(Option<u64>),
}

impl<E> MetadataWriteError<E> {
    /// The Kafka error and message to answer with; `refused` maps the controller's refusal.
    pub fn into_error(
        self,
        refused: impl FnOnce(E) -> (strom_types::ErrorCode, String),
    ) -> (strom_types::ErrorCode, String) {
        match self {
            Self::Refused(e) => refused(e),
            Self::Failed(e) => (crate::errors::log_error_code(&e), e.to_string()),
            Self::NotController(leader) => (
                strom_types::ErrorCode::NotController,
                format!("This node is not the active controller (it knows of {leader:?})."),
            ),
        }
    }
}

impl MetadataWriteError<std::convert::Infallible> {
    pub fn into_log_error(self) -> LogError {
        match self {
            Self::Failed(e) => e,
            Self::NotController(leader) => LogError::Io(std::io::Error::other(format!(
                "this node is not the active controller (leader: {leader:?})"
            ))),
            Self::Refused(never) => match never {},
        }
    }
}

type PartitionMap = HashMap<String, BTreeMap<i32, Arc<Partition>>>;

pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub apis: ApiTable,
    /// What CONTROLLER listeners serve.
    pub controller_apis: ApiTable,
    pub metrics: Metrics,
    /// Partition roles' shared parts: acks=all waits and replica fetchers.
    pub replicas: crate::replica_manager::ReplicaManager,
    image: RwLock<Arc<MetadataImage>>,
    /// The offset of the last metadata entry applied to `image` (-1: none yet).
    image_offset: AtomicI64,
    /// Connections to other nodes' CONTROLLER listeners (`controller_channel`).
    pub(crate) node_rpc: crate::node_rpc::NodeRpcClient,
    /// The first image is installed ([`Self::load`] is done with the log).
    image_loaded: AtomicBool,
    /// True once the node serves clients (a broker-only node's listeners are bound
    /// before, for the controller to send it the log).
    open_to_clients: tokio::sync::watch::Sender<bool>,
    /// Registration and heartbeats with the active controller (several voters only).
    pub(crate) lifecycle: crate::broker_lifecycle::Lifecycle,
    /// The metadata quorum; set once at start.
    quorum: OnceLock<Arc<MetadataQuorum>>,
    /// The schema registry's ids, for topics with schema validation (set by the binary).
    schema_ids: OnceLock<crate::schema_validation::SharedSchemaIds>,
    /// Held for the whole read-decide-propose of a metadata change made here, so
    /// changes are serialized exactly as a controller orders them.
    controller_lock: Mutex<()>,
    /// Logs opened for a change being proposed here, by (topic, partition): applying the
    /// committed change hosts them, a change that fails removes them.
    prepared: std::sync::Mutex<HashMap<(String, i32), Arc<Partition>>>,
    /// Held while partition dirs are created and hosted, and while stray dirs are
    /// removed, so a dir made for an image being installed is never taken for a stray.
    partition_dirs: std::sync::Mutex<()>,
    /// True while the node starts: logs open trusting the log dir's clean-shutdown marker.
    opening_clean: AtomicBool,
    /// The active controller's broker sessions (strom-metadata's ClusterControl).
    pub(crate) cluster_control: crate::controller_ops::ClusterControlSlot,
    /// While starting: the image applied so far and its offset (`u64::MAX`: none yet).
    loading: std::sync::Mutex<Option<(u64, MetadataImage)>>,
    /// The first partition that failed to open while starting.
    startup_failure: std::sync::Mutex<Option<StartupError>>,
    partitions: RwLock<PartitionMap>,
    /// KIP-227 fetch sessions; held only to look up or update a session.
    pub fetch_sessions: std::sync::Mutex<FetchSessionCache>,
    /// Client quotas' buckets (the quotas themselves are in the image).
    pub quotas: crate::client_quotas::ClientQuotas,
    /// The group coordinator's shards and their timers.
    pub groups: crate::group_coordinator::GroupCoordinator,
    pub transactions: crate::txn_coordinator::TransactionCoordinator,
    /// Rounds that load and unload coordinator shards as leadership changes.
    pub(crate) coordinator_loads: crate::coordinator_loads::CoordinatorLoads,
    /// The unused rest of this broker's current block of producer ids.
    producer_ids: Mutex<std::ops::Range<i64>>,
    /// High watermarks read from the log dir's checkpoint at start, taken by each
    /// partition as it opens.
    checkpointed_high_watermarks: std::sync::Mutex<HashMap<(String, i32), i64>>,
    /// Removes deleted partitions' dirs in the background.
    deleter: DirDeleter,
    /// Every log dir (`log.dirs`); the one that is `metadata.log.dir` holds the metadata log.
    log_dirs: Vec<OpenLogDir>,
    /// `metadata.log.dir` when it is none of `log.dirs`: the metadata log alone.
    metadata_dir: Option<OpenLogDir>,
    /// The same dirs as partitions see them, for placement.
    data_dirs: Vec<Arc<DataDir>>,
    /// Held while a partition is given a dir, so parallel opens spread evenly.
    placement: std::sync::Mutex<()>,
}

/// A log dir as the broker opened it at start.
/// Creates `dir` if need be and opens it as Kafka's LogManager does: its meta.properties
/// (every dir names the same cluster and node, each with its own directory.id), and its
/// clean-shutdown marker, read before any log opens and removed once all are open.
fn open_dir(
    dir: &std::path::Path,
    node_id: i32,
    cluster_id: &mut Option<String>,
    holds_metadata: bool,
) -> Result<OpenLogDir, StartupError> {
    let dir_error = |source| StartupError::LogDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(dir_error)?;
    let handle = std::fs::File::open(dir).map_err(dir_error)?;
    let meta = crate::meta_properties::load_or_create(dir, node_id, cluster_id.as_deref())?;
    *cluster_id = Some(meta.cluster_id);
    Ok(OpenLogDir {
        dir: DataDir::opened(dir.to_path_buf(), holds_metadata, Some(meta.directory_id)),
        handle: Some(handle),
        clean_at_start: strom_log::log_dir_had_clean_shutdown(dir),
    })
}

/// A dir of `log.dirs` that is not the metadata log's and cannot be opened (or its high
/// watermark checkpoint read) is offline from the start, as in Kafka; a dir of another
/// cluster or node still fails the start.
fn offline_at_start(dir: &std::path::Path, error: &StartupError) -> Option<OpenLogDir> {
    let storage_error = match error {
        StartupError::LogDir { .. } => true,
        StartupError::MetaProperties(e) => {
            matches!(e, crate::meta_properties::MetaPropertiesError::Io { .. })
        }
        _ => false,
    };
    storage_error.then(|| OpenLogDir {
        dir: DataDir::offline_at_start(dir.to_path_buf(), error),
        handle: None,
        clean_at_start: false,
    })
}

struct OpenLogDir {
    dir: Arc<DataDir>,
    /// Open since start: shutdown syncs the dir's filesystem through it, which reports
    /// writeback errors since it was opened. `None` for a dir offline from the start.
    handle: Option<std::fs::File>,
    /// Its clean-shutdown marker was there at start.
    clean_at_start: bool,
}

/// Opening the partitions of a metadata change failed: what was opened, what was not, and why.
struct OpenFailure {
    opened: Vec<Arc<Partition>>,
    /// The partitions that failed or were never tried: (topic, index, topic id).
    unopened: Vec<(String, i32, TopicId)>,
    error: StartupError,
}

/// How long a voter among several waits at start for its metadata log to be applied.
const METADATA_CATCH_UP_AT_START: std::time::Duration = std::time::Duration::from_secs(30);

/// Producer ids claimed from the metadata log at a time.
pub(crate) const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// Threads that open or close partition logs at once (start-up, shutdown, a new topic):
/// each log's work is a few small files and fsyncs, which overlap well on any disk.
const LOG_IO_WORKERS: usize = 8;

impl Broker {
    /// Hands the broker the schema registry it validates schema ids against.
    pub fn set_schema_ids(&self, ids: crate::schema_validation::SharedSchemaIds) {
        let _ = self.schema_ids.set(ids);
    }

    pub fn schema_ids(&self) -> Option<&dyn crate::schema_validation::SchemaIds> {
        self.schema_ids.get().map(|ids| ids.as_ref())
    }

    /// Opens the log dir, starts the metadata quorum (whose committed records, applied
    /// here, open the hosted partitions) and loads the coordinators.
    pub async fn open(config: BrokerConfig) -> Result<Arc<Self>, StartupError> {
        let broker = Self::start(config).await?;
        broker.load().await?;
        Ok(broker)
    }

    /// Opens the log dir and starts this node's voter of the metadata quorum; the node
    /// answers Raft messages from here on (its CONTROLLER listeners may be bound). The
    /// image is not loaded yet: [`Self::load`] does that once the log is applied.
    pub async fn start(config: BrokerConfig) -> Result<Arc<Self>, StartupError> {
        let log_dir = config.log_dir.clone();
        let quorum_config = crate::metadata_quorum::quorum_config(&config);
        let prepared = {
            let config = config.clone();
            let quorum_config = quorum_config.clone();
            tokio::task::spawn_blocking(move || -> Result<_, StartupError> {
                let mut opened = Vec::with_capacity(config.log_dirs.len());
                let mut cluster_id = config.cluster.cluster_id.clone();
                let mut checkpointed_high_watermarks: HashMap<(String, i32), i64> = HashMap::new();
                for log_dir in &config.log_dirs {
                    let dir_error = |source| StartupError::LogDir {
                        path: log_dir.display().to_string(),
                        source,
                    };
                    let holds_metadata = *log_dir == config.metadata_log_dir;
                    let open = open_dir(log_dir, config.node_id, &mut cluster_id, holds_metadata)
                        .and_then(|open| {
                            let checkpointed =
                                strom_log::read_high_watermarks(log_dir).map_err(dir_error)?;
                            Ok((open, checkpointed))
                        });
                    let open = match open {
                        Ok((open, checkpointed)) => {
                            log_dirs::remove_deleted_dirs(log_dir);
                            checkpointed_high_watermarks.extend(
                                checkpointed
                                    .into_iter()
                                    .map(|e| ((e.topic, e.partition), e.offset)),
                            );
                            open
                        }
                        Err(e) if holds_metadata => return Err(e),
                        Err(e) => offline_at_start(log_dir, &e).ok_or(e)?,
                    };
                    opened.push(open);
                }
                if opened.iter().all(|d| d.dir.is_offline()) {
                    return Err(StartupError::LogDir {
                        path: config.log_dir.display().to_string(),
                        source: std::io::Error::other("every log dir is offline"),
                    });
                }
                // A metadata.log.dir outside log.dirs: its own meta.properties and marker.
                let metadata_dir = if config.log_dirs.contains(&config.metadata_log_dir) {
                    None
                } else {
                    let dir = &config.metadata_log_dir;
                    Some(open_dir(dir, config.node_id, &mut cluster_id, true)?)
                };
                let cluster_id = cluster_id.unwrap_or_default();
                let clean_shutdown = opened.first().is_some_and(|d| d.clean_at_start);
                let metadata_clean = metadata_dir
                    .iter()
                    .chain(&opened)
                    .find(|d| d.dir.path == config.metadata_log_dir)
                    .is_some_and(|d| d.clean_at_start);
                let storage = FileStorage::open_in_log_dir(
                    &config.metadata_log_dir,
                    &quorum_config,
                    metadata_clean,
                )
                .map_err(StartupError::MetadataLog)?;
                Ok((
                    opened,
                    metadata_dir,
                    cluster_id,
                    clean_shutdown,
                    storage,
                    checkpointed_high_watermarks,
                ))
            })
            .await
            .map_err(|e| StartupError::LogDir {
                path: log_dir.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })??
        };
        let (
            log_dirs,
            metadata_dir,
            cluster_id,
            clean_shutdown,
            storage,
            checkpointed_high_watermarks,
        ) = prepared;
        let data_dirs: Vec<Arc<DataDir>> = log_dirs.iter().map(|d| d.dir.clone()).collect();
        let config_for_groups = config.clone();
        let transport = NodeTransport::new(&config);
        let broker = Arc::new(Self {
            config,
            cluster_id,
            apis: ApiTable::new(),
            controller_apis: ApiTable::controller(),
            metrics: Metrics::new(),
            replicas: Default::default(),
            image: RwLock::new(Arc::new(MetadataImage::default())),
            image_offset: AtomicI64::new(-1),
            image_loaded: AtomicBool::new(false),
            open_to_clients: tokio::sync::watch::Sender::new(false),
            node_rpc: crate::node_rpc::NodeRpcClient::new(
                config_for_groups.socket_request_max_bytes,
            ),
            lifecycle: crate::broker_lifecycle::Lifecycle::new(&log_dir, clean_shutdown),
            quorum: OnceLock::new(),
            schema_ids: OnceLock::new(),
            controller_lock: Mutex::new(()),
            prepared: std::sync::Mutex::new(HashMap::new()),
            partition_dirs: std::sync::Mutex::new(()),
            opening_clean: AtomicBool::new(clean_shutdown),
            startup_failure: std::sync::Mutex::new(None),
            cluster_control: std::sync::Mutex::new(None),
            loading: std::sync::Mutex::new(Some((u64::MAX, MetadataImage::default()))),
            partitions: RwLock::new(HashMap::new()),
            quotas: crate::client_quotas::ClientQuotas::new(&config_for_groups),
            fetch_sessions: std::sync::Mutex::new(FetchSessionCache::new(
                config_for_groups.max_incremental_fetch_session_cache_slots,
                MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS,
                session_id_seed(),
            )),
            producer_ids: Mutex::new(0..0),
            checkpointed_high_watermarks: std::sync::Mutex::new(checkpointed_high_watermarks),
            deleter: DirDeleter::spawn(config_for_groups.log_dirs.clone()),
            groups: crate::group_coordinator::GroupCoordinator::new(group_config(
                &config_for_groups,
            ))
            .with_append_linger_ms(config_for_groups.group_coordinator_append_linger_ms),
            transactions: crate::txn_coordinator::TransactionCoordinator::new(
                crate::txn_coordinator::txn_config(&config_for_groups),
            ),
            coordinator_loads: Default::default(),
            log_dirs,
            metadata_dir,
            data_dirs,
            placement: std::sync::Mutex::new(()),
        });
        broker.replicas.set_broker(&broker);
        let applier = MetadataApplier {
            broker: Arc::downgrade(&broker),
        };
        let quorum =
            Arc::new(strom_raft::Quorum::start(quorum_config, storage, transport, applier).await?);
        let _ = broker.quorum.set(quorum.clone());
        tokio::spawn(stop_on_quorum_failure(quorum));
        Ok(broker)
    }

    /// Waits until the metadata log this node had is applied, then installs the image
    /// once: partitions open, coordinators load. Until then no metadata change is
    /// decided here.
    pub async fn load(self: &Arc<Self>) -> Result<(), StartupError> {
        let broker = self;
        let clean_shutdown = self.opening_clean.load(Ordering::Acquire);
        let quorum = self
            .quorum()
            .map_err(|e| StartupError::MetadataLog(std::io::Error::other(e.to_string())))?
            .clone();
        broker.wait_for_metadata_at_start(&quorum).await;
        tokio::task::block_in_place(|| broker.finish_loading());
        if let Some(failure) = broker
            .startup_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(failure);
        }
        broker.opening_clean.store(false, Ordering::Release);
        for open in self.log_dirs.iter().chain(&self.metadata_dir) {
            if open.dir.is_offline() {
                continue;
            }
            let dir = open.dir.path.clone();
            let dir_error = |source| StartupError::LogDir {
                path: dir.display().to_string(),
                source,
            };
            let removing = dir.clone();
            tokio::task::spawn_blocking(move || {
                strom_log::remove_log_dir_clean_shutdown(&removing)
            })
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(dir_error)?;
        }
        let image = broker.image();
        info!(
            offset = broker.image_offset.load(Ordering::Acquire),
            topics = image.topic_count(),
            partitions = broker.all_partitions().len(),
            clean_shutdown,
            cluster_id = %broker.cluster_id,
            "metadata applied and partition logs opened"
        );
        tokio::task::block_in_place(|| {
            // A node of several voters may start before it has the committed log: it
            // removes strays once the controller has seen it caught up (`join_cluster`).
            if broker.config.cluster.is_single_voter() {
                broker.remove_stray_partition_dirs();
            }
            broker.groups.publish_topics(&broker.image());
            broker.groups.publish_group_configs(&broker.image());
            broker.groups.load_shards(broker);
            broker.transactions.load_shards(broker);
        });
        Ok(())
    }

    /// Registers this broker's endpoints in the metadata log if they changed.
    pub async fn register(&self) -> Result<(), LogError> {
        let endpoints: Vec<BrokerEndpoint> = self
            .config
            .advertised_listeners
            .iter()
            .map(|l| BrokerEndpoint {
                listener: l.name.clone(),
                host: l.host.clone(),
                port: l.port,
            })
            .collect();
        let node_id = self.config.node_id;
        let rack = self.config.cluster.rack.clone();
        self.write_metadata(|image| {
            let unchanged = image
                .broker(node_id)
                .is_some_and(|b| b.endpoints == endpoints && b.rack == rack);
            let records = if unchanged {
                Vec::new()
            } else {
                vec![MetadataRecord::RegisterBroker {
                    log_dirs: vec![],
                    broker_id: node_id,
                    endpoints,
                    rack,
                    incarnation_id: None,
                    broker_epoch: 0,
                    fenced: false,
                    in_controlled_shutdown: false,
                }]
            };
            Ok::<_, std::convert::Infallible>((records, ()))
        })
        .await
        .map_err(MetadataWriteError::into_log_error)
    }

    /// A producer id never handed out before, claiming a new block through
    /// the metadata log when the current one is used up.
    pub async fn next_producer_id(&self) -> Result<i64, LogError> {
        let mut block = self.producer_ids.lock().await;
        if block.is_empty() {
            *block = if self.config.cluster.is_single_voter() {
                let start = self
                    .allocate_producer_id_block(self.config.node_id)
                    .await
                    .map_err(|code| LogError::Io(std::io::Error::other(format!("{code:?}"))))?;
                start..start + PRODUCER_ID_BLOCK_SIZE
            } else {
                self.producer_ids_from_controller().await?
            };
        }
        let id = block.start;
        block.start += 1;
        Ok(id)
    }

    /// Commits the next block of producer ids for `broker_id` (on the active controller)
    /// and returns its first id.
    pub(crate) async fn allocate_producer_id_block(
        &self,
        broker_id: i32,
    ) -> Result<i64, strom_types::ErrorCode> {
        self.write_metadata(|image| {
            Ok::<_, std::convert::Infallible>(strom_metadata::controller::allocate_producer_ids(
                image,
                broker_id,
                PRODUCER_ID_BLOCK_SIZE,
            ))
        })
        .await
        .map_err(|e| e.into_error(|never| match never {}).0)
    }

    /// A block of producer ids from the active controller (AllocateProducerIds).
    async fn producer_ids_from_controller(&self) -> Result<std::ops::Range<i64>, LogError> {
        let request = kafka_protocol::messages::AllocateProducerIdsRequest::default()
            .with_broker_id(kafka_protocol::messages::BrokerId(self.config.node_id))
            .with_broker_epoch(self.lifecycle.broker_epoch());
        let response = self
            .call_controller(&request, 0)
            .await
            .map_err(|e| LogError::Io(std::io::Error::other(e.to_string())))?;
        if response.error_code != 0 || response.producer_id_len <= 0 {
            return Err(LogError::Io(std::io::Error::other(format!(
                "the controller gave no producer ids (error {})",
                response.error_code
            ))));
        }
        let start = response.producer_id_start.0;
        Ok(start..start + i64::from(response.producer_id_len))
    }

    /// The APIs served on a kind of listener.
    pub fn apis_for(&self, listener: crate::apis::ListenerRole) -> &ApiTable {
        match listener {
            crate::apis::ListenerRole::Client => &self.apis,
            crate::apis::ListenerRole::Controller => &self.controller_apis,
        }
    }

    /// From here on clients' requests are served (see [`Self::wait_open_to_clients`]).
    pub fn open_to_clients(&self) {
        self.open_to_clients.send_replace(true);
    }

    /// Holds a client's request on a broker-only node until it has joined the cluster;
    /// other nodes bind their client listeners only then, so nothing waits there.
    pub async fn wait_open_to_clients(&self) {
        if self.config.cluster.roles.controller || *self.open_to_clients.borrow() {
            return;
        }
        let mut open = self.open_to_clients.subscribe();
        let _ = open.wait_for(|open| *open).await;
    }

    /// The metadata quorum, once started.
    pub fn metadata_quorum(&self) -> Option<&Arc<MetadataQuorum>> {
        self.quorum.get()
    }

    /// This node is the active controller (the metadata quorum's leader).
    pub fn is_active_controller(&self) -> bool {
        self.quorum.get().is_some_and(|q| q.is_leader())
    }

    /// This broker's dynamic configs as of the current image.
    pub fn dynamic_configs(&self) -> DynamicBrokerConfigs {
        DynamicBrokerConfigs::from_image(&self.image(), self.config.node_id)
    }

    /// A broker config's value in force now: dynamic, static, then default.
    pub fn effective_config<T: std::str::FromStr>(&self, name: &str, fallback: T) -> T {
        self.dynamic_configs()
            .over(&self.config)
            .effective(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(fallback)
    }

    /// The metadata log offset the image is at (-1 before any).
    pub fn image_offset(&self) -> i64 {
        self.image_offset.load(Ordering::Acquire)
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes one metadata change, as the controller orders them: `decide` reads the
    /// current image and returns the records to commit and its result. Changes are
    /// serialized, and `decide` sees everything committed before it (the quorum's read
    /// index). Refused changes (`decide`'s error) commit nothing; an empty record list
    /// commits nothing either.
    ///
    /// The logs of partitions the change creates here are opened first: a change this
    /// node cannot carry out (no descriptors, no space, no permission) fails whole and
    /// leaves neither records nor dirs behind. Deleted partitions' files go after the
    /// commit, in the background, as in Kafka: failing there is logged, not the change's error.
    pub async fn write_metadata<T, E>(
        &self,
        decide: impl FnOnce(&MetadataImage) -> Result<(Vec<MetadataRecord>, T), E>,
    ) -> Result<T, MetadataWriteError<E>> {
        self.write_metadata_at(|image, _| decide(image)).await
    }

    /// [`Self::write_metadata`], where `decide` also gets the offset its records will be
    /// committed at (a broker's epoch is the offset of its registration, as in KRaft).
    pub async fn write_metadata_at<T, E>(
        &self,
        decide: impl FnOnce(&MetadataImage, i64) -> Result<(Vec<MetadataRecord>, T), E>,
    ) -> Result<T, MetadataWriteError<E>> {
        let _serial = self.controller_lock.lock().await;
        let quorum = self.quorum().map_err(MetadataWriteError::Failed)?;
        if self.is_loading() {
            // A leader still loading its image would decide on an empty one.
            return Err(MetadataWriteError::NotController(quorum.leader()));
        }
        quorum.catch_up().await.map_err(write_failure)?;
        let image = self.image();
        // Only this lock's holder appends on the leader, so the next entry's offset is known.
        let next_offset = quorum.status().last_offset.map_or(0, |o| o as i64 + 1);
        let (records, result) = decide(&image, next_offset).map_err(MetadataWriteError::Refused)?;
        if records.is_empty() {
            return Ok(result);
        }
        let next = image.apply(&records);
        let opened = tokio::task::block_in_place(|| self.prepare_partitions(&next))
            .map_err(MetadataWriteError::Failed)?;
        let proposed = quorum.propose(records).await;
        // Logs the committed change did not take (it failed, or no longer wanted them).
        let leftovers: Vec<Arc<Partition>> = {
            let mut prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
            opened
                .iter()
                .filter_map(|p| {
                    let key = (p.topic.clone(), p.index);
                    match prepared.get(&key) {
                        Some(held) if Arc::ptr_eq(held, p) => prepared.remove(&key),
                        _ => None,
                    }
                })
                .collect()
        };
        if !leftovers.is_empty() {
            tokio::task::block_in_place(|| self.discard_uncommitted(leftovers, &[]));
        }
        proposed.map_err(write_failure)?;
        Ok(result)
    }

    /// The lock every change of the metadata log made here holds (see
    /// [`Self::write_metadata`]); membership changes take it too.
    pub(crate) async fn controller_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.controller_lock.lock().await
    }

    /// Waits until the metadata this node had at start is applied (its partitions open),
    /// so it serves nothing from a partial image: a one-voter quorum until everything
    /// committed is applied; a voter among several until its own log is applied, which
    /// needs a leader (bounded, since a quorum may not be there yet).
    async fn wait_for_metadata_at_start(&self, quorum: &MetadataQuorum) {
        if self.config.cluster.is_single_voter() {
            if let Err(e) = quorum.catch_up().await {
                warn!(error = %e, "the one-voter metadata quorum could not catch up");
            }
            return;
        }
        let deadline = tokio::time::Instant::now() + METADATA_CATCH_UP_AT_START;
        // The quorum reports its log's end once its core has loaded the storage.
        let reported = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut target = quorum.status().last_offset;
        while target.is_none() && tokio::time::Instant::now() < reported {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            target = quorum.status().last_offset;
        }
        while let Some(target) = target {
            if quorum.status().applied_offset.is_some_and(|a| a >= target) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                warn!(
                    target,
                    "starting before the metadata log is applied: no quorum yet"
                );
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    fn quorum(&self) -> Result<&Arc<MetadataQuorum>, LogError> {
        self.quorum.get().ok_or_else(|| {
            LogError::Io(std::io::Error::other("the metadata quorum is not running"))
        })
    }

    /// Opens the logs of the partitions `next` hosts here that are not open yet, and holds
    /// them for the apply of the committed change. On failure none is left behind.
    fn prepare_partitions(&self, next: &MetadataImage) -> Result<Vec<Arc<Partition>>, LogError> {
        let _dirs = self
            .partition_dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let opened = match self.open_partitions(next, false) {
            Ok(opened) => opened,
            Err(failure) => {
                let failure = *failure;
                self.discard_uncommitted(failure.opened, &failure.unopened);
                return Err(match failure.error {
                    StartupError::Partition {
                        topic,
                        partition,
                        source: LogError::Io(e),
                    } => LogError::Io(std::io::Error::new(
                        e.kind(),
                        format!("creating partition {topic}-{partition} failed: {e}"),
                    )),
                    StartupError::Partition { source, .. } => source,
                    other => LogError::Io(std::io::Error::other(other.to_string())),
                });
            }
        };
        let mut prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        for partition in &opened {
            prepared.insert(
                (partition.topic.clone(), partition.index),
                partition.clone(),
            );
        }
        Ok(opened)
    }

    /// Applies the committed records of the metadata entry at `offset`: the one way the
    /// image changes (the quorum's state machine calls it, in log order).
    pub(crate) fn apply_committed(&self, offset: u64, records: &[MetadataRecord]) {
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, image)) = loading.as_mut() {
            // Still starting: the history is folded into one image, installed once, so
            // a topic created and deleted long ago never has its partitions opened.
            *image = image.apply(records);
            *at = offset;
            return;
        }
        drop(loading);
        let next = self.image().apply(records);
        self.install_committed(offset, next);
    }

    /// The image the quorum's state machine has applied (a snapshot of it is a snapshot
    /// of the metadata log).
    pub(crate) fn applied_image(&self) -> Arc<MetadataImage> {
        let loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        match loading.as_ref() {
            Some((_, image)) => Arc::new(image.clone()),
            None => self.image(),
        }
    }

    /// Ends the start: installs the image folded from the snapshot and log (opening its
    /// partitions in parallel), and applies every later entry as it commits.
    /// Still folding the log into the first image (no lock: `finish_loading` holds that
    /// of `loading` while it installs).
    fn is_loading(&self) -> bool {
        !self.image_loaded.load(Ordering::Acquire)
    }

    fn finish_loading(&self) {
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((offset, image)) = loading.take() {
            if offset != u64::MAX {
                self.install_committed(offset, image);
            }
        }
        self.image_loaded.store(true, Ordering::Release);
    }

    /// Replaces the image with a snapshot's (at start, or one installed from the leader).
    pub(crate) fn restore_image(&self, offset: u64, records: &[MetadataRecord]) {
        let next = MetadataImage::default().apply(records);
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pending) = loading.as_mut() {
            *pending = (offset, next);
            return;
        }
        drop(loading);
        self.install_committed(offset, next);
    }

    /// Installs a committed image: the partitions it hosts here are taken from those
    /// prepared for it or opened now.
    fn install_committed(&self, offset: u64, next: MetadataImage) {
        let dirs = self
            .partition_dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let taken: Vec<Arc<Partition>> = {
            let mut prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
            let wanted: Vec<(String, i32)> = prepared
                .iter()
                .filter(|((topic, index), p)| {
                    next.topic(topic).is_some_and(|t| {
                        t.id == p.topic_id
                            && t.partitions
                                .get(index)
                                .is_some_and(|s| s.replicas.contains(&self.config.node_id))
                    })
                })
                .map(|(key, _)| key.clone())
                .collect();
            wanted
                .into_iter()
                .filter_map(|key| prepared.remove(&key))
                .collect()
        };
        let clean = self.opening_clean.load(Ordering::Acquire);
        let mut opened = taken;
        match self.open_partitions_except(&next, clean, &opened, true) {
            Ok(more) => opened.extend(more),
            Err(failure) => {
                let failure = *failure;
                // Kafka takes such a log dir offline; here the partition stays unhosted
                // (its requests fail) and a start fails.
                tracing::error!(offset, error = %failure.error, "a committed partition could not be opened");
                opened.extend(failure.opened);
                let mut startup = self
                    .startup_failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if clean || self.quorum.get().is_none() {
                    startup.get_or_insert(failure.error);
                }
            }
        }
        self.install(next, opened);
        self.image_offset.store(offset as i64, Ordering::Release);
        drop(dirs);
        self.lifecycle.wake_dir_assignments();
        self.publish_observer_addresses();
        if self.quorum.get().is_some() && !self.is_loading() {
            self.groups.publish_topics(&self.image());
            self.groups.publish_group_configs(&self.image());
            // Coordinators follow their partitions' leadership, in the background.
            self.coordinator_loads.request();
        }
    }

    /// Tells the quorum where the registered brokers that are not voters (the metadata
    /// log's observers) are reached: their inter-broker listeners. Every node does it
    /// from the committed image, so whichever becomes the leader knows them.
    fn publish_observer_addresses(&self) {
        let Some(quorum) = self.quorum.get() else {
            return;
        };
        if self.config.cluster.is_single_voter() {
            return;
        }
        let image = self.image();
        let addresses = image
            .brokers()
            .filter(|b| !self.config.cluster.voters.iter().any(|v| v.id == b.id))
            .filter_map(|b| {
                let address = self.inter_broker_address(&image, b.id)?;
                Some((u64::try_from(b.id).ok()?, address))
            })
            .collect();
        quorum.set_observer_addresses(addresses);
    }

    /// Makes `next` the current image, with the partitions opened for it, and brings the
    /// rest of the hosted partitions in line (deleted ones go, changed settings apply).
    fn install(&self, next: MetadataImage, opened: Vec<Arc<Partition>>) {
        {
            // Hosted before the image names them, so no request sees a topic without its logs.
            let mut partitions = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            for partition in opened {
                partitions
                    .entry(partition.topic.clone())
                    .or_default()
                    .insert(partition.index, partition);
            }
        }
        crate::replica_manager::apply_roles(self, &next);
        let previous = {
            let mut guard = self.image.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *guard, Arc::new(next))
        };
        let next = self.image();
        self.remove_deleted_partitions(&next);
        self.refresh_changed_settings(&previous, &next);
    }

    /// Opens the logs of every partition in `image` hosted here and not open yet, in
    /// parallel. Nothing is hosted until [`Self::install`]; on failure the rest are skipped.
    /// `log_dir_clean`: the log dir's clean-shutdown marker was there at start.
    fn open_partitions(
        &self,
        image: &MetadataImage,
        log_dir_clean: bool,
    ) -> Result<Vec<Arc<Partition>>, Box<OpenFailure>> {
        self.open_partitions_except(image, log_dir_clean, &[], false)
    }

    /// [`Self::open_partitions`], leaving out those already opened in `have`; `committed`
    /// when the image is (not a change being proposed).
    fn open_partitions_except(
        &self,
        image: &MetadataImage,
        log_dir_clean: bool,
        have: &[Arc<Partition>],
        committed: bool,
    ) -> Result<Vec<Arc<Partition>>, Box<OpenFailure>> {
        let wanted: Vec<(Arc<TopicImage>, i32)> = image
            .topics()
            .flat_map(|topic| {
                topic
                    .partitions
                    .values()
                    .filter(|p| {
                        p.replicas.contains(&self.config.node_id)
                            && self.partition(&topic.name, p.partition).is_none()
                            && !have
                                .iter()
                                .any(|h| h.topic == topic.name && h.index == p.partition)
                    })
                    .map(|p| (topic.clone(), p.partition))
            })
            .collect();
        let dynamic = DynamicBrokerConfigs::from_image(image, self.config.node_id);
        let configs = dynamic.over(&self.config);
        let failed = AtomicBool::new(false);
        let results = log_dirs::parallel_map(&wanted, LOG_IO_WORKERS, |(topic, index)| {
            if failed.load(Ordering::Relaxed) {
                return None;
            }
            let opened =
                self.open_partition(image, &configs, topic, *index, log_dir_clean, committed);
            if opened.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            Some(opened)
        });
        let mut opened = Vec::with_capacity(wanted.len());
        let mut unopened = Vec::new();
        let mut error = None;
        for ((topic, index), result) in wanted.iter().zip(results) {
            match result {
                Some(Ok(partition)) => opened.push(partition),
                Some(Err(source)) => {
                    unopened.push((topic.name.clone(), *index, topic.id));
                    error.get_or_insert(StartupError::Partition {
                        topic: topic.name.clone(),
                        partition: *index,
                        source,
                    });
                }
                None => unopened.push((topic.name.clone(), *index, topic.id)),
            }
        }
        match error {
            None => Ok(opened),
            Some(error) => Err(Box::new(OpenFailure {
                opened,
                unopened,
                error,
            })),
        }
    }

    fn open_partition(
        &self,
        image: &MetadataImage,
        configs: &BrokerConfigLayers<'_>,
        topic: &TopicImage,
        index: i32,
        log_dir_clean: bool,
        committed: bool,
    ) -> Result<Arc<Partition>, LogError> {
        let Some(spec) = topic.partitions.get(&index) else {
            return Err(LogError::Io(std::io::Error::other(
                "partition not in the image",
            )));
        };
        let settings = topic_settings::resolve(image, configs, &topic.name);
        let assigned = spec.directory(self.config.node_id);
        // Replaying the log at start: the partition was hosted here before.
        let existing = committed && self.is_loading();
        let placement = {
            let _placing = self.placement.lock().unwrap_or_else(|p| p.into_inner());
            place_partition(&self.data_dirs, &topic.name, index, assigned, existing)?
        };
        let offline = |dir| {
            Arc::new(Partition::offline(
                topic.name.clone(),
                topic.id,
                index,
                spec.leader_epoch,
                settings.clone(),
                dir,
            ))
        };
        let data_dir = match placement {
            Placement::Online(dir) => dir,
            Placement::Offline(dir) => {
                warn!(topic = %topic.name, partition = index, dir = %dir.path.display(), "the partition's log dir is offline; it answers KAFKA_STORAGE_ERROR");
                return Ok(offline(dir));
            }
        };
        let clean = log_dir_clean
            && self
                .log_dirs
                .iter()
                .any(|d| Arc::ptr_eq(&d.dir, &data_dir) && d.clean_at_start);
        let dir = partition_dir(&data_dir.path, &topic.name, index);
        let existed = dir.is_dir();
        let log = match open_partition_log(&dir, topic.id, settings.log.clone(), clean) {
            Ok(log) => log,
            Err(e) if committed && existed && log_dirs::is_storage_fault(&e) => {
                // Loading a log it had failed: the dir goes offline, as in Kafka.
                data_dir.fail(&e);
                return Ok(offline(data_dir));
            }
            Err(e) => {
                // Refused, not offline: a new partition that cannot be created fails its
                // request whole (KAFKA_STORAGE_ERROR) and leaves the dir serving.
                data_dir.partition_removed();
                return Err(e);
            }
        };
        let hosted = Arc::new(
            Partition::new(
                topic.name.clone(),
                topic.id,
                index,
                spec.leader_epoch,
                log,
                settings,
            )
            .in_dir(data_dir),
        );
        let checkpointed = self
            .checkpointed_high_watermarks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(topic.name.clone(), index));
        hosted.restore_high_watermark(checkpointed);
        Ok(hosted)
    }

    /// Undoes [`Self::open_partitions`] for a change that was not committed: closes the
    /// logs (freeing their descriptors first) and removes the dirs made for them.
    fn discard_uncommitted(
        &self,
        opened: Vec<Arc<Partition>>,
        unopened: &[(String, i32, TopicId)],
    ) {
        for partition in opened {
            drop(partition.take_log());
            let data_dir = partition.data_dir();
            data_dir.partition_removed();
            remove_uncommitted_partition_dir(
                &partition_dir(&data_dir.path, &partition.topic, partition.index),
                partition.topic_id,
            );
        }
        for (topic, index, topic_id) in unopened {
            // Not opened: whichever dir got as far as its directory holds it.
            for data_dir in self.data_dirs.iter().filter(|d| !d.is_offline()) {
                remove_uncommitted_partition_dir(
                    &partition_dir(&data_dir.path, topic, *index),
                    *topic_id,
                );
            }
        }
    }

    fn remove_deleted_partitions(&self, image: &MetadataImage) {
        let removed: Vec<Arc<Partition>> = {
            let mut partitions = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            let mut removed = Vec::new();
            let node = self.config.node_id;
            partitions.retain(|name, by_index| {
                let topic = image
                    .topic(name)
                    .filter(|t| by_index.values().next().is_none_or(|p| p.topic_id == t.id));
                // A partition moved off this broker goes as a deleted one does.
                by_index.retain(|index, partition| {
                    let keep = topic.is_some_and(|t| {
                        t.partitions
                            .get(index)
                            .is_some_and(|p| p.replicas.contains(&node))
                    });
                    if !keep {
                        removed.push(partition.clone());
                    }
                    keep
                });
                !by_index.is_empty()
            });
            removed
        };
        for partition in removed {
            drop(partition.take_log());
            // Fetches parked on it answer with the error of a partition that is gone, and
            // so do acks=all produces waiting for its high watermark (a producer would
            // otherwise wait out its request timeout before it sends to the new leader).
            partition.notify_appended();
            crate::replica_manager::fail_acks(
                self,
                &partition,
                strom_replication::ReplicationError::NotLeaderOrFollower,
            );
            let data_dir = partition.data_dir();
            data_dir.partition_removed();
            if data_dir.is_offline() {
                // Kafka leaves an offline dir's files alone; the start-up sweep removes it.
                continue;
            }
            let dir = partition_dir(&data_dir.path, &partition.topic, partition.index);
            retire_partition_dir(&dir, partition.topic_id, &self.deleter);
            info!(topic = %partition.topic, partition = partition.index, "partition removed from this broker");
        }
    }

    fn refresh_changed_settings(&self, previous: &MetadataImage, next: &MetadataImage) {
        let node = self.config.node_id;
        let dynamic = DynamicBrokerConfigs::from_image(next, node);
        // Dynamic broker configs are the topics' defaults: a change there touches every topic.
        let broker_changed = [
            ConfigResource::Broker(Some(node)),
            ConfigResource::Broker(None),
        ]
        .iter()
        .any(|r| previous.configs(r) != next.configs(r));
        let partitions = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        for (name, by_index) in partitions.iter() {
            let resource = ConfigResource::Topic(name.clone());
            if !broker_changed && previous.configs(&resource) == next.configs(&resource) {
                continue;
            }
            let settings = topic_settings::resolve(next, &dynamic.over(&self.config), name);
            for partition in by_index.values() {
                partition.update_settings(settings.clone());
            }
        }
    }

    /// Removes partition dirs that no topic in the image assigns here (left by a crash
    /// between a topic's deletion being committed and its files going). Only call it
    /// with an image caught up with the committed metadata log: any other would take
    /// live partitions for strays.
    pub(crate) fn remove_stray_partition_dirs(&self) {
        let _dirs = self
            .partition_dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let image = self.image();
        let prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let entries = self
            .data_dirs
            .iter()
            .filter(|d| !d.is_offline())
            .filter_map(|d| std::fs::read_dir(&d.path).ok())
            .flat_map(|entries| entries.flatten());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().to_string();
            // Only directories strom made (they carry partition.metadata) are ever removed.
            if !entry
                .path()
                .join(log_dirs::PARTITION_METADATA_FILE)
                .is_file()
                || name == METADATA_LOG_DIR
            {
                continue;
            }
            let Some((topic, index)) = name.rsplit_once('-') else {
                continue;
            };
            let Ok(index) = index.parse::<i32>() else {
                continue;
            };
            let assigned_here = image.topic(topic).is_some_and(|t| {
                t.partitions
                    .get(&index)
                    .is_some_and(|p| p.replicas.contains(&self.config.node_id))
            });
            if self.partition(topic, index).is_none()
                && !assigned_here
                && !prepared.contains_key(&(topic.to_owned(), index))
            {
                warn!(dir = %name, "removing a partition dir that no topic owns");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .and_then(|by_index| by_index.get(&index))
            .cloned()
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flat_map(|by_index| by_index.values().cloned())
            .collect()
    }

    pub fn refresh_partition_metrics(&self) {
        self.metrics.partition_log_size.clear();
        for partition in self.all_partitions() {
            if let Ok(size) = partition.with_log(|log| Ok(log.size_bytes())) {
                self.metrics
                    .partition_log_size
                    .get_or_create(&PartitionLabels {
                        topic: partition.topic.clone(),
                        partition: partition.index.to_string(),
                    })
                    .set(size as i64);
            }
        }
    }

    /// Writes every hosted partition's high watermark to the log dir's
    /// `replication-offset-checkpoint`, as Kafka does every
    /// `replica.high.watermark.checkpoint.interval.ms`. Blocking file I/O.
    pub fn checkpoint_high_watermarks(&self) {
        let partitions = self.all_partitions();
        // Each dir checkpoints its own partitions; an offline one is left alone, as Kafka does.
        for data_dir in self.data_dirs.iter().filter(|d| !d.is_offline()) {
            let mut entries: Vec<strom_log::HighWatermarkEntry> = partitions
                .iter()
                .filter(|p| Arc::ptr_eq(p.data_dir(), data_dir))
                .map(|p| strom_log::HighWatermarkEntry {
                    topic: p.topic.clone(),
                    partition: p.index,
                    offset: p.high_watermark(),
                })
                .collect();
            entries.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            if let Err(e) = strom_log::write_high_watermarks(&data_dir.path, &entries) {
                warn!(dir = %data_dir.path.display(), error = %e, "writing the high watermark checkpoint failed");
                data_dir.fail(&e);
            }
        }
    }

    /// The log dirs in `log.dirs` order, each with whether it is offline.
    pub fn data_dirs(&self) -> &[Arc<DataDir>] {
        &self.data_dirs
    }

    /// Closes every log, then marks the log dir clean, as Kafka's LogManager does: one
    /// filesystem sync makes every log's data durable, each log then checkpoints its
    /// recovery point, a second sync makes those durable, and only then is the log dir's
    /// marker written. A log that fails to close leaves the dir unmarked: the next start
    /// recovers every log, as after a crash.
    pub async fn shutdown(&self) {
        self.checkpoint_high_watermarks();
        let partitions = self.all_partitions();
        // `None` for a log that failed to close (logged); `Some(None)` when none was open.
        // An offline dir's logs are dropped unclosed: nothing more is written there.
        let closing = log_dirs::parallel_map(&partitions, LOG_IO_WORKERS, |partition| {
            let Some(log) = partition.take_log() else {
                return Some(None);
            };
            if partition.data_dir().is_offline() {
                return None;
            }
            match log.close_unsynced() {
                Ok(closing) => Some(Some(closing)),
                Err(e) => {
                    warn!(topic = %partition.topic, partition = partition.index, error = %e, "closing log failed");
                    partition.data_dir().fail(&e);
                    None
                }
            }
        });
        // Per dir: whether every log closed, and the logs to finish.
        let mut by_dir: Vec<(bool, Vec<(String, UnsyncedClose)>)> =
            self.log_dirs.iter().map(|_| (true, Vec::new())).collect();
        let dir_of = |data_dir: &Arc<DataDir>| {
            self.log_dirs
                .iter()
                .position(|d| Arc::ptr_eq(&d.dir, data_dir))
        };
        for (partition, closing) in partitions.iter().zip(closing) {
            let Some(at) = dir_of(partition.data_dir()) else {
                continue;
            };
            match closing {
                Some(Some(closing)) => by_dir[at]
                    .1
                    .push((format!("{}-{}", partition.topic, partition.index), closing)),
                Some(None) => {}
                None => by_dir[at].0 = false,
            }
        }
        // The metadata log fsyncs every entry before it counts; it closes with the logs
        // of its dir, or alone in its own metadata.log.dir.
        let mut all_clean = true;
        if let Some(quorum) = self.quorum.get() {
            let closed = quorum
                .shutdown()
                .await
                .map(|closing| (METADATA_LOG_DIR.to_string(), closing));
            let shared = self
                .log_dirs
                .iter()
                .position(|d| d.dir.path == self.config.metadata_log_dir);
            match (shared, closed, &self.metadata_dir) {
                (Some(at), Some(closing), _) => by_dir[at].1.push(closing),
                (Some(at), None, _) => by_dir[at].0 = false,
                (None, closing, Some(own)) => {
                    let clean = closing.is_some();
                    all_clean &= self.close_log_dir(own, clean, &Vec::from_iter(closing), false);
                }
                (None, _, None) => {}
            }
        }
        for (open, (clean, closing)) in self.log_dirs.iter().zip(by_dir) {
            let marked =
                self.close_log_dir(open, clean, &closing, open.dir.path == self.config.log_dir);
            all_clean &= marked;
        }
        if all_clean {
            info!("all logs closed cleanly");
        }
    }

    /// Finishes closing one log dir's logs and marks it clean if all of them closed and
    /// the dir is online; returns whether it was marked.
    fn close_log_dir(
        &self,
        open: &OpenLogDir,
        clean: bool,
        closing: &[(String, UnsyncedClose)],
        first: bool,
    ) -> bool {
        let log_dir = &open.dir.path;
        if open.dir.is_offline() {
            warn!(dir = %log_dir.display(), "the log dir is offline; it is not marked clean and the next start recovers its logs");
            return false;
        }
        let Some(handle) = &open.handle else {
            return false;
        };
        if let Err(e) = strom_log::sync_filesystem(handle) {
            warn!(dir = %log_dir.display(), error = %e, "syncing the log dir failed; every log is recovered at the next start");
            return false;
        }
        let finished = log_dirs::parallel_map(closing, LOG_IO_WORKERS, |(name, closing)| {
            closing
                .finish()
                .inspect_err(
                    |e| warn!(log = %name, error = %e, "checkpointing a closed log failed"),
                )
                .is_ok()
        });
        if !clean || finished.contains(&false) {
            warn!(dir = %log_dir.display(), "not every log closed; the log dir is not marked clean and the next start recovers every log");
            return false;
        }
        if first {
            if let Err(e) = self.lifecycle.write_clean_shutdown_epoch(log_dir) {
                warn!(dir = %log_dir.display(), error = %e, "writing the broker epoch failed; the next start counts as unclean");
            }
        }
        if let Err(e) = strom_log::write_log_dir_clean_shutdown(log_dir, handle) {
            warn!(dir = %log_dir.display(), error = %e, "writing the clean-shutdown marker failed; every log is recovered at the next start");
            return false;
        }
        true
    }
}

/// A metadata change that did not commit: this node does not lead the quorum (the
/// client retries with the controller), or the commit failed.
pub(crate) fn write_failure<E>(e: ProposeError) -> MetadataWriteError<E> {
    match e {
        ProposeError::NotLeader { leader } => MetadataWriteError::NotController(leader),
        e => MetadataWriteError::Failed(LogError::Io(std::io::Error::other(format!(
            "the metadata change was not committed: {e}"
        )))),
    }
}

/// KRaft stops the process on a metadata log I/O error: the log's state is unknown.
async fn stop_on_quorum_failure(quorum: Arc<MetadataQuorum>) {
    match quorum.fatal().await {
        QuorumError::Stopped => {}
        e => {
            tracing::error!(error = %e, "the metadata quorum failed; stopping the process");
            std::process::exit(1);
        }
    }
}

/// Session ids are not guessable, as in Kafka (which draws them at random).
fn session_id_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(now_ms());
    hasher.finish()
}

fn group_config(config: &BrokerConfig) -> strom_coordinator::GroupConfig {
    strom_coordinator::GroupConfig {
        min_session_timeout_ms: config.group_min_session_timeout_ms,
        max_session_timeout_ms: config.group_max_session_timeout_ms,
        initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
        max_size: config.group_max_size,
        offsets_retention_minutes: config.offsets_retention_minutes,
        offsets_retention_check_interval_ms: config.offsets_retention_check_interval_ms,
        offset_metadata_max_bytes: config.offset_metadata_max_bytes,
        consumer_session_timeout_ms: config.group_consumer_session_timeout_ms,
        consumer_heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
        consumer_max_size: config.group_consumer_max_size,
        ..strom_coordinator::GroupConfig::default()
    }
}
