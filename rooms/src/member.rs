//! Who is in the room and where each member is.

use crate::ids::SessionId;

/// The part a member plays in the mediation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Mediatore: runs the meeting; several co-mediators may share a room.
    Mediator,
    /// Parte: a party to the dispute.
    Party,
    /// Avvocato difensore: a party's lawyer.
    Lawyer,
    /// Rappresentante: someone acting for a party (e.g. for a company).
    Representative,
    /// CTU (consulente tecnico d'ufficio): the court-style technical expert.
    Expert,
    /// Segreteria: the body's front office, attending as an observer.
    SegreteriaObserver,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::Mediator,
        Role::Party,
        Role::Lawyer,
        Role::Representative,
        Role::Expert,
        Role::SegreteriaObserver,
    ];

    /// Whether members with this role may run the room (admit, caucus, broadcast…).
    pub const fn is_mediator(self) -> bool {
        matches!(self, Role::Mediator)
    }

    /// The stable code of the role, the same in the database and on the wire.
    pub const fn code(self) -> &'static str {
        match self {
            Role::Mediator => "mediator",
            Role::Party => "party",
            Role::Lawyer => "lawyer",
            Role::Representative => "representative",
            Role::Expert => "expert",
            Role::SegreteriaObserver => "segreteria_observer",
        }
    }

    /// The role a code stands for.
    pub fn from_code(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.code() == code)
    }
}

/// The side of the dispute a member belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// Parte istante: the side that filed the mediation request.
    Istante,
    /// Parte chiamata: the side called into the mediation.
    Chiamata,
    /// Any further side (e.g. a third party called in), numbered by the back office.
    Other(u8),
}

impl Side {
    /// The stable code of the side, the same in the database and on the wire: `istante`,
    /// `chiamata`, or `other-N`.
    pub fn code(self) -> String {
        match self {
            Side::Istante => "istante".to_owned(),
            Side::Chiamata => "chiamata".to_owned(),
            Side::Other(number) => format!("other-{number}"),
        }
    }

    /// The side a code stands for.
    pub fn from_code(code: &str) -> Option<Side> {
        match code {
            "istante" => Some(Side::Istante),
            "chiamata" => Some(Side::Chiamata),
            other => other
                .strip_prefix("other-")
                .filter(|number| number.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|number| number.parse().ok())
                .map(Side::Other),
        }
    }
}

/// Where a member is, as the room remembers it (durable: part of the snapshot).
///
/// A member is always in exactly one place; this single field is the only record of it.
/// The three waiting variants differ only in what brings the member out of the waiting room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// In the waiting room, not admitted yet; a mediator admits them, or `auto_admit` does when
    /// they connect.
    WaitingToEnter,
    /// In the waiting room because a mediator sent them there or removed them; only a mediator
    /// lets them back (auto-admit does not apply).
    SentToWaitingRoom,
    /// In the waiting room because no mediator is connected (`hold_when_no_mediator`); they go
    /// back to `previous` as soon as a mediator connects.
    HeldForMediator {
        /// The session the member was in when the hold began.
        previous: SessionId,
    },
    /// Taking part in a session (the plenary or a caucus).
    InSession(SessionId),
}

impl Location {
    /// The place this location shows as: the waiting room or a session.
    pub const fn place(self) -> Place {
        match self {
            Location::WaitingToEnter
            | Location::SentToWaitingRoom
            | Location::HeldForMediator { .. } => Place::WaitingRoom,
            Location::InSession(session) => Place::Session(session),
        }
    }
}

/// The place a member is in: the waiting room or exactly one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Place {
    /// The waiting room (sala d'attesa): sees and hears nobody.
    WaitingRoom,
    /// A session: the plenary or one caucus.
    Session(SessionId),
}

impl Place {
    /// The session, if the place is one.
    pub const fn session(self) -> Option<SessionId> {
        match self {
            Place::WaitingRoom => None,
            Place::Session(session) => Some(session),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_and_side_codes_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::from_code(role.code()), Some(role));
        }
        assert_eq!(Role::from_code("judge"), None);
        for side in [
            Side::Istante,
            Side::Chiamata,
            Side::Other(0),
            Side::Other(255),
        ] {
            assert_eq!(Side::from_code(&side.code()), Some(side));
        }
        for bad in ["other-256", "other-", "other-+1", "other:1", "nessuna"] {
            assert_eq!(Side::from_code(bad), None, "{bad}");
        }
    }
}
