//! The confidentiality invariant (R-ROOM-5), stated once.
//!
//! **Invariant**: nothing of a session — media in the forwarding plan, chat, shared files,
//! presence details, history — reaches a member outside that session at the time it happens.
//!
//! [`Room::check_confidentiality`] decides it for one output against the room's current state.
//! The room runs it on every output before queueing it (and panics on a breach, so a bug fails
//! closed); the property tests run it again on every output they drain. It is written from the
//! raw state (locations, roles, connections, stored audiences), not from the functions that
//! produce the outputs, so that it checks them rather than repeats them.

use crate::ids::{ConnectionId, ParticipantId, PostSeq, SessionId, TrackId};
use crate::member::{Location, Place};
use crate::output::{Event, ForwardingPlan, Output, Post};
use crate::room::{MemberState, Room};
use crate::view::{PlaceView, Presence};

/// How an output would break confidentiality. Holds ids only, never content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Breach {
    /// An event for somebody who is not a member.
    #[error("event for member {0}, who is not in the room")]
    UnknownRecipient(ParticipantId),
    /// An event or media on a connection that is not the member's current one.
    #[error("output for member {member} on connection {connection}, which is not theirs")]
    WrongConnection {
        /// The member.
        member: ParticipantId,
        /// The connection used.
        connection: ConnectionId,
    },
    /// Content of a session sent to somebody who is not in it.
    #[error("content of session {session} sent to member {member}, who is not in it")]
    OutsideSession {
        /// The recipient.
        member: ParticipantId,
        /// The session.
        session: SessionId,
    },
    /// A post shown to somebody who was not in its session when it was made.
    #[error("post {} shown to member {member}, who was not present for it", seq.get())]
    NotInAudience {
        /// The recipient.
        member: ParticipantId,
        /// The post.
        seq: PostSeq,
    },
    /// A presence telling a member about somebody outside the member's session.
    #[error("presence of member {about} shown to member {member}, who is not in their session")]
    PresenceLeak {
        /// The recipient.
        member: ParticipantId,
        /// The member described.
        about: ParticipantId,
    },
    /// A presence for one member sent to another, or describing a place the member is not in.
    #[error("presence sent to member {0} does not describe their own place")]
    WrongPlace(ParticipantId),
    /// The mediator overview sent to somebody who is not a mediator.
    #[error("mediator overview sent to member {0}, who is not a mediator")]
    OverviewToNonMediator(ParticipantId),
    /// A forwarding entry for a track its publisher does not publish on that connection.
    #[error("track {0} is not published by the publisher the plan names")]
    ForeignTrack(TrackId),
    /// Media forwarded to somebody outside the publisher's session.
    #[error("track {track} forwarded to member {receiver}, who is not in its publisher's session")]
    MediaLeak {
        /// The track.
        track: TrackId,
        /// The receiver.
        receiver: ParticipantId,
    },
}

impl Room {
    /// Whether `output`, delivered now, respects the confidentiality invariant.
    pub fn check_confidentiality(&self, output: &Output) -> Result<(), Breach> {
        match output {
            Output::Notify {
                to,
                connection,
                event,
            } => {
                let member = self.recipient(*to, *connection)?;
                self.check_event(member, event)
            }
            Output::Forwarding(plan) => self.check_plan(plan),
            // Closing a connection or asking for a wake-up tells nobody anything.
            Output::CloseConnection { .. } | Output::Timeout(_) => Ok(()),
        }
    }

    fn recipient(
        &self,
        member: ParticipantId,
        connection: ConnectionId,
    ) -> Result<&MemberState, Breach> {
        let state = self
            .members
            .get(&member)
            .ok_or(Breach::UnknownRecipient(member))?;
        if state.connection_id() != Some(connection) {
            return Err(Breach::WrongConnection { member, connection });
        }
        Ok(state)
    }

    fn check_event(&self, member: &MemberState, event: &Event) -> Result<(), Breach> {
        match event {
            Event::View(view) => {
                check_presence(self, member, &view.presence)?;
                view.history
                    .iter()
                    .try_for_each(|post| self.check_post(member, post))
            }
            Event::Presence(presence) => check_presence(self, member, presence),
            Event::Chat(message) => in_session(member, message.session),
            Event::FileShared(file) => in_session(member, file.session),
            // Mediators know every session; the notice carries nothing but the session's id.
            Event::CaucusTimeUp { .. } if member.role.is_mediator() => Ok(()),
            Event::CaucusTimeUp { session, .. } => in_session(member, *session),
            // A broadcast is the mediator's notice to the whole room.
            Event::Broadcast { .. } => Ok(()),
        }
    }

    /// A history entry: of the member's session, and the member was there when it was posted.
    fn check_post(&self, member: &MemberState, post: &Post) -> Result<(), Breach> {
        in_session(member, post.session())?;
        let present = self
            .sessions
            .get(&post.session())
            .and_then(|session| {
                session
                    .posts
                    .iter()
                    .find(|stored| stored.post.seq() == post.seq())
            })
            .is_some_and(|stored| stored.audience.contains(&member.id));
        if !present {
            return Err(Breach::NotInAudience {
                member: member.id,
                seq: post.seq(),
            });
        }
        Ok(())
    }

    fn check_plan(&self, plan: &ForwardingPlan) -> Result<(), Breach> {
        for entry in plan.tracks() {
            let publisher = self.recipient(entry.publisher.member, entry.publisher.connection)?;
            let owned = self
                .tracks
                .get(&entry.track)
                .is_some_and(|track| track.owner == publisher.id);
            if !owned {
                return Err(Breach::ForeignTrack(entry.track));
            }
            for receiver in &entry.receivers {
                let receiver_state = self.recipient(receiver.member, receiver.connection)?;
                let same_session = match publisher.location.place() {
                    Place::Session(session) => {
                        receiver_state.location == Location::InSession(session)
                    }
                    Place::WaitingRoom => false,
                };
                if !same_session || receiver.member == publisher.id {
                    return Err(Breach::MediaLeak {
                        track: entry.track,
                        receiver: receiver.member,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The member is in `session` now.
fn in_session(member: &MemberState, session: SessionId) -> Result<(), Breach> {
    if member.location != Location::InSession(session) {
        return Err(Breach::OutsideSession {
            member: member.id,
            session,
        });
    }
    Ok(())
}

/// A presence describes the member's own place, lists only members of their session, and carries
/// the overview only for mediators.
fn check_presence(room: &Room, member: &MemberState, presence: &Presence) -> Result<(), Breach> {
    if presence.me != member.id || presence.place.place() != member.location.place() {
        return Err(Breach::WrongPlace(member.id));
    }
    if presence.overview.is_some() && !member.role.is_mediator() {
        return Err(Breach::OverviewToNonMediator(member.id));
    }
    if let PlaceView::Session(view) = &presence.place {
        for card in &view.members {
            let there = room
                .members
                .get(&card.id)
                .is_some_and(|other| other.location == Location::InSession(view.session));
            if !there {
                return Err(Breach::PresenceLeak {
                    member: member.id,
                    about: card.id,
                });
            }
        }
    }
    Ok(())
}
