//! Property tests: random sequences of commands — valid and invalid, by random actors, with
//! restarts and timeouts — and the invariants checked after every step.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU8;

use proptest::prelude::*;

use super::support::{add_member_commands, OPENED};
use crate::{
    CaseRef, Command, ConnectionId, Event, FileRef, ForwardingPlan, Location, Output,
    ParticipantId, Place, PlaceView, Presence, Role, Room, RoomId, RoomSettings, RoomSnapshot,
    SessionId, Side, Timestamp, TrackId, TrackKind, MAX_CHAT_CHARS,
};

const MINUTE: u64 = 60_000;

/// Members 1..=7 are invited at the start; 8 and 9 only if a random `AddMember` invites them.
fn member() -> impl Strategy<Value = ParticipantId> {
    (1_u64..=9).prop_map(ParticipantId::new)
}

/// Mostly the two mediators, so that mediator commands often succeed.
fn actor() -> impl Strategy<Value = ParticipantId> {
    prop_oneof![
        3 => Just(ParticipantId::new(1)),
        2 => Just(ParticipantId::new(7)),
        3 => member(),
    ]
}

/// A member with a connection id: mostly one of the member's own two devices (so that
/// disconnections and takeovers happen), sometimes any id (so that ids collide).
fn member_connection() -> impl Strategy<Value = (ParticipantId, ConnectionId)> {
    (member(), prop::bool::weighted(0.8), 0_u64..2, 1_u64..=99).prop_map(
        |(member, own, device, any)| {
            let id = if own { member.get() * 10 + device } else { any };
            (member, ConnectionId::new(id))
        },
    )
}

fn session() -> impl Strategy<Value = SessionId> {
    (0_u64..=4).prop_map(SessionId::new)
}

fn track() -> impl Strategy<Value = TrackId> {
    (1_u64..=6).prop_map(TrackId::new)
}

fn text() -> impl Strategy<Value = crate::Redacted<String>> {
    prop_oneof![
        8 => "[a-z ]{1,12}".prop_map(crate::Redacted::new),
        1 => Just(crate::Redacted::from("")),
        1 => Just(crate::Redacted::from(" \n ")),
        1 => Just(crate::Redacted::new("x".repeat(MAX_CHAT_CHARS + 1))),
    ]
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Mediator),
        Just(Role::Party),
        Just(Role::Lawyer),
        Just(Role::Representative),
        Just(Role::Expert),
        Just(Role::SegreteriaObserver),
    ]
}

fn side() -> impl Strategy<Value = Option<Side>> {
    prop_oneof![
        Just(None),
        Just(Some(Side::Istante)),
        Just(Some(Side::Chiamata)),
        Just(Some(Side::Other(3))),
    ]
}

fn track_kind() -> impl Strategy<Value = TrackKind> {
    prop_oneof![
        Just(TrackKind::Audio),
        Just(TrackKind::Video),
        Just(TrackKind::ScreenShare),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        1 => (member(), role(), side(), text()).prop_map(|(member, role, side, display_name)| {
            Command::AddMember { member, role, side, display_name }
        }),
        1 => member().prop_map(|member| Command::RevokeInvite { member }),
        10 => member_connection()
            .prop_map(|(member, connection)| Command::Connect { member, connection }),
        3 => member_connection()
            .prop_map(|(member, connection)| Command::Disconnect { member, connection }),
        5 => (actor(), member()).prop_map(|(by, member)| Command::Admit { by, member }),
        2 => (actor(), member())
            .prop_map(|(by, member)| Command::SendToWaitingRoom { by, member }),
        1 => (actor(), member(), any::<bool>()).prop_map(|(by, member, revoke_invite)| {
            Command::Remove { by, member, revoke_invite }
        }),
        6 => (actor(), prop::collection::vec(member(), 0..4))
            .prop_map(|(by, members)| Command::StartCaucus { by, members }),
        2 => (actor(), session()).prop_map(|(by, session)| Command::JoinSession { by, session }),
        2 => (actor(), member(), session()).prop_map(|(by, member, session)| {
            Command::MoveToSession { by, member, session }
        }),
        1 => (actor(), session()).prop_map(|(by, session)| Command::EndCaucus { by, session }),
        1 => actor().prop_map(|by| Command::BackToPlenary { by }),
        1 => actor().prop_map(|by| Command::EndMeeting { by }),
        1 => (actor(), session(), prop::option::of(0_u64..=180)).prop_map(
            |(by, session, minutes)| Command::SetCaucusTimer {
                by,
                session,
                ends_at: minutes
                    .map(|m| Timestamp::from_unix_millis(OPENED.as_unix_millis() + m * MINUTE)),
            }
        ),
        1 => (actor(), text()).prop_map(|(by, text)| Command::Broadcast { by, text }),
        12 => (member(), text()).prop_map(|(by, text)| Command::Chat { by, text }),
        1 => (member(), text()).prop_map(|(by, name)| Command::ShareFile {
            by,
            file: FileRef::parse("doc-1").unwrap(),
            name,
        }),
        3 => (member(), track(), track_kind())
            .prop_map(|(by, track, kind)| Command::PublishTrack { by, track, kind }),
        1 => (member(), track()).prop_map(|(by, track)| Command::UnpublishTrack { by, track }),
    ]
}

#[derive(Clone, Debug)]
enum When {
    /// The clock moves forward by this many milliseconds, then the command runs.
    After(u64),
    /// The command is sent before the room was created (the clock does not move).
    BeforeOpen,
    /// The command is sent once the room has expired (the clock does not move).
    AfterExpiry,
}

#[derive(Clone, Debug)]
enum Step {
    Command(When, Command),
    /// The clock moves forward this many milliseconds (or to expiry) and the room is woken.
    Timeout {
        millis: u64,
        to_expiry: bool,
    },
    /// The server restarts: the room is rebuilt from its snapshot.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    let when = prop_oneof![
        30 => (0_u64..=5 * MINUTE).prop_map(When::After),
        1 => Just(When::BeforeOpen),
        1 => Just(When::AfterExpiry),
    ];
    prop_oneof![
        40 => (when, command()).prop_map(|(when, command)| Step::Command(when, command)),
        3 => (0_u64..=30 * MINUTE, prop::bool::weighted(0.05))
            .prop_map(|(millis, to_expiry)| Step::Timeout { millis, to_expiry }),
        1 => Just(Step::Restart),
    ]
}

fn settings() -> impl Strategy<Value = RoomSettings> {
    (1_u8..=6, any::<bool>(), prop::bool::weighted(0.8)).prop_map(
        |(capacity, auto_admit, hold_when_no_mediator)| RoomSettings {
            capacity: NonZeroU8::new(capacity).unwrap_or(NonZeroU8::MIN),
            auto_admit,
            hold_when_no_mediator,
            ..RoomSettings::default()
        },
    )
}

/// What the test knows from the outputs alone, as a client and an SFU would.
#[derive(Default)]
struct Observer {
    /// The last presence each member received, on which connection.
    clients: BTreeMap<ParticipantId, (ConnectionId, Presence)>,
    /// The last forwarding plan.
    plan: ForwardingPlan,
}

impl Observer {
    /// Drains the room's outputs, checking each one as it is read.
    fn drain(&mut self, room: &mut Room) -> Result<Vec<Output>, TestCaseError> {
        let mut outputs = Vec::new();
        while let Some(output) = room.poll_output() {
            // (a) confidentiality, against the state at the time of the output.
            if let Err(breach) = room.check_confidentiality(&output) {
                return Err(TestCaseError::fail(format!("{breach}: {output:?}")));
            }
            match &output {
                Output::Notify {
                    to,
                    connection,
                    event,
                } => {
                    let view = room
                        .view_for(*to)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    match event {
                        Event::View(sent) => {
                            prop_assert_eq!(sent, &view);
                            self.clients
                                .insert(*to, (*connection, sent.presence.clone()));
                        }
                        Event::Presence(sent) => {
                            prop_assert_eq!(sent, &view.presence);
                            prop_assert_eq!(
                                self.clients.get(to).map(|(c, p)| (*c, p.place.place())),
                                Some((*connection, sent.place.place())),
                                "a presence update must follow a view of the same place"
                            );
                            self.clients.insert(*to, (*connection, sent.clone()));
                        }
                        _ => {}
                    }
                }
                Output::Forwarding(plan) => {
                    prop_assert_ne!(plan, &self.plan, "a plan is emitted only when it changes");
                    self.plan = plan.clone();
                }
                Output::CloseConnection { .. } | Output::Timeout(_) => {}
            }
            outputs.push(output);
        }
        Ok(outputs)
    }
}

/// The snapshot a restart must produce: everybody disconnected, so held if the room holds.
fn expected_after_restart(mut snapshot: RoomSnapshot) -> RoomSnapshot {
    if snapshot.settings.hold_when_no_mediator {
        for member in &mut snapshot.members {
            if let (false, Location::InSession(previous)) =
                (member.role.is_mediator(), member.location)
            {
                member.location = Location::HeldForMediator { previous };
            }
        }
    }
    snapshot
}

fn check_after_step(room: &Room, observer: &Observer) -> Result<(), TestCaseError> {
    // Structural invariants.
    room.check_structure()
        .map_err(|inconsistency| TestCaseError::fail(inconsistency.to_string()))?;
    prop_assert_eq!(&observer.plan, &room.forwarding_plan());

    // Every connected member's screen is up to date.
    let members: Vec<ParticipantId> = room.members.keys().copied().collect();
    for &member in &members {
        if let Some(connection) = room.connection_of(member) {
            let presence = room.view_for(member).map(|view| view.presence).ok();
            prop_assert_eq!(
                observer.clients.get(&member).map(|(c, p)| (*c, p.clone())),
                presence.map(|p| (connection, p)),
                "member {} is out of date",
                member
            );
        }
    }

    // (c) Each member is in exactly one place, and every session's member list says so.
    let places: BTreeMap<ParticipantId, Place> = members
        .iter()
        .filter_map(|&member| Some((member, room.location_of(member)?.place())))
        .collect();
    prop_assert_eq!(places.len(), members.len());
    for &member in &members {
        let Ok(view) = room.view_for(member) else {
            return Err(TestCaseError::fail("a member without a view"));
        };
        if let PlaceView::Session(session) = &view.presence.place {
            let listed: BTreeSet<ParticipantId> =
                session.members.iter().map(|card| card.id).collect();
            let there: BTreeSet<ParticipantId> = places
                .iter()
                .filter(|(_, place)| **place == Place::Session(session.session))
                .map(|(member, _)| *member)
                .collect();
            prop_assert_eq!(listed, there);
        }
        if let Some(overview) = &view.presence.overview {
            prop_assert_eq!(overview.members.len(), members.len());
        }
    }

    // (d) snapshot -> restore round-trips (up to the disconnection a restart implies).
    let snapshot = room.snapshot();
    let restored = Room::restore(snapshot.clone())
        .map_err(|inconsistency| TestCaseError::fail(inconsistency.to_string()))?;
    prop_assert_eq!(restored.snapshot(), expected_after_restart(snapshot));
    let again = Room::restore(restored.snapshot())
        .map_err(|inconsistency| TestCaseError::fail(inconsistency.to_string()))?;
    prop_assert_eq!(again, restored);
    Ok(())
}

/// Every connected member of the sender's session got the message once; nobody else got it.
fn check_chat_delivery(
    room: &Room,
    by: ParticipantId,
    outputs: &[Output],
) -> Result<(), TestCaseError> {
    let Some(Place::Session(session)) = room.location_of(by).map(Location::place) else {
        return Err(TestCaseError::fail(
            "a chat from outside a session succeeded",
        ));
    };
    let expected: BTreeSet<ParticipantId> = room
        .members
        .values()
        .filter(|m| m.location == Location::InSession(session) && m.connection.is_some())
        .map(|m| m.id)
        .collect();
    let got: Vec<ParticipantId> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Notify {
                to,
                event: Event::Chat(_),
                ..
            } => Some(*to),
            _ => None,
        })
        .collect();
    prop_assert_eq!(got.len(), expected.len());
    prop_assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);
    Ok(())
}

fn run_story(settings: RoomSettings, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let case = CaseRef::parse("MED-1").map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut room = Room::new(RoomId::new(1), case, OPENED, settings);
    let mut observer = Observer::default();
    let mut now = OPENED;
    for command in add_member_commands().into_iter().take(7) {
        prop_assert!(room.handle(now, command).is_ok());
    }
    observer.drain(&mut room)?;

    for step in steps {
        match step {
            Step::Command(when, command) => {
                let at = match when {
                    When::After(millis) => {
                        now = Timestamp::from_unix_millis(now.as_unix_millis() + millis);
                        now
                    }
                    When::BeforeOpen => Timestamp::from_unix_millis(OPENED.as_unix_millis() - 1),
                    When::AfterExpiry => room.expires_at(),
                };
                let chat_by = match &command {
                    Command::Chat { by, .. } => Some(*by),
                    _ => None,
                };
                let before = room.clone();
                let result = room.handle(at, command);
                let outputs = observer.drain(&mut room)?;
                if result.is_err() {
                    // (b) a refused command changed nothing and said nothing.
                    prop_assert!(
                        outputs.is_empty(),
                        "a refused command emitted {:?}",
                        outputs
                    );
                    prop_assert_eq!(&room, &before);
                } else if let Some(by) = chat_by {
                    check_chat_delivery(&room, by, &outputs)?;
                }
            }
            Step::Timeout { millis, to_expiry } => {
                now = if to_expiry {
                    now.max(room.expires_at())
                } else {
                    Timestamp::from_unix_millis(now.as_unix_millis() + millis)
                };
                room.handle_timeout(now);
                observer.drain(&mut room)?;
            }
            Step::Restart => {
                room = Room::restore(room.snapshot())
                    .map_err(|inconsistency| TestCaseError::fail(inconsistency.to_string()))?;
                observer = Observer::default();
                observer.drain(&mut room)?;
            }
        }
        check_after_step(&room, &observer)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        max_shrink_iters: 20_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_sessions_keep_every_invariant(
        settings in settings(),
        steps in prop::collection::vec(step(), 1..60),
    ) {
        run_story(settings, steps)?;
    }
}

/// The random generator does reach the situations the invariants are about; otherwise the
/// property above could pass by never testing a caucus.
#[test]
fn random_sessions_reach_caucuses_with_chat_and_media() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let mut caucus_chats = 0;
    let mut caucus_media = 0;
    for _ in 0..200 {
        let steps = prop::collection::vec(step(), 60)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let case = CaseRef::parse("MED-1").unwrap();
        let mut room = Room::new(RoomId::new(1), case, OPENED, RoomSettings::default());
        for command in add_member_commands().into_iter().take(7) {
            room.handle(OPENED, command).unwrap();
        }
        let mut now = OPENED;
        for step in steps {
            if let Step::Command(When::After(millis), command) = step {
                now = Timestamp::from_unix_millis(now.as_unix_millis() + millis);
                let _ = room.handle(now, command);
            }
            while let Some(output) = room.poll_output() {
                match output {
                    Output::Notify {
                        event: Event::Chat(message),
                        ..
                    } if !message.session.is_plenary() => caucus_chats += 1,
                    Output::Forwarding(plan) => {
                        caucus_media += plan
                            .tracks()
                            .iter()
                            .filter(|entry| {
                                !entry.receivers.is_empty()
                                    && room.location_of(entry.publisher.member).is_some_and(|l| {
                                        l.place().session().is_some_and(|s| !s.is_plenary())
                                    })
                            })
                            .count();
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(
        caucus_chats > 50,
        "only {caucus_chats} caucus chat deliveries"
    );
    assert!(caucus_media > 15, "only {caucus_media} caucus media plans");
}
