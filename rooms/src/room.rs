//! The room state machine.
//!
//! [`Room::handle`] runs every command in three steps:
//!
//! 1. **validate** (`&self`): check the command against the current state and turn it into a
//!    [`Change`], or return a [`RoomError`]. Nothing is mutated, nothing is emitted.
//! 2. **apply** (`&mut self`): carry out the change. It cannot fail (it returns no `Result`), so a
//!    command is atomic by construction: it either fails in step 1 or completes.
//! 3. **emit**: enforce supervision (hold or release members), then queue the outputs: the direct
//!    ones (closed connections, chat…), then the presence, forwarding and timer outputs derived by
//!    comparing the new state with what was last sent. Every output passes
//!    [`Room::check_confidentiality`] before it is queued.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::command::Command;
use crate::error::{RoomError, TextField};
use crate::ids::{
    CaseRef, ConnectionId, FileRef, ParticipantId, PostSeq, Redacted, RoomId, SessionId, Timestamp,
    TrackId,
};
use crate::member::{Location, Place, Role, Side};
use crate::output::{
    ChatMessage, CloseReason, Endpoint, Event, ForwardingPlan, Output, Post, SharedFile,
    TrackForwarding, TrackKind,
};
use crate::settings::{RoomSettings, MAX_POSTS_PER_SESSION, MAX_TRACKS_PER_MEMBER};
use crate::view::{MemberView, Presence};

/// One mediation room: a pure state machine (no I/O, no clock, no randomness).
///
/// Feed it with [`Room::handle`] and [`Room::handle_timeout`], then drain
/// [`Room::poll_output`] until it returns `None` before feeding it again: each output is
/// correct for the state right after the input that produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    pub(crate) id: RoomId,
    pub(crate) case_ref: CaseRef,
    pub(crate) created_at: Timestamp,
    pub(crate) settings: RoomSettings,
    /// Every member, by id. Durable except for `connection`.
    pub(crate) members: BTreeMap<ParticipantId, MemberState>,
    /// The open sessions: the plenary and the open caucuses. Durable.
    pub(crate) sessions: BTreeMap<SessionId, SessionState>,
    /// The id the next caucus gets. Durable.
    pub(crate) next_session: SessionId,
    /// The sequence number the next post gets. Durable.
    pub(crate) next_post: PostSeq,
    /// Published tracks (live: they belong to connections).
    pub(crate) tracks: BTreeMap<TrackId, PublishedTrack>,
    /// The forwarding plan last emitted (live).
    pub(crate) last_plan: ForwardingPlan,
    /// The wake-up time last emitted (live).
    pub(crate) last_deadline: Option<Timestamp>,
    /// Outputs not yet polled (live).
    pub(crate) outputs: VecDeque<Output>,
}

/// A member as the room keeps them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MemberState {
    pub(crate) id: ParticipantId,
    pub(crate) role: Role,
    pub(crate) side: Option<Side>,
    pub(crate) display_name: Redacted<String>,
    pub(crate) invite_revoked: bool,
    pub(crate) location: Location,
    /// The live connection, if any (not durable).
    pub(crate) connection: Option<LiveConnection>,
}

/// A member's live connection and the presence last sent on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LiveConnection {
    pub(crate) id: ConnectionId,
    /// `None` until the first [`Event::View`] went out on this connection.
    pub(crate) sent: Option<Presence>,
}

/// An open session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionState {
    pub(crate) opened_at: Timestamp,
    /// Caucus timer; always `None` for the plenary.
    pub(crate) timer: Option<Timestamp>,
    /// The session's posts, oldest first. Shared, not copied, by a clone of the room (the room
    /// task keeps one to roll back to): a post never changes once made.
    pub(crate) posts: Vec<Arc<StoredPost>>,
}

/// A post with the members who were in its session when it was made: only they may read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredPost {
    pub(crate) post: Post,
    pub(crate) audience: BTreeSet<ParticipantId>,
}

/// A track published on its owner's current connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PublishedTrack {
    pub(crate) owner: ParticipantId,
    pub(crate) kind: TrackKind,
}

/// A validated command: everything `apply` needs, already checked.
enum Change {
    Nothing,
    AddMember(MemberState),
    RevokeInvite(ParticipantId),
    Connect {
        member: ParticipantId,
        connection: ConnectionId,
    },
    Disconnect(ParticipantId),
    Relocate {
        member: ParticipantId,
        to: Location,
    },
    Remove {
        member: ParticipantId,
        revoke_invite: bool,
    },
    StartCaucus(BTreeSet<ParticipantId>),
    EndCaucus(SessionId),
    BackToPlenary,
    EndMeeting,
    SetTimer {
        session: SessionId,
        ends_at: Option<Timestamp>,
    },
    Broadcast(Redacted<String>),
    Post {
        by: ParticipantId,
        session: SessionId,
        content: PostContent,
    },
    Publish {
        by: ParticipantId,
        track: TrackId,
        kind: TrackKind,
    },
    Unpublish(TrackId),
}

enum PostContent {
    Chat(Redacted<String>),
    File {
        file: FileRef,
        name: Redacted<String>,
    },
}

impl SessionState {
    pub(crate) fn open(opened_at: Timestamp) -> Self {
        SessionState {
            opened_at,
            timer: None,
            posts: Vec::new(),
        }
    }
}

impl MemberState {
    pub(crate) fn connection_id(&self) -> Option<ConnectionId> {
        self.connection.as_ref().map(|connection| connection.id)
    }
}

impl Room {
    /// A new room for a case, with no members yet. Its first output is the [`Output::Timeout`]
    /// of its expiry.
    pub fn new(
        id: RoomId,
        case_ref: CaseRef,
        created_at: Timestamp,
        settings: RoomSettings,
    ) -> Room {
        let mut sessions = BTreeMap::new();
        sessions.insert(SessionId::PLENARY, SessionState::open(created_at));
        let mut room = Room {
            id,
            case_ref,
            created_at,
            settings,
            members: BTreeMap::new(),
            sessions,
            next_session: SessionId::PLENARY.next(),
            next_post: PostSeq::FIRST,
            tracks: BTreeMap::new(),
            last_plan: ForwardingPlan::default(),
            last_deadline: None,
            outputs: VecDeque::new(),
        };
        room.emit_derived();
        room
    }

    /// The room's id.
    pub fn id(&self) -> RoomId {
        self.id
    }

    /// The case the room belongs to.
    pub fn case_ref(&self) -> &CaseRef {
        &self.case_ref
    }

    /// When the room was created (its window opens).
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// The room's settings.
    pub fn settings(&self) -> &RoomSettings {
        &self.settings
    }

    /// When the room's window closes: creation plus lifetime.
    pub fn expires_at(&self) -> Timestamp {
        self.created_at.saturating_add(self.settings.lifetime)
    }

    /// Whether the room's lifetime is over at `now` (at the expiry instant it already is).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at()
    }

    /// Where a member is, or `None` for an unknown member.
    pub fn location_of(&self, member: ParticipantId) -> Option<Location> {
        self.members.get(&member).map(|state| state.location)
    }

    /// A member's current connection, if connected.
    pub fn connection_of(&self, member: ParticipantId) -> Option<ConnectionId> {
        self.members
            .get(&member)
            .and_then(MemberState::connection_id)
    }

    /// The open sessions: the plenary first, then the open caucuses.
    pub fn open_sessions(&self) -> Vec<SessionId> {
        self.sessions.keys().copied().collect()
    }

    /// The forwarding plan for the current state (the last [`Output::Forwarding`] equals it once
    /// the outputs are drained). Useful to resynchronise an SFU.
    pub fn forwarding_plan(&self) -> ForwardingPlan {
        let tracks = self
            .tracks
            .iter()
            .filter_map(|(&track, published)| {
                let owner = self.members.get(&published.owner)?;
                let publisher = Endpoint {
                    member: owner.id,
                    connection: owner.connection_id()?,
                };
                let receivers = match owner.location {
                    Location::InSession(session) => self
                        .members
                        .values()
                        .filter(|other| {
                            other.id != owner.id && other.location == Location::InSession(session)
                        })
                        .filter_map(|other| {
                            Some(Endpoint {
                                member: other.id,
                                connection: other.connection_id()?,
                            })
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                Some(TrackForwarding {
                    track,
                    kind: published.kind,
                    publisher,
                    receivers,
                })
            })
            .collect();
        ForwardingPlan::from_sorted(tracks)
    }

    /// Runs one command at `now`.
    ///
    /// On `Ok` the state changed (or the command was a documented no-op) and the outputs are
    /// queued. On `Err` nothing changed and nothing was queued.
    pub fn handle(&mut self, now: Timestamp, command: Command) -> Result<(), RoomError> {
        self.check_window(now)?;
        let change = self.validate(now, command)?;
        let direct = self.apply(now, change);
        self.enforce_supervision();
        for output in direct {
            self.emit(output);
        }
        self.emit_derived();
        Ok(())
    }

    /// Lets time pass: fires due caucus timers and, at the end of the room's lifetime, closes
    /// every connection. Timers only notify; nobody is moved.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if now < self.created_at {
            return;
        }
        let mut direct = Vec::new();
        if self.is_expired(now) {
            // Closed first, so that nobody is told anything else on a connection being closed.
            let connected: Vec<ParticipantId> = self
                .members
                .values()
                .filter(|member| member.connection.is_some())
                .map(|member| member.id)
                .collect();
            for member in connected {
                if let Some(connection) = self.drop_connection(member) {
                    direct.push(Output::CloseConnection {
                        member,
                        connection,
                        reason: CloseReason::RoomExpired,
                    });
                }
            }
        }
        let due: Vec<(SessionId, Timestamp)> = self
            .sessions
            .iter()
            .filter_map(|(&session, state)| Some((session, state.timer.filter(|&t| t <= now)?)))
            .collect();
        for (session, ends_at) in due {
            if let Some(state) = self.sessions.get_mut(&session) {
                state.timer = None;
            }
            for member in self.members.values() {
                let told =
                    member.role.is_mediator() || member.location == Location::InSession(session);
                if let (true, Some(connection)) = (told, member.connection_id()) {
                    direct.push(Output::Notify {
                        to: member.id,
                        connection,
                        event: Event::CaucusTimeUp { session, ends_at },
                    });
                }
            }
        }
        self.enforce_supervision();
        for output in direct {
            self.emit(output);
        }
        self.emit_derived();
    }

    /// The next output, oldest first; `None` when all were drained.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn check_window(&self, now: Timestamp) -> Result<(), RoomError> {
        if now < self.created_at {
            return Err(RoomError::NotYetOpen {
                opens_at: self.created_at,
            });
        }
        if self.is_expired(now) {
            return Err(RoomError::Expired {
                expired_at: self.expires_at(),
            });
        }
        Ok(())
    }

    // ---------------------------------------------------------------- validate (no mutation)

    fn validate(&self, now: Timestamp, command: Command) -> Result<Change, RoomError> {
        match command {
            Command::AddMember {
                member,
                role,
                side,
                display_name,
            } => {
                if self.members.contains_key(&member) {
                    return Err(RoomError::MemberExists(member));
                }
                if role.is_mediator() && side.is_some() {
                    return Err(RoomError::MediatorWithSide);
                }
                TextField::DisplayName.check(&display_name)?;
                Ok(Change::AddMember(MemberState {
                    id: member,
                    role,
                    side,
                    display_name,
                    invite_revoked: false,
                    location: if role.is_mediator() {
                        Location::InSession(SessionId::PLENARY)
                    } else {
                        Location::WaitingToEnter
                    },
                    connection: None,
                }))
            }
            Command::RevokeInvite { member } => {
                self.member(member)?;
                Ok(Change::RevokeInvite(member))
            }
            Command::Connect { member, connection } => {
                let state = self.member(member)?;
                if state.invite_revoked {
                    return Err(RoomError::InviteRevoked(member));
                }
                if self
                    .members
                    .values()
                    .any(|other| other.connection_id() == Some(connection))
                {
                    return Err(RoomError::ConnectionInUse(connection));
                }
                if state.connection.is_none() {
                    self.check_seat_for(state.role)?;
                }
                Ok(Change::Connect { member, connection })
            }
            Command::Disconnect { member, connection } => {
                let state = self.member(member)?;
                Ok(if state.connection_id() == Some(connection) {
                    Change::Disconnect(member)
                } else {
                    Change::Nothing
                })
            }
            Command::Admit { by, member } => {
                self.mediator(by)?;
                let target = self.non_mediator_target(member)?;
                if target.invite_revoked {
                    return Err(RoomError::InviteRevoked(member));
                }
                if target.location.place() != Place::WaitingRoom {
                    return Err(RoomError::NotWaiting(member));
                }
                Ok(Change::Relocate {
                    member,
                    to: Location::InSession(SessionId::PLENARY),
                })
            }
            Command::SendToWaitingRoom { by, member } => {
                self.mediator(by)?;
                let target = self.non_mediator_target(member)?;
                if target.location.place() == Place::WaitingRoom {
                    return Err(RoomError::AlreadyWaiting(member));
                }
                Ok(Change::Relocate {
                    member,
                    to: Location::SentToWaitingRoom,
                })
            }
            Command::Remove {
                by,
                member,
                revoke_invite,
            } => {
                self.mediator(by)?;
                self.non_mediator_target(member)?;
                Ok(Change::Remove {
                    member,
                    revoke_invite,
                })
            }
            Command::StartCaucus { by, members } => {
                self.mediator(by)?;
                let mut chosen = BTreeSet::new();
                for member in members {
                    self.movable_target(member)?;
                    chosen.insert(member);
                }
                chosen.remove(&by);
                if chosen.is_empty() {
                    return Err(RoomError::EmptyCaucus);
                }
                chosen.insert(by);
                Ok(Change::StartCaucus(chosen))
            }
            Command::JoinSession { by, session } => {
                let mediator = self.mediator(by)?;
                self.relocation_into(mediator, session)
            }
            Command::MoveToSession {
                by,
                member,
                session,
            } => {
                self.mediator(by)?;
                let target = self.movable_target(member)?;
                self.relocation_into(target, session)
            }
            Command::EndCaucus { by, session } => {
                self.mediator(by)?;
                self.open_caucus(session)?;
                Ok(Change::EndCaucus(session))
            }
            Command::BackToPlenary { by } => {
                self.mediator(by)?;
                if self.sessions.keys().all(|session| session.is_plenary()) {
                    return Err(RoomError::NoCaucusOpen);
                }
                Ok(Change::BackToPlenary)
            }
            Command::EndMeeting { by } => {
                self.mediator(by)?;
                Ok(Change::EndMeeting)
            }
            Command::SetCaucusTimer {
                by,
                session,
                ends_at,
            } => {
                self.mediator(by)?;
                self.open_caucus(session)?;
                if let Some(deadline) = ends_at.filter(|&deadline| deadline <= now) {
                    return Err(RoomError::DeadlineNotInFuture { deadline });
                }
                Ok(Change::SetTimer { session, ends_at })
            }
            Command::Broadcast { by, text } => {
                self.mediator(by)?;
                TextField::Broadcast.check(&text)?;
                Ok(Change::Broadcast(text))
            }
            Command::Chat { by, text } => {
                let session = self.session_with_room_for_a_post(by)?;
                TextField::Chat.check(&text)?;
                Ok(Change::Post {
                    by,
                    session,
                    content: PostContent::Chat(text),
                })
            }
            Command::ShareFile { by, file, name } => {
                let session = self.session_with_room_for_a_post(by)?;
                TextField::FileName.check(&name)?;
                Ok(Change::Post {
                    by,
                    session,
                    content: PostContent::File { file, name },
                })
            }
            Command::PublishTrack { by, track, kind } => {
                self.connected(by)?;
                if self.tracks.contains_key(&track) {
                    return Err(RoomError::TrackInUse(track));
                }
                let published = self.tracks.values().filter(|t| t.owner == by).count();
                if published >= MAX_TRACKS_PER_MEMBER {
                    return Err(RoomError::TooManyTracks {
                        max: MAX_TRACKS_PER_MEMBER,
                    });
                }
                Ok(Change::Publish { by, track, kind })
            }
            Command::UnpublishTrack { by, track } => {
                self.connected(by)?;
                match self.tracks.get(&track) {
                    Some(published) if published.owner == by => Ok(Change::Unpublish(track)),
                    _ => Err(RoomError::UnknownTrack(track)),
                }
            }
        }
    }

    fn member(&self, member: ParticipantId) -> Result<&MemberState, RoomError> {
        self.members
            .get(&member)
            .ok_or(RoomError::UnknownMember(member))
    }

    fn connected(&self, member: ParticipantId) -> Result<&MemberState, RoomError> {
        let state = self.member(member)?;
        if state.connection.is_none() {
            return Err(RoomError::NotConnected(member));
        }
        Ok(state)
    }

    fn mediator(&self, by: ParticipantId) -> Result<&MemberState, RoomError> {
        let state = self.connected(by)?;
        if !state.role.is_mediator() {
            return Err(RoomError::NotAllowed { by });
        }
        Ok(state)
    }

    /// A member a mediator may admit, send out or remove: anybody but a mediator.
    fn non_mediator_target(&self, member: ParticipantId) -> Result<&MemberState, RoomError> {
        let state = self.member(member)?;
        if state.role.is_mediator() {
            return Err(RoomError::TargetIsMediator(member));
        }
        Ok(state)
    }

    /// A member a mediator may move into a session: anybody whose link is still valid.
    fn movable_target(&self, member: ParticipantId) -> Result<&MemberState, RoomError> {
        let state = self.member(member)?;
        if state.invite_revoked {
            return Err(RoomError::InviteRevoked(member));
        }
        Ok(state)
    }

    fn relocation_into(
        &self,
        member: &MemberState,
        session: SessionId,
    ) -> Result<Change, RoomError> {
        if !self.sessions.contains_key(&session) {
            return Err(RoomError::UnknownSession(session));
        }
        if member.location == Location::InSession(session) {
            return Err(RoomError::AlreadyThere {
                member: member.id,
                session,
            });
        }
        Ok(Change::Relocate {
            member: member.id,
            to: Location::InSession(session),
        })
    }

    fn open_caucus(&self, session: SessionId) -> Result<(), RoomError> {
        if !self.sessions.contains_key(&session) {
            return Err(RoomError::UnknownSession(session));
        }
        if session.is_plenary() {
            return Err(RoomError::NotACaucus(session));
        }
        Ok(())
    }

    /// The session a connected member posts into; the waiting room has none.
    fn poster_session(&self, by: ParticipantId) -> Result<SessionId, RoomError> {
        match self.connected(by)?.location {
            Location::InSession(session) => Ok(session),
            _ => Err(RoomError::NotInSession(by)),
        }
    }

    /// The session a connected member posts into, if it may take one more post.
    fn session_with_room_for_a_post(&self, by: ParticipantId) -> Result<SessionId, RoomError> {
        let session = self.poster_session(by)?;
        let full = self
            .sessions
            .get(&session)
            .is_some_and(|state| state.posts.len() >= MAX_POSTS_PER_SESSION);
        if full {
            return Err(RoomError::SessionFull(session));
        }
        Ok(session)
    }

    /// One seat is always kept for a mediator: others may fill at most `capacity - 1` seats.
    fn check_seat_for(&self, role: Role) -> Result<(), RoomError> {
        let capacity = self.settings.capacity.get();
        let seats = usize::from(capacity);
        let connected = self
            .members
            .values()
            .filter(|member| member.connection.is_some());
        let taken = connected.clone().count();
        let taken_by_others = connected
            .filter(|member| !member.role.is_mediator())
            .count();
        let full = taken >= seats || (!role.is_mediator() && taken_by_others + 1 >= seats);
        if full {
            return Err(RoomError::RoomFull { capacity });
        }
        Ok(())
    }

    // ---------------------------------------------------------------- apply (cannot fail)

    fn apply(&mut self, now: Timestamp, change: Change) -> Vec<Output> {
        match change {
            Change::Nothing => Vec::new(),
            Change::AddMember(state) => {
                self.members.insert(state.id, state);
                Vec::new()
            }
            Change::RevokeInvite(member) => {
                let closed = self.drop_connection(member);
                if let Some(state) = self.members.get_mut(&member) {
                    state.invite_revoked = true;
                    if !state.role.is_mediator() {
                        state.location = Location::SentToWaitingRoom;
                    }
                }
                close_output(member, closed, CloseReason::InviteRevoked)
            }
            Change::Connect { member, connection } => {
                let superseded = self.drop_connection(member);
                let auto_admit = self.settings.auto_admit;
                if let Some(state) = self.members.get_mut(&member) {
                    state.connection = Some(LiveConnection {
                        id: connection,
                        sent: None,
                    });
                    if auto_admit && state.location == Location::WaitingToEnter {
                        state.location = Location::InSession(SessionId::PLENARY);
                    }
                }
                close_output(member, superseded, CloseReason::Superseded)
            }
            Change::Disconnect(member) => {
                // The socket is already gone: nothing to close.
                self.drop_connection(member);
                Vec::new()
            }
            Change::Relocate { member, to } => {
                if let Some(state) = self.members.get_mut(&member) {
                    state.location = to;
                }
                Vec::new()
            }
            Change::Remove {
                member,
                revoke_invite,
            } => {
                let closed = self.drop_connection(member);
                if let Some(state) = self.members.get_mut(&member) {
                    state.location = Location::SentToWaitingRoom;
                    state.invite_revoked |= revoke_invite;
                }
                close_output(member, closed, CloseReason::Removed)
            }
            Change::StartCaucus(chosen) => {
                let session = self.next_session;
                self.next_session = session.next();
                self.sessions.insert(session, SessionState::open(now));
                for member in chosen {
                    if let Some(state) = self.members.get_mut(&member) {
                        state.location = Location::InSession(session);
                    }
                }
                Vec::new()
            }
            Change::EndCaucus(session) => {
                self.close_caucus(session);
                Vec::new()
            }
            Change::BackToPlenary => {
                self.close_every_caucus();
                Vec::new()
            }
            Change::EndMeeting => {
                self.close_every_caucus();
                let members: Vec<ParticipantId> = self.members.keys().copied().collect();
                let mut outputs = Vec::new();
                for member in members {
                    let closed = self.drop_connection(member);
                    if let Some(state) = self.members.get_mut(&member) {
                        if state.role.is_mediator() {
                            state.location = Location::InSession(SessionId::PLENARY);
                        } else if state.location.place() != Place::WaitingRoom {
                            state.location = Location::WaitingToEnter;
                        }
                    }
                    outputs.extend(close_output(member, closed, CloseReason::MeetingEnded));
                }
                outputs
            }
            Change::SetTimer { session, ends_at } => {
                if let Some(state) = self.sessions.get_mut(&session) {
                    state.timer = ends_at;
                }
                Vec::new()
            }
            Change::Broadcast(text) => self
                .members
                .values()
                .filter_map(|member| {
                    Some(Output::Notify {
                        to: member.id,
                        connection: member.connection_id()?,
                        event: Event::Broadcast {
                            text: text.clone(),
                            at: now,
                        },
                    })
                })
                .collect(),
            Change::Post {
                by,
                session,
                content,
            } => self.post(now, by, session, content),
            Change::Publish { by, track, kind } => {
                self.tracks
                    .insert(track, PublishedTrack { owner: by, kind });
                Vec::new()
            }
            Change::Unpublish(track) => {
                self.tracks.remove(&track);
                Vec::new()
            }
        }
    }

    fn post(
        &mut self,
        now: Timestamp,
        by: ParticipantId,
        session: SessionId,
        content: PostContent,
    ) -> Vec<Output> {
        let seq = self.next_post;
        self.next_post = seq.next();
        let post = match content {
            PostContent::Chat(text) => Post::Chat(ChatMessage {
                seq,
                session,
                from: by,
                text,
                at: now,
            }),
            PostContent::File { file, name } => Post::File(SharedFile {
                seq,
                session,
                from: by,
                file,
                name,
                at: now,
            }),
        };
        let present = self
            .members
            .values()
            .filter(|member| member.location == Location::InSession(session));
        let audience: BTreeSet<ParticipantId> = present.clone().map(|member| member.id).collect();
        let outputs = present
            .filter_map(|member| {
                Some(Output::Notify {
                    to: member.id,
                    connection: member.connection_id()?,
                    event: match &post {
                        Post::Chat(message) => Event::Chat(message.clone()),
                        Post::File(file) => Event::FileShared(file.clone()),
                    },
                })
            })
            .collect();
        if let Some(state) = self.sessions.get_mut(&session) {
            state.posts.push(Arc::new(StoredPost { post, audience }));
        }
        outputs
    }

    /// Takes a member's connection away, with the tracks published on it.
    fn drop_connection(&mut self, member: ParticipantId) -> Option<ConnectionId> {
        let connection = self
            .members
            .get_mut(&member)
            .and_then(|state| state.connection.take())?;
        self.tracks.retain(|_, track| track.owner != member);
        Some(connection.id)
    }

    fn close_every_caucus(&mut self) {
        let caucuses: Vec<SessionId> = self
            .sessions
            .keys()
            .copied()
            .filter(|session| !session.is_plenary())
            .collect();
        for session in caucuses {
            self.close_caucus(session);
        }
    }

    /// Closes a caucus: whoever was in it (or held from it) goes back to the plenary.
    fn close_caucus(&mut self, session: SessionId) {
        for member in self.members.values_mut() {
            member.location = match member.location {
                Location::InSession(s) if s == session => Location::InSession(SessionId::PLENARY),
                Location::HeldForMediator { previous } if previous == session => {
                    Location::HeldForMediator {
                        previous: SessionId::PLENARY,
                    }
                }
                other => other,
            };
        }
        self.sessions.remove(&session);
    }

    pub(crate) fn mediator_connected(&self) -> bool {
        self.members
            .values()
            .any(|member| member.role.is_mediator() && member.connection.is_some())
    }

    /// **Invariant** (never left unsupervised): with `hold_when_no_mediator`, while no mediator is
    /// connected nobody else is in a session. Members in a session are held in the waiting room
    /// and go back to where they were as soon as a mediator connects.
    pub(crate) fn enforce_supervision(&mut self) {
        let hold = self.settings.hold_when_no_mediator && !self.mediator_connected();
        for member in self.members.values_mut() {
            if member.role.is_mediator() {
                continue;
            }
            member.location = match member.location {
                Location::InSession(previous) if hold => Location::HeldForMediator { previous },
                Location::HeldForMediator { previous } if !hold => Location::InSession(previous),
                other => other,
            };
        }
    }

    // ---------------------------------------------------------------- emit

    /// Queues an output after checking it against the confidentiality invariant.
    fn emit(&mut self, output: Output) {
        if let Err(breach) = self.check_confidentiality(&output) {
            // A breach is a bug in this crate. Panicking stops it before anybody receives it: the
            // task owning the room ends and its connections close (fail closed). The message holds
            // ids only, no personal data.
            panic!("confidentiality invariant violated: {breach}");
        }
        self.outputs.push_back(output);
    }

    /// Queues what changed since the last outputs: views and presence for every connected
    /// member, the forwarding plan, the next wake-up time.
    pub(crate) fn emit_derived(&mut self) {
        let mut updates = Vec::new();
        for member in self.members.values() {
            let Some(connection) = &member.connection else {
                continue;
            };
            let presence = self.presence_of(member);
            let event = match &connection.sent {
                Some(sent) if sent == &presence => continue,
                Some(sent) if sent.place.place() == presence.place.place() => {
                    Event::Presence(presence.clone())
                }
                _ => Event::View(MemberView {
                    presence: presence.clone(),
                    history: self.history_of(member),
                }),
            };
            updates.push((member.id, connection.id, presence, event));
        }
        for (member, connection, presence, event) in updates {
            if let Some(live) = self
                .members
                .get_mut(&member)
                .and_then(|state| state.connection.as_mut())
            {
                live.sent = Some(presence);
            }
            self.emit(Output::Notify {
                to: member,
                connection,
                event,
            });
        }

        let plan = self.forwarding_plan();
        if plan != self.last_plan {
            self.last_plan = plan.clone();
            self.emit(Output::Forwarding(plan));
        }

        let deadline = self.next_deadline();
        if self.last_deadline != Some(deadline) {
            self.last_deadline = Some(deadline);
            self.emit(Output::Timeout(deadline));
        }
    }

    /// The earliest caucus timer, or the room's expiry if sooner.
    fn next_deadline(&self) -> Timestamp {
        self.sessions
            .values()
            .filter_map(|session| session.timer)
            .fold(self.expires_at(), Timestamp::min)
    }
}

fn close_output(
    member: ParticipantId,
    connection: Option<ConnectionId>,
    reason: CloseReason,
) -> Vec<Output> {
    connection
        .map(|connection| Output::CloseConnection {
            member,
            connection,
            reason,
        })
        .into_iter()
        .collect()
}
