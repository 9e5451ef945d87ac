//! `meta.properties` in the log dir: the cluster id and node id this data
//! belongs to, in Kafka's format, so a data dir is never mixed up.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum MetaPropertiesError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} belongs to cluster {found}, but this node is configured for cluster {expected}"
    )]
    ClusterIdMismatch {
        path: String,
        found: String,
        expected: String,
    },
    #[error("{path} belongs to node.id {found}, but this broker is node.id {expected}")]
    NodeIdMismatch {
        path: String,
        found: String,
        expected: i32,
    },
}

/// Kafka's cluster ids are a random UUID in unpadded URL-safe base64.
pub fn new_cluster_id() -> String {
    cluster_id_of(&uuid::Uuid::new_v4())
}

/// A UUID written as Kafka writes cluster ids.
pub fn cluster_id_of(id: &uuid::Uuid) -> String {
    base64_url(id.as_bytes())
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 2);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize] as char);
        }
    }
    out
}

/// Kafka's directory ids: a UUID in the same base64 as cluster ids.
pub fn parse_directory_id(text: &str) -> Option<uuid::Uuid> {
    let text = text.trim();
    if text.len() != 22 {
        return None;
    }
    let mut bits: u128 = 0;
    for (i, c) in text.bytes().enumerate() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u128;
        // 22 characters carry 132 bits: the last one holds 2 data bits and 4 zero bits.
        if i == 21 {
            if value & 0xf != 0 {
                return None;
            }
            bits = bits << 2 | value >> 4;
        } else {
            bits = bits << 6 | value;
        }
    }
    Some(uuid::Uuid::from_u128(bits))
}

/// What `meta.properties` says of one log dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    /// This dir's `directory.id` (KIP-858), written on first start.
    pub directory_id: uuid::Uuid,
}

/// Reads `meta.properties`, creating the file on first start with `configured` (or a new
/// random cluster id) and a new directory id. A dir of another cluster or node is refused;
/// one written without a directory id gets one.
pub fn load_or_create(
    log_dir: &Path,
    node_id: i32,
    configured: Option<&str>,
) -> Result<MetaProperties, MetaPropertiesError> {
    let path = log_dir.join("meta.properties");
    let io = |source| MetaPropertiesError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let props: BTreeMap<&str, &str> = text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            if let Some(found) = props.get("node.id") {
                if *found != node_id.to_string() {
                    return Err(MetaPropertiesError::NodeIdMismatch {
                        path: path.display().to_string(),
                        found: found.to_string(),
                        expected: node_id,
                    });
                }
            }
            if let Some(cluster_id) = props.get("cluster.id") {
                if let Some(expected) = configured.filter(|c| c != cluster_id) {
                    return Err(MetaPropertiesError::ClusterIdMismatch {
                        path: path.display().to_string(),
                        found: cluster_id.to_string(),
                        expected: expected.to_string(),
                    });
                }
                if let Some(directory_id) = props
                    .get("directory.id")
                    .and_then(|d| parse_directory_id(d))
                {
                    return Ok(MetaProperties {
                        cluster_id: cluster_id.to_string(),
                        directory_id,
                    });
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let cluster_id = configured.map_or_else(new_cluster_id, str::to_string);
    let directory_id = new_directory_id();
    let text = format!(
        "#Written by strom\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\ndirectory.id={}\n",
        base64_url(directory_id.as_bytes())
    );
    let tmp = log_dir.join("meta.properties.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(MetaProperties {
        cluster_id,
        directory_id,
    })
}

/// A random directory id that is none of Kafka's reserved ones (the first 100 values).
fn new_directory_id() -> uuid::Uuid {
    loop {
        let id = uuid::Uuid::new_v4();
        if id.as_u128() >= 100 {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_url_matches_known_values() {
        assert_eq!(base64_url(b"f"), "Zg");
        assert_eq!(base64_url(b"fo"), "Zm8");
        assert_eq!(base64_url(b"foo"), "Zm9v");
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8");
        assert_eq!(new_cluster_id().len(), 22);
    }

    #[test]
    fn cluster_id_is_created_once_and_node_id_checked() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), 1, None).unwrap();
        assert_eq!(load_or_create(dir.path(), 1, None).unwrap(), first);
        assert_eq!(
            load_or_create(dir.path(), 1, Some(&first.cluster_id)).unwrap(),
            first
        );
        let text = std::fs::read_to_string(dir.path().join("meta.properties")).unwrap();
        assert!(text.contains(&format!(
            "directory.id={}\n",
            base64_url(first.directory_id.as_bytes())
        )));
        assert!(matches!(
            load_or_create(dir.path(), 2, None),
            Err(MetaPropertiesError::NodeIdMismatch { .. })
        ));
        assert!(matches!(
            load_or_create(dir.path(), 1, Some("another")),
            Err(MetaPropertiesError::ClusterIdMismatch { .. })
        ));
        let configured = tempfile::tempdir().unwrap();
        assert_eq!(
            load_or_create(configured.path(), 1, Some("abc"))
                .unwrap()
                .cluster_id,
            "abc"
        );
        let other = load_or_create(configured.path(), 1, None).unwrap();
        assert_ne!(other.directory_id, first.directory_id);
    }

    #[test]
    fn directory_ids_read_back_as_written() {
        for _ in 0..100 {
            let id = uuid::Uuid::new_v4();
            assert_eq!(parse_directory_id(&base64_url(id.as_bytes())), Some(id));
        }
        assert_eq!(
            parse_directory_id("AAAAAAAAAAAAAAAAAAAAAQ"),
            Some(uuid::Uuid::from_u128(1))
        );
        assert_eq!(parse_directory_id("AAAAAAAAAAAAAAAAAAAAAB"), None);
        assert_eq!(parse_directory_id("short"), None);
        assert_eq!(parse_directory_id("AAAAAAAAAAAAAAAAAAAA=Q"), None);
    }
}
