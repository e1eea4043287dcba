//! Stories: a mediation told step by step, with named actors.

use super::support::*;
use crate::{
    CloseReason, Command, Endpoint, Event, FileRef, Location, ParticipantId, Place, PlaceView,
    Role, RoomError, RoomSettings, SessionId, SessionKind, Side, Timestamp, TrackId, TrackKind,
    WaitingNotice, MAX_HISTORY_PAGE, MAX_POSTS_PER_SESSION, VIEW_HISTORY_POSTS,
};

fn waiting_notice(events: &[Event]) -> Option<WaitingNotice> {
    events.iter().rev().find_map(|event| {
        let presence = match event {
            Event::View(view) => &view.presence,
            Event::Presence(presence) => presence,
            _ => return None,
        };
        match presence.place {
            PlaceView::WaitingRoom(notice) => Some(notice),
            PlaceView::Session(_) => None,
        }
    })
}

#[test]
fn parties_wait_until_the_mediator_admits_them() {
    let mut stage = Stage::new(RoomSettings::default());

    // Party A arrives before the mediator: waiting for the mediator.
    stage.connect(PARTY_A);
    assert_eq!(stage.place(PARTY_A), Place::WaitingRoom);
    assert_eq!(
        waiting_notice(&stage.take(PARTY_A)),
        Some(WaitingNotice::MediatorNotConnected)
    );

    // The mediator enters the plenary directly; party A is now waiting to be admitted.
    stage.connect(MEDIATOR);
    assert_eq!(stage.place(MEDIATOR), Place::Session(SessionId::PLENARY));
    assert_eq!(
        waiting_notice(&stage.take(PARTY_A)),
        Some(WaitingNotice::WaitingForAdmission)
    );
    let overview = stage.presence(MEDIATOR).overview.unwrap();
    let party_a = overview.members.iter().find(|m| m.card.id == PARTY_A);
    assert_eq!(party_a.map(|m| m.location), Some(Location::WaitingToEnter));
    assert_eq!(party_a.map(|m| m.card.connected), Some(true));

    // Admitted: party A gets a full view of the plenary, with the mediator in it.
    stage.ok(Command::Admit {
        by: MEDIATOR,
        member: PARTY_A,
    });
    let events = stage.take(PARTY_A);
    let Some(Event::View(view)) = events.last() else {
        panic!("party A got no view: {events:?}");
    };
    assert_eq!(
        session_members(&view.presence),
        Some((SessionId::PLENARY, vec![MEDIATOR, PARTY_A, CO_MEDIATOR]))
    );
    // The co-mediator belongs to the plenary too, shown as not connected.
    let PlaceView::Session(plenary) = &view.presence.place else {
        panic!("party A should be in the plenary");
    };
    assert_eq!(
        plenary
            .members
            .iter()
            .map(|card| card.connected)
            .collect::<Vec<_>>(),
        vec![true, true, false]
    );
    assert_eq!(view.presence.overview, None);

    // A party cannot admit anybody.
    stage.connect(PARTY_B);
    assert_eq!(
        stage.refused(Command::Admit {
            by: PARTY_A,
            member: PARTY_B,
        }),
        RoomError::NotAllowed { by: PARTY_A }
    );
    assert_eq!(
        stage.refused(Command::Admit {
            by: MEDIATOR,
            member: PARTY_A,
        }),
        RoomError::NotWaiting(PARTY_A)
    );
}

#[test]
fn caucus_with_side_a_stays_inside_it() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A, LAWYER_A, PARTY_B, LAWYER_B]);
    for (track, member) in [(1, MEDIATOR), (2, PARTY_A), (3, PARTY_B)] {
        stage.ok(Command::PublishTrack {
            by: member,
            track: TrackId::new(track),
            kind: TrackKind::Audio,
        });
    }
    stage.chat(PARTY_B, "buongiorno a tutti");

    // The mediator opens a caucus with side A and sends side B's party out to wait.
    stage.ok(Command::StartCaucus {
        by: MEDIATOR,
        members: vec![PARTY_A, LAWYER_A],
    });
    let caucus = SessionId::new(1);
    stage.ok(Command::SendToWaitingRoom {
        by: MEDIATOR,
        member: PARTY_B,
    });
    for member in [MEDIATOR, PARTY_A, LAWYER_A] {
        assert_eq!(stage.place(member), Place::Session(caucus));
    }
    assert_eq!(
        session_members(&stage.presence(PARTY_A)),
        Some((caucus, vec![MEDIATOR, PARTY_A, LAWYER_A]))
    );

    // Party B only learns that a private session is in progress: not who, not how many.
    let party_b_events = stage.take(PARTY_B);
    assert_eq!(
        waiting_notice(&party_b_events),
        Some(WaitingNotice::PrivateSessionInProgress)
    );
    assert_eq!(
        stage.presence(PARTY_B).place,
        PlaceView::WaitingRoom(WaitingNotice::PrivateSessionInProgress)
    );
    // Lawyer B, left in the plenary, sees only the plenary (themselves and the co-mediator, who
    // is not connected) and that a private session is going on elsewhere.
    let PlaceView::Session(lawyer_b_view) = stage.presence(LAWYER_B).place else {
        panic!("lawyer B should be in the plenary");
    };
    assert_eq!(lawyer_b_view.kind, SessionKind::Plenary);
    assert!(lawyer_b_view.private_session_elsewhere);
    assert_eq!(
        lawyer_b_view
            .members
            .iter()
            .map(|card| card.id)
            .collect::<Vec<_>>(),
        vec![LAWYER_B, CO_MEDIATOR]
    );

    // Media: side A's party is heard only in the caucus; party B, waiting, is heard by nobody.
    let forwarding = stage.room.forwarding_plan();
    assert_eq!(forwarding, stage.plan);
    let receivers = |track: u64| -> Vec<_> {
        forwarding
            .tracks()
            .iter()
            .find(|entry| entry.track == TrackId::new(track))
            .map(|entry| entry.receivers.iter().map(|r| r.member).collect())
            .unwrap_or_default()
    };
    assert_eq!(receivers(1), vec![PARTY_A, LAWYER_A]);
    assert_eq!(receivers(2), vec![MEDIATOR, LAWYER_A]);
    assert_eq!(receivers(3), vec![]);

    // Caucus chat reaches the caucus only.
    stage.clear_inboxes();
    stage.chat(LAWYER_A, "il mio cliente può arrivare a 40.000");
    for member in [MEDIATOR, PARTY_A, LAWYER_A] {
        assert_eq!(
            chat_texts(&stage.take(member)),
            vec!["il mio cliente può arrivare a 40.000"]
        );
    }
    assert_eq!(stage.take(PARTY_B), vec![]);
    assert_eq!(stage.take(LAWYER_B), vec![]);
    stage.chat(LAWYER_B, "nota solo per la parte B");
    assert_eq!(
        chat_texts(&stage.take(LAWYER_B)),
        vec!["nota solo per la parte B"]
    );
    assert_eq!(stage.take(PARTY_A), vec![]);
    assert_eq!(
        stage.refused(Command::Chat {
            by: PARTY_B,
            text: "posso entrare?".into(),
        }),
        RoomError::NotInSession(PARTY_B)
    );

    // Back to plenary: the caucus closes, its members return; party B still waits to be admitted.
    stage.ok(Command::BackToPlenary { by: MEDIATOR });
    assert_eq!(stage.room.open_sessions(), vec![SessionId::PLENARY]);
    assert_eq!(stage.place(PARTY_B), Place::WaitingRoom);
    stage.ok(Command::Admit {
        by: MEDIATOR,
        member: PARTY_B,
    });
    for member in [MEDIATOR, PARTY_A, LAWYER_A, PARTY_B, LAWYER_B] {
        assert_eq!(stage.place(member), Place::Session(SessionId::PLENARY));
    }
    // Side A's history of the plenary holds what was said while they were there, not the note
    // lawyer B wrote while they were in the caucus, and nothing of the caucus.
    let history = stage.room.view_for(PARTY_A).unwrap().history;
    assert_eq!(history_texts(&history), vec!["buongiorno a tutti"]);
    let history = stage.room.view_for(LAWYER_B).unwrap().history;
    assert_eq!(
        history_texts(&history),
        vec!["buongiorno a tutti", "nota solo per la parte B"]
    );
    assert_eq!(stage.room.forwarding_plan().tracks()[2].receivers.len(), 4);
}

#[test]
fn a_caucus_ends_and_its_members_return_to_the_plenary() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A, LAWYER_A, PARTY_B, LAWYER_B]);
    stage.ok(Command::StartCaucus {
        by: MEDIATOR,
        members: vec![PARTY_A, LAWYER_A],
    });
    let side_a = SessionId::new(1);
    stage.ok(Command::JoinSession {
        by: MEDIATOR,
        session: SessionId::PLENARY,
    });
    stage.ok(Command::StartCaucus {
        by: MEDIATOR,
        members: vec![PARTY_B, LAWYER_B],
    });
    let side_b = SessionId::new(2);
    assert_eq!(stage.place(PARTY_A), Place::Session(side_a));
    assert_eq!(stage.place(PARTY_B), Place::Session(side_b));
    stage.chat(PARTY_A, "solo per noi");

    // Alternately with one side or the other.
    stage.ok(Command::JoinSession {
        by: MEDIATOR,
        session: side_a,
    });
    assert_eq!(
        stage.refused(Command::JoinSession {
            by: MEDIATOR,
            session: side_a,
        }),
        RoomError::AlreadyThere {
            member: MEDIATOR,
            session: side_a
        }
    );
    // The mediator joined after the message: it is not in their history.
    assert_eq!(stage.room.view_for(MEDIATOR).unwrap().history, vec![]);

    stage.ok(Command::EndCaucus {
        by: MEDIATOR,
        session: side_a,
    });
    for member in [MEDIATOR, PARTY_A, LAWYER_A] {
        assert_eq!(stage.place(member), Place::Session(SessionId::PLENARY));
    }
    assert_eq!(stage.place(PARTY_B), Place::Session(side_b));
    // The caucus's posts are gone with it: nobody can read them in the plenary.
    assert_eq!(stage.room.view_for(PARTY_A).unwrap().history, vec![]);
    assert_eq!(
        stage.refused(Command::EndCaucus {
            by: MEDIATOR,
            session: side_a,
        }),
        RoomError::UnknownSession(side_a)
    );
    assert_eq!(
        stage.refused(Command::EndCaucus {
            by: MEDIATOR,
            session: SessionId::PLENARY,
        }),
        RoomError::NotACaucus(SessionId::PLENARY)
    );
    assert_eq!(
        stage.refused(Command::StartCaucus {
            by: MEDIATOR,
            members: vec![MEDIATOR],
        }),
        RoomError::EmptyCaucus
    );
}

#[test]
fn ending_the_meeting_disconnects_everybody_and_the_next_one_starts_from_the_waiting_room() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A, LAWYER_A, PARTY_B]);
    stage.ok(Command::StartCaucus {
        by: MEDIATOR,
        members: vec![PARTY_A, LAWYER_A],
    });
    assert!(matches!(
        stage.refused(Command::EndMeeting { by: PARTY_B }),
        RoomError::NotAllowed { .. }
    ));

    stage.ok(Command::EndMeeting { by: MEDIATOR });
    let mut closed: Vec<ParticipantId> = stage
        .closed
        .iter()
        .filter(|&&(_, _, reason)| reason == CloseReason::MeetingEnded)
        .map(|&(member, _, _)| member)
        .collect();
    closed.sort();
    let mut everybody = vec![MEDIATOR, PARTY_A, LAWYER_A, PARTY_B];
    everybody.sort();
    assert_eq!(closed, everybody);
    assert_eq!(
        stage.room.snapshot().sessions.len(),
        1,
        "every caucus is closed, the plenary stays"
    );

    // Next time, the mediator is back in the plenary and the others wait to be admitted.
    stage.connect(MEDIATOR);
    stage.connect(PARTY_A);
    assert_eq!(stage.place(MEDIATOR), Place::Session(SessionId::PLENARY));
    assert_eq!(stage.place(PARTY_A), Place::WaitingRoom);
}

#[test]
fn a_sixth_connection_is_refused() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A, LAWYER_A, PARTY_B, LAWYER_B]);
    assert_eq!(
        stage.try_connect(EXPERT),
        Err(RoomError::RoomFull { capacity: 5 })
    );
    // A newer connection of somebody already in takes no new seat.
    stage.connect(LAWYER_B);
    // Once somebody leaves, the expert gets in.
    stage.disconnect(LAWYER_A);
    stage.connect(EXPERT);
}

#[test]
fn one_seat_is_always_kept_for_a_mediator() {
    let mut stage = Stage::new(RoomSettings::default());
    for member in [PARTY_A, LAWYER_A, PARTY_B, LAWYER_B] {
        stage.connect(member);
    }
    assert_eq!(
        stage.try_connect(EXPERT),
        Err(RoomError::RoomFull { capacity: 5 })
    );
    stage.connect(MEDIATOR);
    assert_eq!(
        stage.try_connect(CO_MEDIATOR),
        Err(RoomError::RoomFull { capacity: 5 })
    );
}

#[test]
fn day_91_the_room_is_expired() {
    let mut stage = Stage::new(RoomSettings::default());
    let expires_at = Timestamp::from_unix_millis(OPENED.as_unix_millis() + 90 * DAY);
    assert_eq!(stage.room.expires_at(), expires_at);
    assert_eq!(stage.wake_at, Some(expires_at));

    // Before the room is created, links fail.
    stage.now = Timestamp::from_unix_millis(OPENED.as_unix_millis() - 1);
    assert_eq!(
        stage.try_connect(PARTY_A),
        Err(RoomError::NotYetOpen { opens_at: OPENED })
    );

    // Day 90, last millisecond: still open.
    stage.now = Timestamp::from_unix_millis(expires_at.as_unix_millis() - 1);
    assert!(!stage.room.is_expired(stage.now));
    stage.connect(MEDIATOR);
    stage.connect(PARTY_A);

    // Day 91: expired. The wake-up closes every connection.
    stage.now = expires_at;
    assert!(stage.room.is_expired(stage.now));
    assert_eq!(
        stage.try_connect(LAWYER_A),
        Err(RoomError::Expired {
            expired_at: expires_at
        })
    );
    stage.tick();
    let reasons: Vec<_> = stage
        .closed
        .iter()
        .map(|&(member, _, reason)| (member, reason))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (MEDIATOR, CloseReason::RoomExpired),
            (PARTY_A, CloseReason::RoomExpired)
        ]
    );
    assert_eq!(stage.room.connection_of(MEDIATOR), None);
    assert!(stage.room.is_expired(Timestamp::from_unix_millis(
        OPENED.as_unix_millis() + 91 * DAY
    )));
}

#[test]
fn a_revoked_invite_is_refused() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_B]);
    let connection = stage.room.connection_of(PARTY_B).unwrap();
    stage.ok(Command::RevokeInvite { member: PARTY_B });
    assert_eq!(
        stage.closed,
        vec![(PARTY_B, connection, CloseReason::InviteRevoked)]
    );
    assert_eq!(
        stage.room.location_of(PARTY_B),
        Some(Location::SentToWaitingRoom)
    );
    assert_eq!(
        stage.try_connect(PARTY_B),
        Err(RoomError::InviteRevoked(PARTY_B))
    );

    // A mediator removes lawyer A and revokes the link in one go.
    stage.connect(LAWYER_A);
    stage.ok(Command::Remove {
        by: MEDIATOR,
        member: LAWYER_A,
        revoke_invite: true,
    });
    assert_eq!(
        stage
            .closed
            .last()
            .map(|&(member, _, reason)| (member, reason)),
        Some((LAWYER_A, CloseReason::Removed))
    );
    assert_eq!(
        stage.try_connect(LAWYER_A),
        Err(RoomError::InviteRevoked(LAWYER_A))
    );
    assert_eq!(
        stage.refused(Command::Remove {
            by: MEDIATOR,
            member: CO_MEDIATOR,
            revoke_invite: false,
        }),
        RoomError::TargetIsMediator(CO_MEDIATOR)
    );
}

#[test]
fn a_newer_connection_supersedes_the_older() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A]);
    let laptop = stage.room.connection_of(PARTY_A).unwrap();
    stage.ok(Command::PublishTrack {
        by: PARTY_A,
        track: TrackId::new(9),
        kind: TrackKind::Video,
    });
    assert_eq!(stage.plan.tracks().len(), 1);

    let phone = stage.connect(PARTY_A);
    assert_eq!(
        stage.closed,
        vec![(PARTY_A, laptop, CloseReason::Superseded)]
    );
    // The phone gets the full view; the laptop's tracks went with it.
    let events = stage.take(PARTY_A);
    assert!(matches!(events.last(), Some(Event::View(_))));
    assert_eq!(stage.plan.tracks().len(), 0);
    assert_eq!(stage.place(PARTY_A), Place::Session(SessionId::PLENARY));

    // The laptop's socket closes later: harmless.
    stage.ok(Command::Disconnect {
        member: PARTY_A,
        connection: laptop,
    });
    assert_eq!(stage.room.connection_of(PARTY_A), Some(phone));
    assert_eq!(stage.take(MEDIATOR), vec![]);
    assert_eq!(
        stage.try_connect(PARTY_A).map(|_| ()),
        Ok(()),
        "a third device takes over again"
    );
    assert_eq!(
        stage.run(Command::Connect {
            member: LAWYER_A,
            connection: stage.room.connection_of(MEDIATOR).unwrap(),
        }),
        Err(RoomError::ConnectionInUse(
            stage.room.connection_of(MEDIATOR).unwrap()
        ))
    );
}

#[test]
fn the_mediator_leaving_holds_everyone_apart_until_they_return() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A, LAWYER_A, PARTY_B, LAWYER_B]);
    stage.ok(Command::StartCaucus {
        by: MEDIATOR,
        members: vec![PARTY_A],
    });
    let caucus = SessionId::new(1);
    stage.ok(Command::PublishTrack {
        by: LAWYER_B,
        track: TrackId::new(5),
        kind: TrackKind::Audio,
    });
    assert_eq!(stage.plan.tracks()[0].receivers.len(), 2);
    stage.clear_inboxes();

    // The mediator's network drops: nobody is left unsupervised.
    stage.disconnect(MEDIATOR);
    for member in [PARTY_A, LAWYER_A, PARTY_B, LAWYER_B] {
        assert_eq!(stage.place(member), Place::WaitingRoom);
        assert_eq!(
            waiting_notice(&stage.take(member)),
            Some(WaitingNotice::MediatorNotConnected)
        );
    }
    assert_eq!(
        stage.room.location_of(PARTY_A),
        Some(Location::HeldForMediator { previous: caucus })
    );
    assert_eq!(stage.plan.tracks()[0].receivers, Vec::<Endpoint>::new());
    assert_eq!(
        stage.refused(Command::Chat {
            by: LAWYER_B,
            text: "c'è qualcuno?".into(),
        }),
        RoomError::NotInSession(LAWYER_B)
    );

    // The mediator is back: everybody returns to where they were.
    stage.connect(MEDIATOR);
    assert_eq!(stage.place(MEDIATOR), Place::Session(caucus));
    assert_eq!(stage.place(PARTY_A), Place::Session(caucus));
    for member in [LAWYER_A, PARTY_B, LAWYER_B] {
        assert_eq!(stage.place(member), Place::Session(SessionId::PLENARY));
    }
    assert_eq!(stage.plan.tracks()[0].receivers.len(), 2);
}

#[test]
fn without_hold_members_stay_where_they_are() {
    let settings = RoomSettings {
        hold_when_no_mediator: false,
        ..RoomSettings::default()
    };
    let mut stage = Stage::new(settings);
    stage.everyone_in_plenary(&[PARTY_A, PARTY_B]);
    stage.disconnect(MEDIATOR);
    assert_eq!(stage.place(PARTY_A), Place::Session(SessionId::PLENARY));
    stage.chat(PARTY_A, "aspettiamo il mediatore");
    assert_eq!(
        chat_texts(&stage.take(PARTY_B)),
        vec!["aspettiamo il mediatore"]
    );
}

#[test]
fn the_caucus_timer_tells_time_is_up_and_moves_nobody() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A, LAWYER_A, PARTY_B]);
    stage.connect(CO_MEDIATOR);
    stage.ok(Command::StartCaucus {
        by: MEDIATOR,
        members: vec![PARTY_A, LAWYER_A],
    });
    let caucus = SessionId::new(1);
    let ends_at = Timestamp::from_unix_millis(stage.now.as_unix_millis() + 15 * MINUTE);
    assert_eq!(
        stage.refused(Command::SetCaucusTimer {
            by: MEDIATOR,
            session: caucus,
            ends_at: Some(stage.now),
        }),
        RoomError::DeadlineNotInFuture {
            deadline: stage.now
        }
    );
    stage.ok(Command::SetCaucusTimer {
        by: MEDIATOR,
        session: caucus,
        ends_at: Some(ends_at),
    });
    assert_eq!(stage.wake_at, Some(ends_at));
    let PlaceView::Session(view) = stage.presence(PARTY_A).place else {
        panic!("party A should be in the caucus");
    };
    assert_eq!(view.timer_ends_at, Some(ends_at));
    stage.clear_inboxes();

    // Too early: nothing happens.
    stage.advance(14 * MINUTE);
    stage.tick();
    assert_eq!(stage.take(PARTY_A), vec![]);

    stage.advance(MINUTE);
    stage.tick();
    let time_up = Event::CaucusTimeUp {
        session: caucus,
        ends_at,
    };
    for member in [MEDIATOR, CO_MEDIATOR, PARTY_A, LAWYER_A] {
        assert!(
            stage.take(member).contains(&time_up),
            "{member} was not told"
        );
    }
    assert!(!stage.take(PARTY_B).contains(&time_up));
    assert_eq!(stage.place(PARTY_A), Place::Session(caucus));
    assert_eq!(stage.wake_at, Some(stage.room.expires_at()));
}

#[test]
fn auto_admit_lets_arrivals_in_but_not_who_was_sent_out() {
    let settings = RoomSettings {
        auto_admit: true,
        ..RoomSettings::default()
    };
    let mut stage = Stage::new(settings);
    // Nobody is let in before a mediator is there.
    stage.connect(PARTY_A);
    assert_eq!(stage.place(PARTY_A), Place::WaitingRoom);
    stage.connect(MEDIATOR);
    assert_eq!(stage.place(PARTY_A), Place::Session(SessionId::PLENARY));

    stage.ok(Command::SendToWaitingRoom {
        by: MEDIATOR,
        member: PARTY_A,
    });
    stage.disconnect(PARTY_A);
    stage.connect(PARTY_A);
    assert_eq!(stage.place(PARTY_A), Place::WaitingRoom);
    stage.connect(PARTY_B);
    assert_eq!(stage.place(PARTY_B), Place::Session(SessionId::PLENARY));
}

#[test]
fn a_broadcast_reaches_everybody_wherever_they_are() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A, PARTY_B]);
    stage.ok(Command::StartCaucus {
        by: MEDIATOR,
        members: vec![PARTY_A],
    });
    stage.connect(LAWYER_B);
    stage.clear_inboxes();
    stage.ok(Command::Broadcast {
        by: MEDIATOR,
        text: "riprendiamo tra 5 minuti".into(),
    });
    for member in [MEDIATOR, PARTY_A, PARTY_B, LAWYER_B] {
        let events = stage.take(member);
        assert!(
            matches!(events.as_slice(), [Event::Broadcast { text, .. }] if text.expose() == "riprendiamo tra 5 minuti"),
            "{member}: {events:?}"
        );
    }
    assert_eq!(
        stage.refused(Command::Broadcast {
            by: PARTY_A,
            text: "ciao".into(),
        }),
        RoomError::NotAllowed { by: PARTY_A }
    );
}

#[test]
fn shared_files_follow_the_chat_rule_and_texts_are_bounded() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A, PARTY_B]);
    stage.ok(Command::StartCaucus {
        by: MEDIATOR,
        members: vec![PARTY_A],
    });
    stage.clear_inboxes();
    stage.ok(Command::ShareFile {
        by: PARTY_A,
        file: FileRef::parse("doc-77").unwrap(),
        name: "perizia.pdf".into(),
    });
    assert!(matches!(
        stage.take(MEDIATOR).as_slice(),
        [Event::FileShared(_)]
    ));
    assert_eq!(stage.take(PARTY_B), vec![]);

    assert_eq!(
        stage.refused(Command::Chat {
            by: PARTY_A,
            text: "x".repeat(crate::MAX_CHAT_CHARS + 1).into(),
        }),
        RoomError::TextTooLong {
            field: crate::TextField::Chat,
            max: crate::MAX_CHAT_CHARS
        }
    );
    stage.chat(PARTY_A, &"è".repeat(crate::MAX_CHAT_CHARS));
    assert_eq!(
        stage.refused(Command::Chat {
            by: PARTY_A,
            text: "  \n".into(),
        }),
        RoomError::EmptyText {
            field: crate::TextField::Chat
        }
    );
    assert_eq!(
        stage.refused(Command::Chat {
            by: LAWYER_A,
            text: "ciao".into(),
        }),
        RoomError::NotConnected(LAWYER_A)
    );
}

#[test]
fn a_reconnecting_member_gets_the_history_of_its_session_only() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A, PARTY_B]);
    stage.chat(PARTY_B, "plenaria 1");
    stage.ok(Command::StartCaucus {
        by: MEDIATOR,
        members: vec![PARTY_A],
    });
    stage.chat(PARTY_A, "caucus 1");
    stage.disconnect(PARTY_A);
    stage.connect(PARTY_A);
    let events = stage.take(PARTY_A);
    let Some(Event::View(view)) = events.last() else {
        panic!("no view on reconnection: {events:?}");
    };
    assert_eq!(history_texts(&view.history), vec!["caucus 1"]);

    stage.disconnect(PARTY_B);
    stage.connect(PARTY_B);
    let events = stage.take(PARTY_B);
    let Some(Event::View(view)) = events.last() else {
        panic!("no view on reconnection: {events:?}");
    };
    assert_eq!(history_texts(&view.history), vec!["plenaria 1"]);
}

#[test]
fn after_a_restart_the_room_comes_back_with_nobody_connected() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A, LAWYER_A, PARTY_B]);
    stage.ok(Command::StartCaucus {
        by: MEDIATOR,
        members: vec![PARTY_A, LAWYER_A],
    });
    stage.chat(LAWYER_A, "prima del riavvio");
    let snapshot = stage.room.snapshot();

    // The server restarts.
    stage.room = crate::Room::restore(snapshot).unwrap();
    stage.clear_inboxes();
    stage.closed.clear();
    assert_eq!(stage.room.connection_of(MEDIATOR), None);
    assert_eq!(
        stage.room.location_of(PARTY_A),
        Some(Location::HeldForMediator {
            previous: SessionId::new(1)
        })
    );
    stage.connect(PARTY_A);
    assert_eq!(
        waiting_notice(&stage.take(PARTY_A)),
        Some(WaitingNotice::MediatorNotConnected)
    );
    stage.connect(MEDIATOR);
    let events = stage.take(PARTY_A);
    let Some(Event::View(view)) = events.last() else {
        panic!("no view when the mediator came back: {events:?}");
    };
    assert_eq!(history_texts(&view.history), vec!["prima del riavvio"]);
    assert_eq!(stage.place(PARTY_B), Place::Session(SessionId::PLENARY));

    // New caucuses and posts continue the numbering.
    stage.ok(Command::StartCaucus {
        by: MEDIATOR,
        members: vec![PARTY_B],
    });
    assert_eq!(stage.place(PARTY_B), Place::Session(SessionId::new(2)));
}

#[test]
fn restore_refuses_a_damaged_snapshot() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A]);
    let good = stage.room.snapshot();

    let mut twice = good.clone();
    twice.members.push(twice.members[0].clone());
    assert_eq!(
        crate::Room::restore(twice),
        Err(crate::Inconsistency::DuplicateMember(MEDIATOR))
    );

    let mut nowhere = good.clone();
    nowhere.members[1].location = Location::InSession(SessionId::new(5));
    assert_eq!(
        crate::Room::restore(nowhere),
        Err(crate::Inconsistency::BadLocation(PARTY_A))
    );

    let mut mediator_waiting = good.clone();
    mediator_waiting.members[0].location = Location::WaitingToEnter;
    assert_eq!(
        crate::Room::restore(mediator_waiting),
        Err(crate::Inconsistency::BadLocation(MEDIATOR))
    );

    let mut no_plenary = good;
    no_plenary.sessions.clear();
    assert_eq!(
        crate::Room::restore(no_plenary),
        Err(crate::Inconsistency::MissingPlenary)
    );
}

#[test]
fn a_co_mediator_sees_where_everybody_is_but_hears_only_its_session() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A, PARTY_B]);
    stage.connect(CO_MEDIATOR);
    stage.ok(Command::StartCaucus {
        by: MEDIATOR,
        members: vec![PARTY_A],
    });
    let caucus = SessionId::new(1);
    stage.ok(Command::PublishTrack {
        by: PARTY_A,
        track: TrackId::new(1),
        kind: TrackKind::Video,
    });
    stage.clear_inboxes();
    stage.chat(PARTY_A, "riservato");

    let overview = stage.presence(CO_MEDIATOR).overview.unwrap();
    let where_is = |member| {
        overview
            .members
            .iter()
            .find(|status| status.card.id == member)
            .map(|status| status.location)
    };
    assert_eq!(where_is(PARTY_A), Some(Location::InSession(caucus)));
    assert_eq!(
        where_is(PARTY_B),
        Some(Location::InSession(SessionId::PLENARY))
    );
    assert_eq!(overview.sessions.len(), 2);
    assert_eq!(chat_texts(&stage.take(CO_MEDIATOR)), Vec::<String>::new());
    assert!(!stage.room.forwarding_plan().allows(
        TrackId::new(1),
        stage.room.connection_of(CO_MEDIATOR).unwrap()
    ));

    // The co-mediator moves into the caucus: media flows, but earlier posts stay unread.
    stage.ok(Command::JoinSession {
        by: CO_MEDIATOR,
        session: caucus,
    });
    assert!(stage.room.forwarding_plan().allows(
        TrackId::new(1),
        stage.room.connection_of(CO_MEDIATOR).unwrap()
    ));
    assert_eq!(stage.room.view_for(CO_MEDIATOR).unwrap().history, vec![]);
    // A party has no overview and cannot move anyone.
    assert_eq!(stage.presence(PARTY_B).overview, None);
    assert_eq!(
        stage.refused(Command::MoveToSession {
            by: PARTY_B,
            member: PARTY_B,
            session: caucus,
        }),
        RoomError::NotAllowed { by: PARTY_B }
    );
}

#[test]
fn a_mediator_can_bring_a_waiting_member_straight_into_a_caucus() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A]);
    stage.ok(Command::StartCaucus {
        by: MEDIATOR,
        members: vec![PARTY_A],
    });
    let caucus = SessionId::new(1);
    stage.connect(LAWYER_A);
    stage.ok(Command::MoveToSession {
        by: MEDIATOR,
        member: LAWYER_A,
        session: caucus,
    });
    assert_eq!(stage.place(LAWYER_A), Place::Session(caucus));
    assert_eq!(
        stage.refused(Command::MoveToSession {
            by: MEDIATOR,
            member: LAWYER_A,
            session: SessionId::new(9),
        }),
        RoomError::UnknownSession(SessionId::new(9))
    );
    stage.ok(Command::SendToWaitingRoom {
        by: MEDIATOR,
        member: LAWYER_A,
    });
    assert_eq!(
        stage.refused(Command::SendToWaitingRoom {
            by: MEDIATOR,
            member: LAWYER_A,
        }),
        RoomError::AlreadyWaiting(LAWYER_A)
    );
}

#[test]
fn media_is_forwarded_only_within_the_publishers_session() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A, LAWYER_A]);
    stage.connect(PARTY_B);
    // Waiting: publishes to nobody, receives nothing.
    stage.ok(Command::PublishTrack {
        by: PARTY_B,
        track: TrackId::new(1),
        kind: TrackKind::Video,
    });
    stage.ok(Command::PublishTrack {
        by: PARTY_A,
        track: TrackId::new(2),
        kind: TrackKind::ScreenShare,
    });
    let party_b = stage.room.connection_of(PARTY_B).unwrap();
    assert_eq!(stage.plan.tracks()[0].receivers, vec![]);
    assert!(!stage.plan.allows(TrackId::new(2), party_b));
    assert_eq!(stage.plan.tracks()[1].receivers.len(), 2);

    assert_eq!(
        stage.refused(Command::PublishTrack {
            by: LAWYER_A,
            track: TrackId::new(2),
            kind: TrackKind::Audio,
        }),
        RoomError::TrackInUse(TrackId::new(2))
    );
    assert_eq!(
        stage.refused(Command::UnpublishTrack {
            by: LAWYER_A,
            track: TrackId::new(2),
        }),
        RoomError::UnknownTrack(TrackId::new(2))
    );
    for track in 3..=5 {
        stage.ok(Command::PublishTrack {
            by: PARTY_A,
            track: TrackId::new(track),
            kind: TrackKind::Audio,
        });
    }
    assert_eq!(
        stage.refused(Command::PublishTrack {
            by: PARTY_A,
            track: TrackId::new(6),
            kind: TrackKind::Audio,
        }),
        RoomError::TooManyTracks {
            max: crate::MAX_TRACKS_PER_MEMBER
        }
    );

    // Admitted: party B now sees and is seen. Unpublishing removes the track.
    stage.ok(Command::Admit {
        by: MEDIATOR,
        member: PARTY_B,
    });
    assert_eq!(stage.plan.tracks()[0].receivers.len(), 3);
    assert!(stage.plan.allows(TrackId::new(2), party_b));
    stage.ok(Command::UnpublishTrack {
        by: PARTY_A,
        track: TrackId::new(2),
    });
    assert!(!stage.plan.allows(TrackId::new(2), party_b));
}

#[test]
fn the_back_office_invites_members_with_valid_data_only() {
    let mut stage = Stage::new(RoomSettings::default());
    assert_eq!(
        stage.refused(Command::AddMember {
            member: PARTY_A,
            role: Role::Party,
            side: Some(Side::Istante),
            display_name: "Mario Rossi".into(),
        }),
        RoomError::MemberExists(PARTY_A)
    );
    let newcomer = crate::ParticipantId::new(20);
    assert_eq!(
        stage.refused(Command::AddMember {
            member: newcomer,
            role: Role::Mediator,
            side: Some(Side::Chiamata),
            display_name: "Avv. Parziale".into(),
        }),
        RoomError::MediatorWithSide
    );
    assert_eq!(
        stage.refused(Command::AddMember {
            member: newcomer,
            role: Role::Representative,
            side: Some(Side::Other(1)),
            display_name: "".into(),
        }),
        RoomError::EmptyText {
            field: crate::TextField::DisplayName
        }
    );
    stage.ok(Command::AddMember {
        member: newcomer,
        role: Role::Representative,
        side: Some(Side::Other(1)),
        display_name: "Terzo chiamato".into(),
    });
    assert_eq!(
        stage.room.location_of(newcomer),
        Some(Location::WaitingToEnter)
    );
}

#[test]
fn a_session_keeps_at_most_its_cap_of_posts_and_views_page_the_older_ones() {
    let mut stage = Stage::new(RoomSettings::default());
    stage.everyone_in_plenary(&[PARTY_A, PARTY_B]);
    // PARTY_B is sent out for the first two posts: they never reach them, not even by paging.
    stage.ok(Command::SendToWaitingRoom {
        by: MEDIATOR,
        member: PARTY_B,
    });
    stage.chat(PARTY_A, "riservato 1");
    stage.chat(PARTY_A, "riservato 2");
    stage.ok(Command::Admit {
        by: MEDIATOR,
        member: PARTY_B,
    });
    for number in 3..=MAX_POSTS_PER_SESSION {
        stage.chat(PARTY_A, &format!("messaggio {number}"));
    }
    assert_eq!(
        stage.refused(Command::Chat {
            by: PARTY_A,
            text: "uno di troppo".into(),
        }),
        RoomError::SessionFull(SessionId::PLENARY)
    );

    // A view carries only the latest posts.
    let history = stage.room.view_for(PARTY_B).unwrap().history;
    assert_eq!(history.len(), VIEW_HISTORY_POSTS);
    assert_eq!(
        history_texts(&history).last().map(String::as_str),
        Some(format!("messaggio {MAX_POSTS_PER_SESSION}").as_str())
    );
    // Paging back to the start: PARTY_B reads every post they were present for, and no other.
    let mut before = history[0].seq();
    let mut read = history.len();
    loop {
        let page = stage
            .room
            .history_page(PARTY_B, SessionId::PLENARY, before, 10_000)
            .unwrap();
        assert!(page.posts.len() <= MAX_HISTORY_PAGE);
        assert!(!history_texts(&page.posts)
            .iter()
            .any(|text| text.starts_with("riservato")));
        read += page.posts.len();
        if let Some(first) = page.posts.first() {
            before = first.seq();
        }
        if !page.more {
            break;
        }
    }
    assert_eq!(read, MAX_POSTS_PER_SESSION - 2);
    let all = stage
        .room
        .history_page(PARTY_A, SessionId::PLENARY, before, 2)
        .unwrap();
    assert_eq!(history_texts(&all.posts), ["riservato 1", "riservato 2"]);
    // Only one's current session may be paged.
    stage.ok(Command::SendToWaitingRoom {
        by: MEDIATOR,
        member: PARTY_B,
    });
    assert_eq!(
        stage
            .room
            .history_page(PARTY_B, SessionId::PLENARY, before, 10)
            .unwrap_err(),
        RoomError::NotInSession(PARTY_B)
    );
}
