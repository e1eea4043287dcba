//! A stage for story tests: the cast, a clock, and the outputs each actor received.

use std::collections::BTreeMap;

use crate::{
    CaseRef, CloseReason, Command, ConnectionId, Event, ForwardingPlan, Output, ParticipantId,
    Place, Post, Presence, Role, Room, RoomError, RoomId, RoomSettings, SessionId, Side, Timestamp,
};

pub(crate) const MEDIATOR: ParticipantId = ParticipantId::new(1);
pub(crate) const PARTY_A: ParticipantId = ParticipantId::new(2);
pub(crate) const LAWYER_A: ParticipantId = ParticipantId::new(3);
pub(crate) const PARTY_B: ParticipantId = ParticipantId::new(4);
pub(crate) const LAWYER_B: ParticipantId = ParticipantId::new(5);
pub(crate) const EXPERT: ParticipantId = ParticipantId::new(6);
pub(crate) const CO_MEDIATOR: ParticipantId = ParticipantId::new(7);
pub(crate) const SEGRETERIA: ParticipantId = ParticipantId::new(8);

/// 2025-03-03 09:00 UTC.
pub(crate) const OPENED: Timestamp = Timestamp::from_unix_millis(1_740_992_400_000);
pub(crate) const MINUTE: u64 = 60_000;
pub(crate) const DAY: u64 = 24 * 60 * MINUTE;

/// Everybody invited to the story's mediation.
pub(crate) fn cast() -> Vec<(ParticipantId, Role, Option<Side>, &'static str)> {
    vec![
        (MEDIATOR, Role::Mediator, None, "Avv. Giulia Conti"),
        (PARTY_A, Role::Party, Some(Side::Istante), "Mario Rossi"),
        (
            LAWYER_A,
            Role::Lawyer,
            Some(Side::Istante),
            "Avv. Luca Bianchi",
        ),
        (
            PARTY_B,
            Role::Party,
            Some(Side::Chiamata),
            "Edilizia Verdi S.r.l.",
        ),
        (
            LAWYER_B,
            Role::Lawyer,
            Some(Side::Chiamata),
            "Avv. Sara Neri",
        ),
        (EXPERT, Role::Expert, None, "Ing. Paolo Gallo"),
        (CO_MEDIATOR, Role::Mediator, None, "Dott.ssa Anna Ferri"),
        (SEGRETERIA, Role::SegreteriaObserver, None, "Segreteria ODM"),
    ]
}

pub(crate) fn add_member_commands() -> Vec<Command> {
    cast()
        .into_iter()
        .map(|(member, role, side, name)| Command::AddMember {
            member,
            role,
            side,
            display_name: name.into(),
        })
        .collect()
}

/// A room with the cast invited, a clock, and what every actor received.
pub(crate) struct Stage {
    pub(crate) room: Room,
    pub(crate) now: Timestamp,
    next_connection: u64,
    /// Events received, per member, not yet taken.
    inbox: BTreeMap<ParticipantId, Vec<Event>>,
    /// Connections the room closed.
    pub(crate) closed: Vec<(ParticipantId, ConnectionId, CloseReason)>,
    /// The last forwarding plan emitted.
    pub(crate) plan: ForwardingPlan,
    /// The last wake-up time asked for.
    pub(crate) wake_at: Option<Timestamp>,
}

impl Stage {
    pub(crate) fn new(settings: RoomSettings) -> Stage {
        let case = CaseRef::parse("MED-2025-0142").unwrap();
        let mut stage = Stage {
            room: Room::new(RoomId::new(42), case, OPENED, settings),
            now: OPENED,
            next_connection: 100,
            inbox: BTreeMap::new(),
            closed: Vec::new(),
            plan: ForwardingPlan::default(),
            wake_at: None,
        };
        stage.drain();
        for command in add_member_commands() {
            stage.ok(command);
        }
        stage
    }

    pub(crate) fn advance(&mut self, millis: u64) {
        self.now = Timestamp::from_unix_millis(self.now.as_unix_millis() + millis);
    }

    /// Runs a command now and records its outputs, checking each against the invariant.
    pub(crate) fn run(&mut self, command: Command) -> Result<(), RoomError> {
        let before = self.room.clone();
        let result = self.room.handle(self.now, command);
        if result.is_err() {
            assert_eq!(self.room, before, "a refused command changed the room");
        }
        self.drain();
        self.room.check_structure().unwrap();
        result
    }

    #[track_caller]
    pub(crate) fn ok(&mut self, command: Command) {
        if let Err(error) = self.run(command) {
            panic!("command refused: {error}");
        }
    }

    #[track_caller]
    pub(crate) fn refused(&mut self, command: Command) -> RoomError {
        match self.run(command) {
            Ok(()) => panic!("command accepted"),
            Err(error) => error,
        }
    }

    pub(crate) fn tick(&mut self) {
        self.room.handle_timeout(self.now);
        self.drain();
        self.room.check_structure().unwrap();
    }

    fn drain(&mut self) {
        while let Some(output) = self.room.poll_output() {
            self.room.check_confidentiality(&output).unwrap();
            match output {
                Output::Notify {
                    to,
                    connection,
                    event,
                } => {
                    assert_eq!(self.room.connection_of(to), Some(connection));
                    self.inbox.entry(to).or_default().push(event);
                }
                Output::CloseConnection {
                    member,
                    connection,
                    reason,
                } => self.closed.push((member, connection, reason)),
                Output::Forwarding(plan) => self.plan = plan,
                Output::Timeout(at) => self.wake_at = Some(at),
            }
        }
    }

    pub(crate) fn connect(&mut self, member: ParticipantId) -> ConnectionId {
        self.next_connection += 1;
        let connection = ConnectionId::new(self.next_connection);
        self.ok(Command::Connect { member, connection });
        connection
    }

    pub(crate) fn try_connect(&mut self, member: ParticipantId) -> Result<ConnectionId, RoomError> {
        self.next_connection += 1;
        let connection = ConnectionId::new(self.next_connection);
        self.run(Command::Connect { member, connection })
            .map(|()| connection)
    }

    pub(crate) fn disconnect(&mut self, member: ParticipantId) {
        let connection = self.room.connection_of(member).unwrap();
        self.ok(Command::Disconnect { member, connection });
    }

    /// The mediator connects, everybody else in `members` connects and is admitted.
    pub(crate) fn everyone_in_plenary(&mut self, members: &[ParticipantId]) {
        self.connect(MEDIATOR);
        for &member in members {
            self.connect(member);
            self.ok(Command::Admit {
                by: MEDIATOR,
                member,
            });
        }
        self.clear_inboxes();
    }

    /// Takes the events `member` received so far.
    pub(crate) fn take(&mut self, member: ParticipantId) -> Vec<Event> {
        self.inbox.remove(&member).unwrap_or_default()
    }

    pub(crate) fn clear_inboxes(&mut self) {
        self.inbox.clear();
    }

    pub(crate) fn place(&self, member: ParticipantId) -> Place {
        self.room.location_of(member).unwrap().place()
    }

    pub(crate) fn presence(&self, member: ParticipantId) -> Presence {
        self.room.view_for(member).unwrap().presence
    }

    pub(crate) fn chat(&mut self, by: ParticipantId, text: &str) {
        self.ok(Command::Chat {
            by,
            text: text.into(),
        });
    }
}

/// The chat texts among `events`.
pub(crate) fn chat_texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Chat(message) => Some(message.text.expose().clone()),
            _ => None,
        })
        .collect()
}

/// The chat texts of a history.
pub(crate) fn history_texts(history: &[Post]) -> Vec<String> {
    history
        .iter()
        .filter_map(|post| match post {
            Post::Chat(message) => Some(message.text.expose().clone()),
            Post::File(_) => None,
        })
        .collect()
}

/// The members listed in a presence's session, or `None` when waiting.
pub(crate) fn session_members(presence: &Presence) -> Option<(SessionId, Vec<ParticipantId>)> {
    match &presence.place {
        crate::PlaceView::Session(view) => Some((
            view.session,
            view.members.iter().map(|card| card.id).collect(),
        )),
        crate::PlaceView::WaitingRoom(_) => None,
    }
}
