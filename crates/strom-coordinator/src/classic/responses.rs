//! Response builders, with the per-version field rules applied.

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use strom_types::ErrorCode;

pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn opt_str(s: Option<&str>) -> Option<StrBytes> {
    s.map(str_bytes)
}

/// A JoinGroup error carrying `member_id`; protocol fields stay at their defaults.
pub(crate) fn join_error(version: i16, member_id: &str, error: ErrorCode) -> JoinGroupResponse {
    finish_join(
        version,
        JoinGroupResponse::default()
            .with_error_code(error.code())
            .with_member_id(str_bytes(member_id)),
    )
}

/// A successful JoinGroup (or an error that still names the generation).
pub(crate) struct JoinOk<'a> {
    pub member_id: &'a str,
    pub generation_id: i32,
    pub protocol_type: Option<&'a str>,
    pub protocol_name: Option<&'a str>,
    pub leader: Option<&'a str>,
    pub members: Vec<JoinGroupResponseMember>,
    pub skip_assignment: bool,
}

pub(crate) fn join_ok(version: i16, ok: JoinOk<'_>) -> JoinGroupResponse {
    finish_join(
        version,
        JoinGroupResponse::default()
            .with_member_id(str_bytes(ok.member_id))
            .with_generation_id(ok.generation_id)
            .with_protocol_type(opt_str(ok.protocol_type))
            .with_protocol_name(opt_str(ok.protocol_name))
            .with_leader(str_bytes(ok.leader.unwrap_or("")))
            .with_members(ok.members)
            .with_skip_assignment(ok.skip_assignment),
    )
}

/// Before v7 the protocol name is not nullable; before v9 there is no skip flag.
fn finish_join(version: i16, mut response: JoinGroupResponse) -> JoinGroupResponse {
    if version < 7 && response.protocol_name.is_none() {
        response.protocol_name = Some(StrBytes::default());
    }
    if version < 9 {
        response.skip_assignment = false;
    }
    response
}

/// The wire code of an outcome: 0 for success.
pub(crate) fn code_of(result: Result<(), ErrorCode>) -> i16 {
    result.err().map_or(0, |e| e.code())
}

pub(crate) fn sync_error(error: ErrorCode) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(error.code())
}

pub(crate) fn sync_ok(
    protocol_type: Option<&str>,
    protocol_name: Option<&str>,
    assignment: Bytes,
) -> SyncGroupResponse {
    SyncGroupResponse::default()
        .with_protocol_type(opt_str(protocol_type))
        .with_protocol_name(opt_str(protocol_name))
        .with_assignment(assignment)
}
