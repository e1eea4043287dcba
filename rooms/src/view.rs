//! What each member may know: the visibility rules of the room, computed in one place.
//!
//! - A member in the waiting room learns only that they are waiting and why
//!   ([`WaitingNotice`]): never who is in a session, nor how many.
//! - A member in a session sees the members of that session (names, roles, sides, whether
//!   connected), that session's history as far as they were in it, and whether a private session
//!   is going on elsewhere.
//! - A mediator additionally sees where every member is ([`MediatorOverview`]), but receives
//!   media, chat and files only of the session they are in.

use crate::ids::{ParticipantId, PostSeq, Redacted, SessionId, Timestamp};
use crate::member::{Location, Place, Role, Side};
use crate::output::Post;
use crate::room::{MemberState, Room};
use crate::settings::{MAX_HISTORY_PAGE, VIEW_HISTORY_POSTS};
use crate::RoomError;

/// Everything a member may know at one moment: sent on (re)connection and whenever their own
/// place changes, and available to the edge through [`Room::view_for`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    /// Where the member is and whom they may see.
    pub presence: Presence,
    /// The latest [`crate::VIEW_HISTORY_POSTS`] posts of the member's current session that were
    /// made while the member was in that session, oldest first (older ones:
    /// [`Room::history_page`]). Empty in the waiting room.
    pub history: Vec<Post>,
}

/// Where a member is and what they may know about the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    /// The member this presence is for.
    pub me: ParticipantId,
    /// The member's own place.
    pub place: PlaceView,
    /// For mediators only: where every member is.
    pub overview: Option<MediatorOverview>,
}

/// A member's own place, with what they may know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlaceView {
    /// In the waiting room; the notice is all they learn.
    WaitingRoom(WaitingNotice),
    /// In a session.
    Session(SessionView),
}

impl PlaceView {
    /// The bare place: the waiting room or the session.
    pub fn place(&self) -> Place {
        match self {
            PlaceView::WaitingRoom(_) => Place::WaitingRoom,
            PlaceView::Session(view) => Place::Session(view.session),
        }
    }
}

/// The one thing a waiting member is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitingNotice {
    /// No mediator is connected: "waiting for the mediator".
    MediatorNotConnected,
    /// A mediator is connected and a caucus is going on: "private session in progress".
    PrivateSessionInProgress,
    /// A mediator is connected and will let the member in.
    WaitingForAdmission,
}

/// A session seen from inside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionView {
    /// The session.
    pub session: SessionId,
    /// Plenary or caucus.
    pub kind: SessionKind,
    /// When the caucus timer runs out, if set.
    pub timer_ends_at: Option<Timestamp>,
    /// Everybody in this session (the viewer included), connected or not, sorted by id.
    pub members: Vec<MemberCard>,
    /// Whether a caucus other than this session is open.
    pub private_session_elsewhere: bool,
}

/// Plenary or caucus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionKind {
    /// The plenary: the main session, open for the whole life of the room.
    Plenary,
    /// A caucus (sessione separata): a private session chosen by the mediator.
    Caucus,
}

impl SessionKind {
    /// The kind of a session: only [`SessionId::PLENARY`] is the plenary.
    pub const fn of(session: SessionId) -> SessionKind {
        if session.is_plenary() {
            SessionKind::Plenary
        } else {
            SessionKind::Caucus
        }
    }
}

/// How one member is shown to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberCard {
    /// The member.
    pub id: ParticipantId,
    /// The name shown.
    pub display_name: Redacted<String>,
    /// Their role.
    pub role: Role,
    /// Their side.
    pub side: Option<Side>,
    /// Whether they are connected now.
    pub connected: bool,
}

/// What only mediators see: every member and every open session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediatorOverview {
    /// Every member, sorted by id.
    pub members: Vec<MemberStatus>,
    /// Every open session, the plenary first.
    pub sessions: Vec<SessionSummary>,
}

/// A member as a mediator sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// Who they are.
    pub card: MemberCard,
    /// Where they are, and why if waiting.
    pub location: Location,
    /// Whether their join link was revoked.
    pub invite_revoked: bool,
}

/// An open session as a mediator sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    /// The session.
    pub session: SessionId,
    /// Plenary or caucus.
    pub kind: SessionKind,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// When its timer runs out, if set.
    pub timer_ends_at: Option<Timestamp>,
}

impl Room {
    /// What `member` may know now: their presence and their session's history.
    /// The edge sends it as a snapshot when the member (re)connects.
    pub fn view_for(&self, member: ParticipantId) -> Result<MemberView, RoomError> {
        let state = self
            .members
            .get(&member)
            .ok_or(RoomError::UnknownMember(member))?;
        Ok(self.view_of(state))
    }

    pub(crate) fn view_of(&self, member: &MemberState) -> MemberView {
        MemberView {
            presence: self.presence_of(member),
            history: self.history_of(member),
        }
    }

    pub(crate) fn presence_of(&self, member: &MemberState) -> Presence {
        let place = match member.location {
            Location::InSession(session) => PlaceView::Session(SessionView {
                session,
                kind: SessionKind::of(session),
                timer_ends_at: self.sessions.get(&session).and_then(|s| s.timer),
                members: self
                    .members
                    .values()
                    .filter(|other| other.location == Location::InSession(session))
                    .map(MemberState::card)
                    .collect(),
                private_session_elsewhere: self
                    .sessions
                    .keys()
                    .any(|&other| !other.is_plenary() && other != session),
            }),
            Location::WaitingToEnter
            | Location::SentToWaitingRoom
            | Location::HeldForMediator { .. } => PlaceView::WaitingRoom(self.waiting_notice()),
        };
        let overview = member.role.is_mediator().then(|| MediatorOverview {
            members: self
                .members
                .values()
                .map(|other| MemberStatus {
                    card: other.card(),
                    location: other.location,
                    invite_revoked: other.invite_revoked,
                })
                .collect(),
            sessions: self
                .sessions
                .iter()
                .map(|(&session, state)| SessionSummary {
                    session,
                    kind: SessionKind::of(session),
                    opened_at: state.opened_at,
                    timer_ends_at: state.timer,
                })
                .collect(),
        });
        Presence {
            me: member.id,
            place,
            overview,
        }
    }

    fn waiting_notice(&self) -> WaitingNotice {
        if !self.mediator_connected() {
            WaitingNotice::MediatorNotConnected
        } else if self.sessions.keys().any(|session| !session.is_plenary()) {
            WaitingNotice::PrivateSessionInProgress
        } else {
            WaitingNotice::WaitingForAdmission
        }
    }

    /// The latest [`VIEW_HISTORY_POSTS`] posts of the member's current session that the member
    /// was present for, oldest first.
    pub(crate) fn history_of(&self, member: &MemberState) -> Vec<Post> {
        let Location::InSession(session) = member.location else {
            return Vec::new();
        };
        self.readable_posts(member.id, session, None, VIEW_HISTORY_POSTS)
            .posts
    }

    /// One page of the history of `session` as `member` may read it: the latest `limit` (at
    /// most [`MAX_HISTORY_PAGE`]) posts numbered below `before` that the member was present
    /// for, oldest first. Only the member's current session may be paged; the waiting room has
    /// no history.
    pub fn history_page(
        &self,
        member: ParticipantId,
        session: SessionId,
        before: PostSeq,
        limit: usize,
    ) -> Result<HistoryPage, RoomError> {
        let state = self
            .members
            .get(&member)
            .ok_or(RoomError::UnknownMember(member))?;
        if state.location != Location::InSession(session) {
            return Err(RoomError::NotInSession(member));
        }
        Ok(self.readable_posts(member, session, Some(before), limit.min(MAX_HISTORY_PAGE)))
    }

    /// The latest `limit` posts of `session` before `before` whose audience includes `member`.
    fn readable_posts(
        &self,
        member: ParticipantId,
        session: SessionId,
        before: Option<PostSeq>,
        limit: usize,
    ) -> HistoryPage {
        let readable: Vec<&Post> = self
            .sessions
            .get(&session)
            .map(|state| {
                state
                    .posts
                    .iter()
                    .filter(|stored| before.is_none_or(|before| stored.post.seq() < before))
                    .filter(|stored| stored.audience.contains(&member))
                    .map(|stored| &stored.post)
                    .collect()
            })
            .unwrap_or_default();
        let first = readable.len().saturating_sub(limit);
        HistoryPage {
            posts: readable[first..]
                .iter()
                .map(|post| (*post).clone())
                .collect(),
            more: first > 0,
        }
    }
}

/// A page of a session's history ([`Room::history_page`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage {
    /// The posts, oldest first.
    pub posts: Vec<Post>,
    /// Whether older posts the member may read remain.
    pub more: bool,
}

impl MemberState {
    pub(crate) fn card(&self) -> MemberCard {
        MemberCard {
            id: self.id,
            display_name: self.display_name.clone(),
            role: self.role,
            side: self.side,
            connected: self.connection.is_some(),
        }
    }
}
