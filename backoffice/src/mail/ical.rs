//! iCalendar (RFC 5545) text: the mediators' feeds and the `.ics` attached to invitations
//! (iTIP methods REQUEST and CANCEL, RFC 5546). Times are written in UTC; lines are folded
//! at 75 octets and end in CRLF.

use time::OffsetDateTime;

use crate::UnixMillis;

/// One meeting as a calendar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// The meeting id: the same UID across updates, so a calendar replaces the event.
    pub uid: &'a str,
    /// Bumped at every change of the meeting (RFC 5545 SEQUENCE).
    pub sequence: u32,
    pub starts_at: UnixMillis,
    pub ends_at: UnixMillis,
    pub summary: &'a str,
    pub location: &'a str,
    pub description: Option<&'a str>,
    /// The link to the online room, if the event is online.
    pub url: Option<&'a str>,
}

/// What an attached calendar object asks of the recipient's calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Add or update the event.
    Request,
    /// Remove the event.
    Cancel,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        }
    }
}

/// A feed: every event, without method (a subscribed calendar).
pub fn feed(name: &str, events: &[Event<'_>], now: UnixMillis) -> String {
    let mut lines = header(None);
    lines.push(format!("X-WR-CALNAME:{}", escape(name)));
    for event in events {
        push_event(&mut lines, event, now, &[]);
    }
    finish(lines)
}

/// The calendar object attached to an invitation of `attendee` (`(name, address)`) by
/// `organizer` (`(name, address)`).
pub fn invitation(
    event: &Event<'_>,
    method: Method,
    now: UnixMillis,
    organizer: (&str, &str),
    attendee: (&str, &str),
) -> String {
    let mut lines = header(Some(method));
    let status = match method {
        Method::Request => "STATUS:CONFIRMED",
        Method::Cancel => "STATUS:CANCELLED",
    };
    let people = [
        status.to_owned(),
        format!(
            "ORGANIZER;CN={}:mailto:{}",
            parameter(organizer.0),
            organizer.1
        ),
        format!(
            "ATTENDEE;CN={};ROLE=REQ-PARTICIPANT;RSVP=FALSE:mailto:{}",
            parameter(attendee.0),
            attendee.1
        ),
    ];
    push_event(&mut lines, event, now, &people);
    finish(lines)
}

fn header(method: Option<Method>) -> Vec<String> {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Accordo//Agenda//IT".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
    ];
    if let Some(method) = method {
        lines.push(format!("METHOD:{}", method.name()));
    }
    lines
}

fn push_event(lines: &mut Vec<String>, event: &Event<'_>, now: UnixMillis, extra: &[String]) {
    lines.extend([
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@accordo", event.uid),
        format!("SEQUENCE:{}", event.sequence),
        format!("DTSTAMP:{}", utc(now)),
        format!("DTSTART:{}", utc(event.starts_at)),
        format!("DTEND:{}", utc(event.ends_at)),
        format!("SUMMARY:{}", escape(event.summary)),
        format!("LOCATION:{}", escape(event.location)),
    ]);
    if let Some(description) = event.description {
        lines.push(format!("DESCRIPTION:{}", escape(description)));
    }
    if let Some(url) = event.url {
        lines.push(format!("URL:{url}"));
    }
    lines.extend(extra.iter().cloned());
    lines.push("END:VEVENT".to_owned());
}

fn finish(mut lines: Vec<String>) -> String {
    lines.push("END:VCALENDAR".to_owned());
    lines.iter().map(|line| fold(line)).collect()
}

/// `YYYYMMDDTHHMMSSZ`.
fn utc(at: UnixMillis) -> String {
    match OffsetDateTime::from_unix_timestamp(at.0.div_euclid(1000)) {
        Ok(time) => format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            time.year(),
            u8::from(time.month()),
            time.day(),
            time.hour(),
            time.minute(),
            time.second()
        ),
        Err(_) => "19700101T000000Z".to_owned(),
    }
}

/// TEXT escaping (RFC 5545 §3.3.11).
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            ';' => escaped.push_str("\\;"),
            ',' => escaped.push_str("\\,"),
            '\n' => escaped.push_str("\\n"),
            '\r' => {}
            other => escaped.push(other),
        }
    }
    escaped
}

/// A parameter value (RFC 5545 §3.2): quoted, without the characters it cannot hold.
fn parameter(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| !matches!(c, '"' | '\r' | '\n'))
        .collect();
    format!("\"{clean}\"")
}

/// `text` with its folded lines joined again (RFC 5545 §3.1): one content line per CRLF.
pub(crate) fn unfold(text: &str) -> String {
    text.replace("\r\n ", "").replace("\r\n\t", "")
}

/// Unfolded `text` folded again, line by line (after a value in it was replaced).
pub(crate) fn refold(text: &str) -> String {
    text.split_terminator("\r\n").map(fold).collect()
}

/// One content line, folded after 75 octets (never inside a character), ending in CRLF.
fn fold(line: &str) -> String {
    let mut folded = String::with_capacity(line.len() + 8);
    let mut octets = 0;
    for c in line.chars() {
        if octets + c.len_utf8() > 75 {
            folded.push_str("\r\n ");
            octets = 1;
        }
        folded.push(c);
        octets += c.len_utf8();
    }
    folded.push_str("\r\n");
    folded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(location: &'a str) -> Event<'a> {
        Event {
            uid: "m1",
            sequence: 2,
            starts_at: UnixMillis(1_804_842_000_000),
            ends_at: UnixMillis(1_804_845_600_000),
            summary: "Incontro di mediazione – pratica 12/2027",
            location,
            description: None,
            url: None,
        }
    }

    #[test]
    fn unfolding_then_folding_gives_the_same_text() {
        let long = "x".repeat(200);
        let text = feed(&long, &[event(&long)], UnixMillis(0));
        assert!(!unfold(&text).contains("\r\n "));
        assert_eq!(refold(&unfold(&text)), text);
    }

    #[test]
    fn events_are_escaped_folded_and_in_utc() {
        let location = "Sede di Roma, via Appia; 1 – Sala grande con vista sul parco e sulla città";
        let text = feed(
            "Incontri di mediazione",
            &[event(location)],
            UnixMillis(1_804_000_000_000),
        );
        assert!(text.contains("DTSTART:20270312T090000Z\r\n"), "{text}");
        assert!(text.contains("DTEND:20270312T100000Z\r\n"), "{text}");
        assert!(text.contains("SEQUENCE:2\r\n"), "{text}");
        assert!(
            text.contains("SUMMARY:Incontro di mediazione – pratica 12/2027\r\n"),
            "{text}"
        );
        assert!(
            text.contains("LOCATION:Sede di Roma\\, via Appia\\; 1 – Sala grande"),
            "{text}"
        );
        for line in text.split("\r\n") {
            assert!(line.len() <= 75, "{line:?} is {} octets", line.len());
        }
        let unfolded = text.replace("\r\n ", "");
        assert!(unfolded.contains("sulla città\r\n"), "{unfolded}");
        assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.ends_with("END:VCALENDAR\r\n"));
        assert!(!text.contains("METHOD:"), "a feed has no method");
    }

    #[test]
    fn invitations_name_method_organizer_and_attendee() {
        let now = UnixMillis(1_804_000_000_000);
        let organizer = ("Segreteria \"Conciliare\"", "noreply@example.org");
        let attendee = ("Mario Rossi", "mario@example.org");
        let text = invitation(&event("Online"), Method::Cancel, now, organizer, attendee)
            .replace("\r\n ", "");
        assert!(text.contains("METHOD:CANCEL\r\n"), "{text}");
        assert!(text.contains("STATUS:CANCELLED\r\n"), "{text}");
        assert!(
            text.contains("ORGANIZER;CN=\"Segreteria Conciliare\":mailto:noreply@example.org"),
            "{text}"
        );
        assert!(
            text.contains("ATTENDEE;CN=\"Mario Rossi\";ROLE=REQ-PARTICIPANT;RSVP=FALSE:mailto:mario@example.org"),
            "{text}"
        );
    }
}
