//! Durable rooms in the back office: a case and its one room, the room's snapshot saved after
//! every command and loaded back exactly, and personal links that open it.

use std::collections::BTreeMap;
use std::num::NonZeroU8;
use std::time::Duration;

use accordo_tests::{both_backends, TestDb};
use backoffice::mediation::cases::{self, Case, CaseId};
use backoffice::platform::audit::{self, Action, Actor, NewRecord};
use backoffice::platform::organisms;
use backoffice::rooms::invites::{self, InviteError};
use backoffice::rooms::room_store::{self, Serving};
use backoffice::{Db, StoreError, UnixMillis};
use rooms::{
    Command, ConnectionId, FileRef, Location, ParticipantId, Post, Role, Room, RoomId,
    RoomSettings, RoomSnapshot, SessionId, Side, Timestamp,
};

/// 2026-12-01 09:00 UTC.
const OPENED: i64 = 1_796_115_600_000;
const MINUTE: i64 = 60_000;

const MEDIATOR: ParticipantId = ParticipantId::new(1);
const PARTY_A: ParticipantId = ParticipantId::new(2);
const LAWYER_A: ParticipantId = ParticipantId::new(3);
const PARTY_B: ParticipantId = ParticipantId::new(4);
/// The largest id a BIGINT holds: ids survive as they are.
const LAWYER_B: ParticipantId = ParticipantId::new(u64::MAX >> 1);
const THIRD_PARTY: ParticipantId = ParticipantId::new(6);
const OBSERVER: ParticipantId = ParticipantId::new(7);

fn segreteria() -> Actor {
    Actor {
        user_id: None,
        label: "anna.verdi".to_owned(),
        ip: Some("192.0.2.10".to_owned()),
    }
}

fn timestamp(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(u64::try_from(millis).expect("a time after 1970"))
}

fn bigint(id: u64) -> i64 {
    i64::try_from(id).expect("ids fit in a BIGINT")
}

async fn audit_actions(db: &Db) -> Vec<String> {
    let mut records = audit::recent(db.pool(), None, 10_000)
        .await
        .expect("audit log");
    records.reverse();
    records.into_iter().map(|record| record.action).collect()
}

fn occurrences(actions: &[String], action: &str) -> usize {
    actions.iter().filter(|each| *each == action).count()
}

/// Rows of `table` that belong to `room`.
async fn rows(db: &Db, table: &str, room: RoomId) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE room_id = $1"))
        .bind(bigint(room.get()))
        .fetch_one(db.pool())
        .await
        .expect("count rows")
}

async fn new_case(db: &Db, reference: &str) -> Case {
    cases::create_minimal(
        db,
        &segreteria(),
        UnixMillis(OPENED),
        None,
        reference,
        "Locazione via Roma 12",
    )
    .await
    .expect("case created")
}

/// A live room driven the way the edge drives it: after every command the room's snapshot is
/// saved with the command's audit record, and what loads back must be that snapshot exactly.
struct Edge<'a> {
    db: &'a Db,
    room: Room,
    now: i64,
    /// The claim's epoch and the command numbers saved with every snapshot.
    serving: Serving,
}

impl<'a> Edge<'a> {
    /// A new room for a new case, as stored by `create_room` and restored from the database.
    async fn open(db: &'a Db, reference: &str, settings: RoomSettings) -> Edge<'a> {
        let case = new_case(db, reference).await;
        let snapshot =
            room_store::create_room(db, &segreteria(), UnixMillis(OPENED), &case.id, settings)
                .await
                .expect("room created");
        let mut room = Room::restore(snapshot).expect("a new room restores");
        while room.poll_output().is_some() {}
        Edge {
            db,
            room,
            now: OPENED,
            serving: Serving::default(),
        }
    }

    fn id(&self) -> RoomId {
        self.room.id()
    }

    fn advance(&mut self, minutes: i64) {
        self.now += minutes * MINUTE;
    }

    async fn run(&mut self, action: Action, command: Command) {
        self.room
            .handle(timestamp(self.now), command)
            .unwrap_or_else(|error| panic!("{action:?} refused: {error}"));
        while self.room.poll_output().is_some() {}
        let snapshot = self.room.snapshot();
        let entity_id = snapshot.id.to_string();
        let record = NewRecord {
            action,
            entity_type: "room",
            entity_id: &entity_id,
            changes: vec![],
        };
        room_store::save(
            self.db,
            &segreteria(),
            UnixMillis(self.now),
            &snapshot,
            &self.serving,
            Some(record),
        )
        .await
        .expect("room saved");
        assert_eq!(self.load().await, snapshot, "loaded back after {action:?}");
    }

    async fn load(&self) -> RoomSnapshot {
        room_store::load(self.db, self.id())
            .await
            .expect("room loaded")
            .expect("the room is stored")
    }

    async fn add(&mut self, member: ParticipantId, role: Role, side: Option<Side>, name: &str) {
        let command = Command::AddMember {
            member,
            role,
            side,
            display_name: name.into(),
        };
        self.run(Action::RoomMemberAdded, command).await;
    }

    async fn connect(&mut self, member: ParticipantId) {
        let connection = ConnectionId::new(100 + member.get() % 1000);
        self.run(
            Action::RoomMemberConnected,
            Command::Connect { member, connection },
        )
        .await;
    }

    async fn chat(&mut self, by: ParticipantId, text: &str) {
        let command = Command::Chat {
            by,
            text: text.into(),
        };
        self.run(Action::RoomChatPosted, command).await;
    }
}

fn posts_of(snapshot: &RoomSnapshot, session: SessionId) -> Vec<&Post> {
    snapshot
        .sessions
        .iter()
        .filter(|record| record.id == session)
        .flat_map(|record| record.posts.iter().map(|post| &post.post))
        .collect()
}

both_backends! {
    async fn a_case_reference_is_used_once_per_organism(db: TestDb) {
        let db = &db.db;
        let now = UnixMillis(OPENED);
        let organism = organisms::ensure_demo(db, now).await.expect("demo organism");
        let case = cases::create_minimal(
            db, &segreteria(), now, Some(&organism.id), "MED-2026-0042", "  Locazione via Roma 12 ",
        )
        .await
        .expect("case created");
        assert_eq!(case.reference.as_str(), "MED-2026-0042");
        assert_eq!(case.title, "Locazione via Roma 12");
        assert_eq!(case.organism_id.as_deref(), Some(organism.id.as_str()));
        assert_eq!(cases::find(db, &case.id).await.expect("find"), Some(case.clone()));
        assert_eq!(cases::find(db, &CaseId::new("no-such-case")).await.expect("find"), None);

        let again = cases::create_minimal(db, &segreteria(), now, Some(&organism.id), "MED-2026-0042", "Altro")
            .await;
        assert!(matches!(again, Err(StoreError::AlreadyExists("case"))), "{again:?}");

        // Cases without an organism share one namespace of references.
        let loose = cases::create_minimal(db, &segreteria(), now, None, "MED-2026-0042", "Senza organismo")
            .await
            .expect("the same reference without an organism");
        assert_eq!(loose.organism_id, None);
        let again = cases::create_minimal(db, &segreteria(), now, None, "MED-2026-0042", "Altro").await;
        assert!(matches!(again, Err(StoreError::AlreadyExists("case"))), "{again:?}");

        let spaced = cases::create_minimal(db, &segreteria(), now, None, "MED 2026 0043", "Titolo").await;
        assert!(matches!(spaced, Err(StoreError::Invalid("case reference"))), "{spaced:?}");
        let untitled = cases::create_minimal(db, &segreteria(), now, None, "MED-2026-0043", "  ").await;
        assert!(matches!(untitled, Err(StoreError::Invalid("case title"))), "{untitled:?}");
        let orphan = cases::create_minimal(db, &segreteria(), now, Some("no-such-organism"), "MED-2026-0043", "Titolo")
            .await;
        assert!(matches!(orphan, Err(StoreError::NotFound)), "{orphan:?}");

        let records = audit::recent(db.pool(), Some(("case", case.id.as_str())), 10).await.expect("audit");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].action, "case.created");
        assert_eq!(records[0].actor, "anna.verdi");
        assert!(records[0].changes.iter().any(|change| change.field == "reference"
            && change.after.as_deref() == Some("MED-2026-0042")));
        assert_eq!(occurrences(&audit_actions(db).await, "case.created"), 2);
    }

    async fn a_case_has_at_most_one_room(db: TestDb) {
        let db = &db.db;
        let case = new_case(db, "MED-2026-0100").await;
        let settings = RoomSettings {
            lifetime: Duration::from_secs(30 * 24 * 60 * 60),
            capacity: NonZeroU8::new(4).expect("not zero"),
            auto_admit: true,
            hold_when_no_mediator: true,
        };
        let snapshot = room_store::create_room(db, &segreteria(), UnixMillis(OPENED), &case.id, settings)
            .await
            .expect("room created");
        assert!(snapshot.id.get() > 0 && snapshot.id.get() <= u64::MAX >> 1);
        assert_eq!(snapshot.case_ref, case.reference);
        assert_eq!(snapshot.created_at, timestamp(OPENED));
        assert_eq!(snapshot.settings, settings);
        assert!(snapshot.members.is_empty());
        assert_eq!(snapshot.sessions.len(), 1);
        assert_eq!(snapshot.sessions[0].id, SessionId::PLENARY);

        let loaded = room_store::load(db, snapshot.id).await.expect("load");
        assert_eq!(loaded.as_ref(), Some(&snapshot));
        Room::restore(snapshot.clone()).expect("the stored room restores");
        assert_eq!(room_store::room_for_case(db, &case.id).await.expect("lookup"), Some(snapshot.id));
        assert_eq!(room_store::room_case(db, snapshot.id).await.expect("lookup"), Some(case.clone()));

        let second = room_store::create_room(db, &segreteria(), UnixMillis(OPENED), &case.id, settings).await;
        assert!(matches!(second, Err(StoreError::AlreadyExists("room"))), "{second:?}");
        let unknown = room_store::create_room(db, &segreteria(), UnixMillis(OPENED), &CaseId::new("no-such-case"), settings).await;
        assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");

        let other_case = new_case(db, "MED-2026-0101").await;
        assert_eq!(room_store::room_for_case(db, &other_case.id).await.expect("lookup"), None);
        let other = room_store::create_room(db, &segreteria(), UnixMillis(OPENED), &other_case.id, RoomSettings::default())
            .await
            .expect("another case, another room");
        assert_ne!(other.id, snapshot.id);

        // Two offices open the room of the same case at once: one room, one refusal.
        let contested = new_case(db, "MED-2026-0102").await;
        let office = segreteria();
        let (first, second) = tokio::join!(
            room_store::create_room(db, &office, UnixMillis(OPENED), &contested.id, settings),
            room_store::create_room(db, &office, UnixMillis(OPENED), &contested.id, settings),
        );
        let created = [&first, &second].iter().filter(|result| result.is_ok()).count();
        assert_eq!(created, 1, "{first:?} {second:?}");
        assert!(
            [first, second].into_iter().any(|result| matches!(result, Err(StoreError::AlreadyExists("room")))),
        );

        // A save that cannot be stored entirely stores nothing, its audit record included.
        let mut room = Room::restore(snapshot.clone()).expect("restores");
        let too_big = ParticipantId::new(1 << 63);
        room.handle(timestamp(OPENED), Command::AddMember {
            member: too_big,
            role: Role::Party,
            side: None,
            display_name: "Mario Rossi".into(),
        })
        .expect("the room itself takes any id");
        let entity_id = snapshot.id.to_string();
        let record = NewRecord { action: Action::RoomMemberAdded, entity_type: "room", entity_id: &entity_id, changes: vec![] };
        let saved = room_store::save(db, &segreteria(), UnixMillis(OPENED), &room.snapshot(), &Serving::default(), Some(record)).await;
        assert!(matches!(saved, Err(StoreError::Invalid("member id"))), "{saved:?}");
        assert_eq!(room_store::load(db, snapshot.id).await.expect("load"), Some(snapshot.clone()));
        assert_eq!(occurrences(&audit_actions(db).await, "room.member_added"), 0);

        // A room that was never created is neither loaded nor saved.
        let stranger = Room::new(RoomId::new(1), case.reference.clone(), timestamp(OPENED), settings).snapshot();
        assert_eq!(room_store::load(db, stranger.id).await.expect("load"), None);
        assert_eq!(room_store::room_case(db, stranger.id).await.expect("lookup"), None);
        let saved = room_store::save(db, &segreteria(), UnixMillis(OPENED), &stranger, &Serving::default(), None).await;
        assert!(matches!(saved, Err(StoreError::NotFound)), "{saved:?}");

        let records = audit::recent(db.pool(), Some(("room", &snapshot.id.to_string())), 10)
            .await
            .expect("audit");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].action, "room.created");
        let change = |field: &str| {
            records[0].changes.iter().find(|change| change.field == field).and_then(|change| change.after.clone())
        };
        assert_eq!(change("case_id"), Some(case.id.to_string()));
        assert_eq!(change("capacity").as_deref(), Some("4"));
        assert_eq!(change("auto_admit").as_deref(), Some("true"));
        assert_eq!(occurrences(&audit_actions(db).await, "room.created"), 3);
    }

    async fn a_save_under_an_older_claim_is_refused_and_changes_nothing(db: TestDb) {
        let db = &db.db;
        let mut edge = Edge::open(db, "MED-2026-0300", RoomSettings::default()).await;
        let room = edge.id();
        edge.add(MEDIATOR, Role::Mediator, None, "Avv. Giulia Conti").await;
        edge.connect(MEDIATOR).await;

        // Node A takes the room over under epoch 1 and saves the mediator's command 4.
        let (_, serving) = room_store::load_to_serve(db, room, 1).await.expect("taken over").expect("stored");
        assert_eq!(serving, Serving { epoch: 1, last_command_seqs: BTreeMap::new() });
        edge.serving = Serving { epoch: 1, last_command_seqs: BTreeMap::from([(MEDIATOR, 4)]) };
        edge.chat(MEDIATOR, "sotto il primo nodo").await;

        // Node B takes it over under epoch 2 and finds everything A stored.
        let (snapshot, serving) = room_store::load_to_serve(db, room, 2).await.expect("taken over").expect("stored");
        assert_eq!(snapshot, edge.room.snapshot());
        assert_eq!(serving.last_command_seqs, BTreeMap::from([(MEDIATOR, 4)]));
        assert_eq!(room_store::stored_epoch(db, room).await.expect("epoch"), Some(2));

        // A, cut off and unaware, applies one more command: refused, and nothing changes.
        let audit_before = audit_actions(db).await;
        let mut stale = edge.room.clone();
        stale.handle(timestamp(edge.now), Command::Chat { by: MEDIATOR, text: "troppo tardi".into() }).expect("chat");
        let stale_serving = Serving { epoch: 1, last_command_seqs: BTreeMap::from([(MEDIATOR, 5)]) };
        let entity_id = room.get().to_string();
        let record = NewRecord { action: Action::RoomChatPosted, entity_type: "room", entity_id: &entity_id, changes: vec![] };
        let saved = room_store::save(db, &segreteria(), UnixMillis(edge.now), &stale.snapshot(), &stale_serving, Some(record)).await;
        assert!(matches!(saved, Err(StoreError::Fenced)), "{saved:?}");
        assert_eq!(edge.load().await, snapshot);
        assert_eq!(audit_actions(db).await, audit_before);
        let late = room_store::load_to_serve(db, room, 1).await;
        assert!(matches!(late, Err(StoreError::Fenced)), "{late:?}");
        assert_eq!(room_store::stored_epoch(db, room).await.expect("epoch"), Some(2));

        // B saves under its epoch; a member's command number never goes back.
        edge.serving = Serving { epoch: 2, last_command_seqs: BTreeMap::from([(MEDIATOR, 3)]) };
        edge.chat(MEDIATOR, "sotto il secondo nodo").await;
        let (_, serving) = room_store::load_to_serve(db, room, 3).await.expect("taken over").expect("stored");
        assert_eq!(serving.last_command_seqs, BTreeMap::from([(MEDIATOR, 4)]));

        // A room that was never created is not taken over.
        assert_eq!(room_store::load_to_serve(db, RoomId::new(1), 1).await.expect("lookup"), None);
        assert_eq!(room_store::stored_epoch(db, RoomId::new(1)).await.expect("lookup"), None);
    }

    async fn a_room_comes_back_exactly_after_a_meeting_with_a_caucus(db: TestDb) {
        let db = &db.db;
        let mut edge = Edge::open(db, "MED-2026-0200", RoomSettings::default()).await;
        let room = edge.id();

        // The segreteria invites everybody; the mediator and both sides connect and are admitted.
        edge.add(MEDIATOR, Role::Mediator, None, "Avv. Giulia Conti").await;
        edge.add(PARTY_A, Role::Party, Some(Side::Istante), "Mario Rossi").await;
        edge.add(LAWYER_A, Role::Lawyer, Some(Side::Istante), "Avv. Luca Bianchi").await;
        edge.add(PARTY_B, Role::Party, Some(Side::Chiamata), "Edilizia Verdi S.r.l.").await;
        edge.add(LAWYER_B, Role::Lawyer, Some(Side::Chiamata), "Avv. Sara Neri").await;
        edge.add(THIRD_PARTY, Role::Representative, Some(Side::Other(3)), "Assicurazioni Blu").await;
        edge.add(OBSERVER, Role::SegreteriaObserver, None, "Segreteria ODM").await;
        for member in [MEDIATOR, PARTY_A, LAWYER_A, PARTY_B, LAWYER_B] {
            edge.connect(member).await;
        }
        for member in [PARTY_A, LAWYER_A, PARTY_B, LAWYER_B] {
            edge.run(Action::RoomMemberAdmitted, Command::Admit { by: MEDIATOR, member }).await;
        }
        edge.chat(MEDIATOR, "Buongiorno a tutti, iniziamo.").await;

        // The mediator takes side A aside: chat, a document and a timer in the caucus.
        edge.advance(20);
        edge.run(Action::RoomCaucusStarted, Command::StartCaucus { by: MEDIATOR, members: vec![PARTY_A, LAWYER_A] })
            .await;
        let caucus = SessionId::new(1);
        assert_eq!(edge.room.location_of(PARTY_A), Some(Location::InSession(caucus)));
        edge.chat(PARTY_A, "Potremmo accettare 12.000 euro.").await;
        edge.run(Action::RoomFileShared, Command::ShareFile {
            by: LAWYER_A,
            file: FileRef::parse("doc-2026-0200-7").expect("file reference"),
            name: "Perizia tecnica.pdf".into(),
        })
        .await;
        let ends_at = timestamp(edge.now + 15 * MINUTE);
        edge.run(Action::RoomCaucusTimerSet, Command::SetCaucusTimer { by: MEDIATOR, session: caucus, ends_at: Some(ends_at) })
            .await;
        // Meanwhile side B talks in the plenary; the mediator sends one lawyer out and revokes the
        // observer's link.
        edge.chat(PARTY_B, "Restiamo in attesa.").await;
        edge.run(Action::RoomMemberSentToWaitingRoom, Command::SendToWaitingRoom { by: MEDIATOR, member: LAWYER_B })
            .await;
        edge.run(Action::RoomInviteRevoked, Command::RevokeInvite { member: OBSERVER }).await;

        let during = edge.load().await;
        assert_eq!(during.sessions.len(), 2);
        assert_eq!(during.sessions[1].timer_ends_at, Some(ends_at));
        assert_eq!(posts_of(&during, caucus).len(), 2);
        assert_eq!(posts_of(&during, SessionId::PLENARY).len(), 2);
        assert!(matches!(posts_of(&during, caucus)[1], Post::File(file) if file.name.expose() == "Perizia tecnica.pdf"));
        let by_id = |id: ParticipantId| during.members.iter().find(|member| member.id == id).expect("member");
        assert_eq!(by_id(LAWYER_B).location, Location::SentToWaitingRoom);
        assert_eq!(by_id(THIRD_PARTY).location, Location::WaitingToEnter);
        assert_eq!(by_id(THIRD_PARTY).side, Some(Side::Other(3)));
        assert!(by_id(OBSERVER).invite_revoked);
        Room::restore(during.clone()).expect("the loaded snapshot restores");

        // Saving the same snapshot again changes nothing.
        let tables = ["room_members", "room_sessions", "room_posts", "room_post_audience"];
        let mut before = Vec::new();
        for table in tables {
            before.push(rows(db, table, room).await);
        }
        let audit_before = audit_actions(db).await.len();
        room_store::save(db, &segreteria(), UnixMillis(edge.now + MINUTE), &during, &Serving::default(), None)
            .await
            .expect("saved again");
        let mut after = Vec::new();
        for table in tables {
            after.push(rows(db, table, room).await);
        }
        assert_eq!(before, after);
        assert_eq!(before, vec![7, 2, 4, 13]);
        assert_eq!(audit_actions(db).await.len(), audit_before);
        assert_eq!(edge.load().await, during);

        // The caucus ends: it is no longer loaded, but its chat stays with the case.
        edge.advance(10);
        let ended_at = edge.now;
        edge.run(Action::RoomCaucusEnded, Command::EndCaucus { by: MEDIATOR, session: caucus }).await;
        let after_caucus = edge.load().await;
        assert_eq!(after_caucus.sessions.len(), 1);
        assert!(posts_of(&after_caucus, caucus).is_empty());
        assert_eq!(posts_of(&after_caucus, SessionId::PLENARY).len(), 2);
        assert_eq!(rows(db, "room_posts", room).await, 4);
        let kept: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, kind FROM room_posts WHERE room_id = $1 AND session_id = 1 ORDER BY seq",
        )
        .bind(bigint(room.get()))
        .fetch_all(db.pool())
        .await
        .expect("caucus posts");
        assert_eq!(kept, vec![(2, "chat".to_owned()), (3, "file".to_owned())]);
        let ended: Option<i64> = sqlx::query_scalar(
            "SELECT ended_at FROM room_sessions WHERE room_id = $1 AND session_id = 1",
        )
        .bind(bigint(room.get()))
        .fetch_one(db.pool())
        .await
        .expect("caucus row");
        assert_eq!(ended, Some(ended_at));

        // The mediator drops out: everybody in a session is held for them; that is stored too.
        edge.run(Action::RoomMemberDisconnected, Command::Disconnect { member: MEDIATOR, connection: ConnectionId::new(101) })
            .await;
        let held = edge.load().await;
        assert!(held.members.iter().any(|member| member.id == PARTY_A
            && member.location == Location::HeldForMediator { previous: SessionId::PLENARY }));

        // Restarted from the database: the counters go on where they were.
        let restored = Room::restore(held.clone()).expect("the loaded snapshot restores");
        assert_eq!(restored.snapshot(), held);
        edge.room = restored;
        while edge.room.poll_output().is_some() {}
        edge.advance(5);
        edge.connect(MEDIATOR).await;
        edge.connect(PARTY_B).await;
        edge.run(Action::RoomCaucusStarted, Command::StartCaucus { by: MEDIATOR, members: vec![PARTY_B] }).await;
        assert_eq!(edge.room.location_of(PARTY_B), Some(Location::InSession(SessionId::new(2))));
        edge.chat(PARTY_B, "Possiamo arrivare a 10.000 euro.").await;
        let last = edge.load().await;
        let new_posts = posts_of(&last, SessionId::new(2));
        assert_eq!(new_posts.len(), 1);
        assert_eq!(new_posts[0].seq().get(), 5);

        let actions = audit_actions(db).await;
        for expected in [
            "case.created", "room.created", "room.member_added", "room.member_connected", "room.member_admitted",
            "room.chat_posted", "room.caucus_started", "room.file_shared", "room.caucus_timer_set",
            "room.member_sent_to_waiting_room", "room.invite_revoked", "room.caucus_ended", "room.member_disconnected",
        ] {
            assert!(actions.iter().any(|action| action == expected), "{expected} missing from {actions:?}");
        }
        assert_eq!(occurrences(&actions, "room.member_added"), 7);
        assert_eq!(occurrences(&actions, "room.caucus_started"), 2);
    }

    async fn links_issued_all_at_once_are_all_issued(db: TestDb) {
        // Issuing a link reads (is the member in the room?) before it writes. On SQLite a
        // transaction that began deferred would fail at once with "database is locked" when
        // another writer committed in between; each one waits its turn instead.
        let db = &db.db;
        let mut edge = Edge::open(db, "MED-2026-0400", RoomSettings::default()).await;
        let room = edge.id();
        let members = [MEDIATOR, PARTY_A, LAWYER_A, PARTY_B];
        edge.add(MEDIATOR, Role::Mediator, None, "Avv. Giulia Conti").await;
        edge.add(PARTY_A, Role::Party, Some(Side::Istante), "Mario Rossi").await;
        edge.add(LAWYER_A, Role::Lawyer, Some(Side::Istante), "Avv. Paolo Neri").await;
        edge.add(PARTY_B, Role::Party, Some(Side::Chiamata), "Lucia Bianchi").await;
        let actor = segreteria();
        let issued = futures_util::future::join_all((0..40).map(|round| {
            let member = members[round % members.len()];
            invites::issue(db, &actor, UnixMillis(OPENED + MINUTE), room, member, None)
        }))
        .await;
        for result in issued {
            result.expect("every link issued");
        }
        assert_eq!(occurrences(&audit_actions(db).await, "invite.issued"), 40);
    }

    async fn a_personal_link_opens_the_room_until_replaced_or_revoked(db: TestDb) {
        let db = &db.db;
        let mut edge = Edge::open(db, "MED-2026-0300", RoomSettings::default()).await;
        let room = edge.id();
        edge.add(MEDIATOR, Role::Mediator, None, "Avv. Giulia Conti").await;
        edge.add(PARTY_A, Role::Party, Some(Side::Istante), "Mario Rossi").await;
        let now = UnixMillis(OPENED + MINUTE);

        let first = invites::issue(db, &segreteria(), now, room, PARTY_A, Some("mario.rossi@example.invalid"))
            .await
            .expect("link issued");
        assert_eq!(first.reveal().len(), 43);
        assert_eq!(format!("{first:?}"), "InviteToken(***)");
        assert_eq!(invites::resolve(db, first.reveal()).await.expect("resolved"), (room, PARTY_A));
        let invite = invites::current(db, room, PARTY_A).await.expect("invite").expect("issued");
        assert_eq!(invite.email.as_deref(), Some("mario.rossi@example.invalid"));
        assert_eq!((invite.issued_at, invite.revoked_at), (now, None));

        // Only a hash of the token is stored.
        let hashes: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM room_invites")
            .fetch_all(db.pool())
            .await
            .expect("hashes");
        assert_eq!(hashes.len(), 1);
        assert_eq!(hashes[0].len(), 64);
        assert!(!hashes[0].contains(first.reveal()));

        // A new link replaces the old one, which stops working; the email stays.
        let second = invites::issue(db, &segreteria(), now, room, PARTY_A, None).await.expect("issued again");
        assert_ne!(second, first);
        assert!(matches!(invites::resolve(db, first.reveal()).await, Err(InviteError::Unknown)));
        assert_eq!(invites::resolve(db, second.reveal()).await.expect("resolved"), (room, PARTY_A));
        let invite = invites::current(db, room, PARTY_A).await.expect("invite").expect("issued");
        assert_eq!(invite.email.as_deref(), Some("mario.rossi@example.invalid"));

        // Revoked: the link is recognised, and refused. Revoking again changes nothing.
        let later = UnixMillis(OPENED + 2 * MINUTE);
        invites::revoke(db, &segreteria(), later, room, PARTY_A).await.expect("revoked");
        assert!(matches!(invites::resolve(db, second.reveal()).await, Err(InviteError::Revoked)));
        let invite = invites::current(db, room, PARTY_A).await.expect("invite").expect("issued");
        assert_eq!(invite.revoked_at, Some(later));
        invites::revoke(db, &segreteria(), later, room, PARTY_A).await.expect("revoked again");
        // A member without a link has nothing to revoke.
        invites::revoke(db, &segreteria(), later, room, MEDIATOR).await.expect("nothing to revoke");
        assert_eq!(invites::current(db, room, MEDIATOR).await.expect("invite"), None);

        // A link issued after a revocation works again.
        let third = invites::issue(db, &segreteria(), later, room, PARTY_A, None).await.expect("issued");
        assert_eq!(invites::resolve(db, third.reveal()).await.expect("resolved"), (room, PARTY_A));

        // Forged and garbled links.
        let forged = "A".repeat(43);
        assert!(matches!(invites::resolve(db, &forged).await, Err(InviteError::Unknown)));
        for garbage in ["", "not-a-token", "../../etc/passwd", &format!("{}=", &third.reveal()[..42])] {
            assert!(matches!(invites::resolve(db, garbage).await, Err(InviteError::Malformed)), "{garbage:?}");
        }
        let too_long = format!("{}A", third.reveal());
        assert!(matches!(invites::resolve(db, &too_long).await, Err(InviteError::Malformed)));

        // Only members of the saved room get links.
        let stranger = ParticipantId::new(99);
        let issued = invites::issue(db, &segreteria(), later, room, stranger, None).await;
        assert!(matches!(issued, Err(StoreError::NotFound)), "{issued:?}");
        let revoked = invites::revoke(db, &segreteria(), later, room, stranger).await;
        assert!(matches!(revoked, Err(StoreError::NotFound)), "{revoked:?}");

        let actions = audit_actions(db).await;
        assert_eq!(occurrences(&actions, "invite.issued"), 3);
        assert_eq!(occurrences(&actions, "invite.revoked"), 1);
        let records = audit::recent(db.pool(), Some(("room", &room.to_string())), 100).await.expect("audit");
        let text = format!("{records:?}");
        for token in [&first, &second, &third] {
            assert!(!text.contains(token.reveal()), "a token reached the audit log");
        }
        let issued = records.iter().filter(|record| record.action == "invite.issued");
        for record in issued {
            let token = record.changes.iter().find(|change| change.field == "token").expect("token change");
            assert_eq!(token.after.as_deref(), Some("***"));
        }
    }
}
