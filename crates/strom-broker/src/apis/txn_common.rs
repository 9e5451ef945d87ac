//! What the transaction APIs share: turning the transaction coordinator's reply into
//! the handler's response type.

/// Unwraps the reply of the expected kind; any other kind means the coordinator
/// answered a different request, which is a bug worth a log line.
macro_rules! expect_txn_reply {
    ($result:expr, $variant:ident, $on_error:expr) => {
        match $result {
            Ok(strom_transactions::TxnReply::$variant(response)) => response,
            Ok(other) => {
                tracing::error!(reply = ?other, "transaction coordinator answered with the wrong reply kind");
                $on_error(strom_types::ErrorCode::UnknownServerError)
            }
            Err(code) => $on_error(code),
        }
    };
}
pub(crate) use expect_txn_reply;

/// The partitions of a request's topics, as the coordinator takes them.
pub fn topic_partitions<'a>(
    topics: impl IntoIterator<Item = (&'a str, &'a [i32])>,
) -> Vec<(String, i32)> {
    topics
        .into_iter()
        .flat_map(|(name, partitions)| partitions.iter().map(move |p| (name.to_string(), *p)))
        .collect()
}
