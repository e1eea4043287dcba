//! Mediators' calendar feeds (iCalendar, RFC 5545).
//!
//! - `POST /api/v1/mediators/{id}/calendar` (segreteria): issues the feed; 201 `{ "url" }`,
//!   shown once (a new one replaces it).
//! - `GET /calendar/{token}`: the mediator's meetings as `text/calendar`, for calendar
//!   applications (which cannot log in: the token in the URL is the credential). Events name
//!   the case reference and the place, never the parties.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::access::Permission;
use backoffice::agenda::{self, AgendaError, FeedMeeting};
use backoffice::{StoreError, UnixMillis};
use serde_json::json;
use time::OffsetDateTime;

use crate::auth::ApiUser;
use crate::error::{ApiError, AppError};
use crate::state::AppState;

/// `POST /api/v1/mediators/{id}/calendar`.
pub async fn issue(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    Path(mediator): Path<String>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageAgenda)?;
    let token = agenda::issue_feed(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        &mediator,
    )
    .await
    .map_err(|error| match error {
        AgendaError::Store(StoreError::NotFound) => ApiError(AppError::NotFound),
        AgendaError::Store(error) => ApiError::from(error),
        other => ApiError(AppError::Internal(other.to_string())),
    })?;
    let base = state.config.public_url.as_str().trim_end_matches('/');
    let url = format!("{base}/calendar/{}", token.reveal());
    Ok((StatusCode::CREATED, Json(json!({ "url": url }))).into_response())
}

/// `GET /calendar/{token}`.
pub async fn feed(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let meetings = agenda::feed(&state.db, &token)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        render(&meetings, state.clock_now()),
    )
        .into_response())
}

/// The iCalendar text of `meetings` (times in UTC; lines folded at 75 octets, CRLF).
pub fn render(meetings: &[FeedMeeting], now: UnixMillis) -> String {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Accordo//Agenda//IT".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        "X-WR-CALNAME:Incontri di mediazione".to_owned(),
    ];
    for meeting in meetings {
        let location = match &meeting.place {
            Some((sede, room)) => format!("{sede} – {room}"),
            None => "Online (stanza virtuale Accordo)".to_owned(),
        };
        lines.extend([
            "BEGIN:VEVENT".to_owned(),
            format!("UID:{}@accordo", meeting.id),
            format!("DTSTAMP:{}", utc(now)),
            format!("DTSTART:{}", utc(meeting.starts_at)),
            format!("DTEND:{}", utc(meeting.ends_at)),
            format!(
                "SUMMARY:{}",
                escape(&format!(
                    "Incontro di mediazione – pratica {}",
                    meeting.case_reference
                ))
            ),
            format!("LOCATION:{}", escape(&location)),
            "END:VEVENT".to_owned(),
        ]);
    }
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

    #[test]
    fn events_are_escaped_folded_and_in_utc() {
        let meeting = FeedMeeting {
            id: "m1".to_owned(),
            starts_at: UnixMillis(1_804_842_000_000),
            ends_at: UnixMillis(1_804_845_600_000),
            case_reference: "12/2027".to_owned(),
            place: Some((
                "Sede di Roma, via Appia; 1".to_owned(),
                "Sala grande con vista sul parco e sulla città".to_owned(),
            )),
        };
        let text = render(&[meeting], UnixMillis(1_804_000_000_000));
        assert!(text.contains("DTSTART:20270312T090000Z\r\n"), "{text}");
        assert!(text.contains("DTEND:20270312T100000Z\r\n"), "{text}");
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
    }
}
