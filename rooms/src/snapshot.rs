//! Durable facts of a room, to store in a database and rebuild the room after a restart.
//!
//! A [`RoomSnapshot`] holds what must survive a restart: settings, members with their revoked
//! flag and location, open sessions with their timers and posts (each with its audience), and the
//! two counters. Connections, tracks and what was last sent are live and are not in it: after
//! [`Room::restore`] nobody is connected, so, with `hold_when_no_mediator`, members who were in a
//! session are held in the waiting room until a mediator reconnects — exactly as if everybody had
//! disconnected.
//!
//! Posts of a caucus are dropped when the caucus ends (they can no longer be shown to anyone);
//! the edge archives posts from the [`crate::Event::Chat`] and [`crate::Event::FileShared`]
//! outputs if it must keep them longer.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::error::TextField;
use crate::ids::{
    CaseRef, ParticipantId, PostSeq, Redacted, RoomId, SessionId, Timestamp, TrackId,
};
use crate::member::{Location, Role, Side};
use crate::output::{ForwardingPlan, Post};
use crate::room::{MemberState, Room, SessionState, StoredPost};
use crate::settings::{RoomSettings, MAX_TRACKS_PER_MEMBER};

/// The durable facts of a room. Plain data: the edge maps it to and from its tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomSnapshot {
    /// The room's id.
    pub id: RoomId,
    /// The case it belongs to.
    pub case_ref: CaseRef,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its settings.
    pub settings: RoomSettings,
    /// Every member, sorted by id.
    pub members: Vec<MemberRecord>,
    /// Every open session (the plenary first), sorted by id.
    pub sessions: Vec<SessionRecord>,
    /// The id the next caucus will get.
    pub next_session: SessionId,
    /// The sequence number the next post will get.
    pub next_post: PostSeq,
}

/// A member's durable facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    /// The member.
    pub id: ParticipantId,
    /// Their role.
    pub role: Role,
    /// Their side.
    pub side: Option<Side>,
    /// Their display name.
    pub display_name: Redacted<String>,
    /// Whether their join link was revoked.
    pub invite_revoked: bool,
    /// Where they are.
    pub location: Location,
}

/// An open session's durable facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session.
    pub id: SessionId,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// Its timer, if set (caucus only).
    pub timer_ends_at: Option<Timestamp>,
    /// Its posts, oldest first.
    pub posts: Vec<PostRecord>,
}

/// A post and who was in its session when it was made (only they may read it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostRecord {
    /// The post.
    pub post: Post,
    /// Its readers, sorted by id.
    pub audience: Vec<ParticipantId>,
}

/// Why a snapshot (or a room) is not consistent. A snapshot made by [`Room::snapshot`] never is;
/// one rebuilt from a damaged database may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Inconsistency {
    /// Two members have the same id.
    #[error("member {0} appears twice")]
    DuplicateMember(ParticipantId),
    /// Two sessions have the same id.
    #[error("session {0} appears twice")]
    DuplicateSession(SessionId),
    /// The plenary is missing.
    #[error("the plenary is missing")]
    MissingPlenary,
    /// A session has an id not yet handed out, or the plenary has a timer.
    #[error("session {0} is not valid")]
    BadSession(SessionId),
    /// A member has an invalid display name, or is a mediator with a side.
    #[error("member {0} is not valid")]
    BadMember(ParticipantId),
    /// A member is somewhere they cannot be (unknown session, a mediator waiting, a revoked
    /// member in a session, a member in a session while the room is on hold, or held without it).
    #[error("member {0} is in an impossible place")]
    BadLocation(ParticipantId),
    /// A connection is impossible (revoked member, id used twice).
    #[error("the connection of member {0} is not valid")]
    BadConnection(ParticipantId),
    /// More members are connected than the capacity allows.
    #[error("more members are connected than the capacity allows")]
    OverCapacity,
    /// A track is published by somebody not connected, or a member publishes too many.
    #[error("track {0} is not valid")]
    BadTrack(TrackId),
    /// A post is out of order, in the wrong session, too long, or made or read by a non-member.
    #[error("post {} in session {session} is not valid", seq.get())]
    BadPost {
        /// The session holding it.
        session: SessionId,
        /// The post.
        seq: PostSeq,
    },
}

impl Room {
    /// The durable facts of the room.
    pub fn snapshot(&self) -> RoomSnapshot {
        RoomSnapshot {
            id: self.id,
            case_ref: self.case_ref.clone(),
            created_at: self.created_at,
            settings: self.settings,
            members: self
                .members
                .values()
                .map(|member| MemberRecord {
                    id: member.id,
                    role: member.role,
                    side: member.side,
                    display_name: member.display_name.clone(),
                    invite_revoked: member.invite_revoked,
                    location: member.location,
                })
                .collect(),
            sessions: self
                .sessions
                .iter()
                .map(|(&id, session)| SessionRecord {
                    id,
                    opened_at: session.opened_at,
                    timer_ends_at: session.timer,
                    posts: session
                        .posts
                        .iter()
                        .map(|stored| PostRecord {
                            post: stored.post.clone(),
                            audience: stored.audience.iter().copied().collect(),
                        })
                        .collect(),
                })
                .collect(),
            next_session: self.next_session,
            next_post: self.next_post,
        }
    }

    /// Rebuilds a room from its durable facts, with nobody connected.
    ///
    /// Members who were in a session are held in the waiting room if the room holds without a
    /// mediator (see the module docs). Like [`Room::new`], the first output is the
    /// [`crate::Output::Timeout`] of the next deadline.
    pub fn restore(snapshot: RoomSnapshot) -> Result<Room, Inconsistency> {
        let mut members = BTreeMap::new();
        for record in snapshot.members {
            let state = MemberState {
                id: record.id,
                role: record.role,
                side: record.side,
                display_name: record.display_name,
                invite_revoked: record.invite_revoked,
                location: record.location,
                connection: None,
            };
            if members.insert(record.id, state).is_some() {
                return Err(Inconsistency::DuplicateMember(record.id));
            }
        }
        let mut sessions = BTreeMap::new();
        for record in snapshot.sessions {
            let state = SessionState {
                opened_at: record.opened_at,
                timer: record.timer_ends_at,
                posts: record
                    .posts
                    .into_iter()
                    .map(|post| {
                        Arc::new(StoredPost {
                            post: post.post,
                            audience: post.audience.into_iter().collect(),
                        })
                    })
                    .collect(),
            };
            if sessions.insert(record.id, state).is_some() {
                return Err(Inconsistency::DuplicateSession(record.id));
            }
        }
        let mut room = Room {
            id: snapshot.id,
            case_ref: snapshot.case_ref,
            created_at: snapshot.created_at,
            settings: snapshot.settings,
            members,
            sessions,
            next_session: snapshot.next_session,
            next_post: snapshot.next_post,
            tracks: BTreeMap::new(),
            last_plan: ForwardingPlan::default(),
            last_deadline: None,
            outputs: VecDeque::new(),
        };
        room.enforce_supervision();
        room.check_structure()?;
        room.emit_derived();
        Ok(room)
    }

    /// Checks the structural invariants of the room. They hold after every command; `restore`
    /// uses this to refuse a damaged snapshot, and the tests call it after every step.
    ///
    /// - **Invariant**: the plenary is open; every other open session is a caucus with an id
    ///   already handed out and the plenary has no timer.
    /// - **Invariant**: every member is in exactly one place (one `Location` field) and that place
    ///   exists; mediators are always in a session; a revoked member is not connected and, if not
    ///   a mediator, waits as sent out.
    /// - **Invariant**: with `hold_when_no_mediator` and no mediator connected, nobody else is in
    ///   a session; members are held only in that situation.
    /// - **Invariant**: connection ids are unique; at most `capacity` members are connected, at
    ///   most `capacity - 1` of them not mediators.
    /// - **Invariant**: every track belongs to a connected member, at most
    ///   [`MAX_TRACKS_PER_MEMBER`] each.
    /// - **Invariant**: posts are valid, kept in the session they were made in, numbered in
    ///   increasing order below `next_post`, and read only by members.
    pub(crate) fn check_structure(&self) -> Result<(), Inconsistency> {
        self.check_sessions()?;
        self.check_members()?;
        self.check_connections()?;
        self.check_tracks()?;
        self.check_posts()
    }

    fn check_sessions(&self) -> Result<(), Inconsistency> {
        let plenary = self
            .sessions
            .get(&SessionId::PLENARY)
            .ok_or(Inconsistency::MissingPlenary)?;
        if plenary.timer.is_some() {
            return Err(Inconsistency::BadSession(SessionId::PLENARY));
        }
        if let Some(&bad) = self.sessions.keys().find(|&&id| id >= self.next_session) {
            return Err(Inconsistency::BadSession(bad));
        }
        Ok(())
    }

    fn check_members(&self) -> Result<(), Inconsistency> {
        let on_hold = self.settings.hold_when_no_mediator && !self.mediator_connected();
        for member in self.members.values() {
            let name_ok = TextField::DisplayName.check(&member.display_name).is_ok();
            if !name_ok || (member.role.is_mediator() && member.side.is_some()) {
                return Err(Inconsistency::BadMember(member.id));
            }
            let session_open = |session| self.sessions.contains_key(&session);
            let location_ok = match member.location {
                Location::InSession(session) => {
                    session_open(session)
                        && (member.role.is_mediator() || (!on_hold && !member.invite_revoked))
                }
                Location::HeldForMediator { previous } => {
                    session_open(previous)
                        && on_hold
                        && !member.role.is_mediator()
                        && !member.invite_revoked
                }
                Location::WaitingToEnter => !member.role.is_mediator() && !member.invite_revoked,
                Location::SentToWaitingRoom => !member.role.is_mediator(),
            };
            if !location_ok {
                return Err(Inconsistency::BadLocation(member.id));
            }
        }
        Ok(())
    }

    fn check_connections(&self) -> Result<(), Inconsistency> {
        let mut seen = BTreeSet::new();
        let mut connected = 0_usize;
        let mut connected_others = 0_usize;
        for member in self.members.values() {
            let Some(connection) = &member.connection else {
                continue;
            };
            if member.invite_revoked || !seen.insert(connection.id) {
                return Err(Inconsistency::BadConnection(member.id));
            }
            connected += 1;
            if !member.role.is_mediator() {
                connected_others += 1;
            }
        }
        let seats = usize::from(self.settings.capacity.get());
        if connected > seats || connected_others >= seats {
            return Err(Inconsistency::OverCapacity);
        }
        Ok(())
    }

    fn check_tracks(&self) -> Result<(), Inconsistency> {
        let mut per_owner: BTreeMap<ParticipantId, usize> = BTreeMap::new();
        for (&track, published) in &self.tracks {
            let owner_connected = self
                .members
                .get(&published.owner)
                .is_some_and(|owner| owner.connection.is_some());
            let count = per_owner.entry(published.owner).or_default();
            *count += 1;
            if !owner_connected || *count > MAX_TRACKS_PER_MEMBER {
                return Err(Inconsistency::BadTrack(track));
            }
        }
        Ok(())
    }

    fn check_posts(&self) -> Result<(), Inconsistency> {
        let mut seen = BTreeSet::new();
        for (&session, state) in &self.sessions {
            let mut previous: Option<PostSeq> = None;
            for stored in &state.posts {
                let seq = stored.post.seq();
                let text_ok = match &stored.post {
                    Post::Chat(message) => TextField::Chat.check(&message.text).is_ok(),
                    Post::File(file) => TextField::FileName.check(&file.name).is_ok(),
                };
                let ok = text_ok
                    && stored.post.session() == session
                    && seq < self.next_post
                    && previous.is_none_or(|previous| previous < seq)
                    && seen.insert(seq)
                    && self.members.contains_key(&stored.post.sender())
                    && stored
                        .audience
                        .iter()
                        .all(|reader| self.members.contains_key(reader));
                if !ok {
                    return Err(Inconsistency::BadPost { session, seq });
                }
                previous = Some(seq);
            }
        }
        Ok(())
    }
}
