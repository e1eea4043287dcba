//! The agenda as the segreteria and the mediators read it: a day, a week (Monday to Sunday) or
//! a month (whole weeks), in Italian time, with the way to the previous and next period.
//! A mediator who may not see every case sees only their own meetings.
//!
//! `GET /agenda?vista=giorno|settimana|mese&data=YYYY-MM-DD` (default: this week); the
//! offices (sedi) and their meeting rooms at `GET /sedi`, `POST /sedi`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use backoffice::mediation::agenda::{self, AgendaItem};
use backoffice::mediation::cases::CaseId;
use backoffice::platform::access::Permission;
use backoffice::platform::rome_time;
use backoffice::UnixMillis;
use serde::Deserialize;
use time::{Date, Duration, Month};

use crate::http::auth::CurrentUser;
use crate::http::csrf::CsrfToken;
use crate::http::error::AppError;
use crate::http::render::{render, Nav, PageForm};
use crate::state::AppState;

/// The span an agenda page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Day,
    Week,
    Month,
}

impl View {
    fn parse(code: Option<&str>) -> View {
        match code {
            Some("giorno") => View::Day,
            Some("mese") => View::Month,
            _ => View::Week,
        }
    }

    fn code(self) -> &'static str {
        match self {
            View::Day => "giorno",
            View::Week => "settimana",
            View::Month => "mese",
        }
    }

    /// The first day shown and how many days, for a view around `day`; and the days to move
    /// for the previous and next page.
    fn span(self, day: Date) -> (Date, i64) {
        let monday =
            |day: Date| day - Duration::days(i64::from(day.weekday().number_days_from_monday()));
        match self {
            View::Day => (day, 1),
            View::Week => (monday(day), 7),
            View::Month => {
                let first = day.replace_day(1).unwrap_or(day);
                let start = monday(first);
                let next_month = match first.month() {
                    Month::December => {
                        Date::from_calendar_date(first.year() + 1, Month::January, 1)
                    }
                    month => Date::from_calendar_date(first.year(), month.next(), 1),
                }
                .unwrap_or(first);
                let weeks = ((next_month - start).whole_days() + 6) / 7;
                (start, weeks * 7)
            }
        }
    }

    fn step(self, day: Date, forward: bool) -> Date {
        let sign = if forward { 1 } else { -1 };
        match self {
            View::Day => day + Duration::days(sign),
            View::Week => day + Duration::days(7 * sign),
            View::Month => {
                let first = day.replace_day(1).unwrap_or(day);
                if forward {
                    first + Duration::days(32)
                } else {
                    first - Duration::days(1)
                }
                .replace_day(1)
                .unwrap_or(first)
            }
        }
    }
}

/// `YYYY-MM-DD` of a date.
fn iso(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

fn parse_date(text: &str) -> Option<Date> {
    let (year, month, day) = backoffice::platform::dates::parse(text)?;
    Date::from_calendar_date(i32::from(year), Month::try_from(month).ok()?, day).ok()
}

struct Entry {
    time: String,
    case_id: CaseId,
    reference: String,
    title: String,
    place: String,
    mediator: String,
}

struct DayColumn {
    label: String,
    iso: String,
    in_month: bool,
    today: bool,
    entries: Vec<Entry>,
}

#[derive(Template)]
#[template(path = "agenda/agenda.html")]
struct AgendaPage {
    nav: Nav,
    view: &'static str,
    title: String,
    previous: String,
    next: String,
    today: String,
    days: Vec<DayColumn>,
    /// Month view: the days in rows of seven.
    weeks: Vec<Vec<usize>>,
    count: usize,
    only_mine: bool,
}

#[derive(Debug, Deserialize)]
pub struct AgendaQuery {
    #[serde(default)]
    vista: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

fn month_name(day: Date) -> &'static str {
    rome_time::month_name(u8::from(day.month()))
}

/// `GET /agenda`.
pub async fn agenda(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Query(query): Query<AgendaQuery>,
) -> Result<Response, AppError> {
    current.require(Permission::ViewCases)?;
    let only_mine = !current.allows(Permission::ViewAllCases);
    let now = state.clock_now();
    let today = parse_date(&rome_time::date(now)).unwrap_or(Date::MIN);
    let view = View::parse(query.vista.as_deref());
    let day = query.data.as_deref().and_then(parse_date).unwrap_or(today);
    let (first, count) = view.span(day);
    let last = first + Duration::days(count);
    let from = rome_time::at_local(&iso(first), 0).unwrap_or(UnixMillis(0));
    let to = rome_time::at_local(&iso(last), 0).unwrap_or(UnixMillis(i64::MAX));
    let items = agenda::between(
        &state.db,
        current.user.organism_id.as_deref(),
        (from, to),
        only_mine.then_some(current.user.id.as_str()),
    )
    .await?;
    let total = items.len();
    let mut days: Vec<DayColumn> = (0..count)
        .map(|offset| {
            let date = first + Duration::days(offset);
            let at = rome_time::at_local(&iso(date), 12 * 60).unwrap_or(now);
            DayColumn {
                label: if view == View::Month {
                    date.day().to_string()
                } else {
                    rome_time::long_date(at)
                },
                iso: iso(date),
                in_month: view != View::Month || date.month() == day.month(),
                today: date == today,
                entries: Vec::new(),
            }
        })
        .collect();
    for item in items {
        let date = rome_time::date(item.starts_at);
        if let Some(column) = days.iter_mut().find(|column| column.iso == date) {
            column.entries.push(entry(item));
        }
    }
    let title = match view {
        View::Day => rome_time::long_date(from),
        View::Week => format!(
            "Settimana dal {} al {}",
            rome_time::long_date(from),
            rome_time::long_date(UnixMillis(to.0 - 1))
        ),
        View::Month => format!("{} {}", month_name(day), day.year()),
    };
    let weeks = if view == View::Month {
        (0..days.len())
            .collect::<Vec<_>>()
            .chunks(7)
            .map(<[usize]>::to_vec)
            .collect()
    } else {
        Vec::new()
    };
    Ok(render(&AgendaPage {
        nav: Nav::new(&current, &csrf),
        view: view.code(),
        title,
        previous: iso(view.step(day, false)),
        next: iso(view.step(day, true)),
        today: iso(today),
        days,
        weeks,
        count: total,
        only_mine,
    }))
}

fn entry(item: AgendaItem) -> Entry {
    Entry {
        time: format!(
            "{}–{}",
            rome_time::clock(item.starts_at),
            rome_time::clock(item.ends_at)
        ),
        case_id: item.case_id,
        reference: item.case_reference,
        title: item.case_title,
        place: match item.place {
            Some((sede, room)) => format!("{sede}, {room}"),
            None => "online".to_owned(),
        },
        mediator: item.mediator.unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "agenda/places.html")]
struct PlacesPage {
    nav: Nav,
    /// `(sede, rooms)` by sede.
    sedi: Vec<(String, Vec<String>)>,
    error: Option<String>,
}

async fn places_page(
    state: &AppState,
    current: &CurrentUser,
    csrf: &CsrfToken,
    error: Option<String>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageAgenda)?;
    let mut sedi: Vec<(String, Vec<String>)> = Vec::new();
    for (_, sede, room) in agenda::places(&state.db, current.user.organism_id.as_deref()).await? {
        match sedi.last_mut() {
            Some((last, rooms)) if *last == sede => rooms.push(room),
            _ => sedi.push((sede, vec![room])),
        }
    }
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = PlacesPage {
        nav: Nav::new(current, csrf),
        sedi,
        error,
    };
    Ok((status, render(&page)).into_response())
}

/// `GET /sedi`: the organism's offices and their meeting rooms.
pub async fn places(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, AppError> {
    places_page(&state, &current, &csrf, None).await
}

#[derive(Debug, Deserialize)]
pub struct PlaceForm {
    sede: String,
    room: String,
}

/// `POST /sedi`: a meeting room of a sede (a new sede is made by its first room).
pub async fn add_place(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    PageForm(form): PageForm<PlaceForm>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageAgenda)?;
    let organism = current.user.organism_id.as_deref();
    let added = agenda::add_place(
        &state.db,
        &current.actor(),
        state.clock_now(),
        organism,
        (&form.sede, &form.room),
    )
    .await;
    match added {
        Ok(_) => Ok(Redirect::to("/sedi").into_response()),
        Err(agenda::AgendaError::Invalid(message)) => {
            let message = crate::http::error::capitalised(message);
            places_page(&state, &current, &csrf, Some(message)).await
        }
        Err(agenda::AgendaError::Store(error)) => Err(error.into()),
        Err(agenda::AgendaError::Conflicts(_)) => Err(AppError::Internal("conflicts".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        parse_date(text).expect("date")
    }

    #[test]
    fn weeks_start_on_monday_and_months_are_whole_weeks() {
        assert_eq!(View::Week.span(date("2027-03-12")), (date("2027-03-08"), 7));
        assert_eq!(View::Day.span(date("2027-03-12")), (date("2027-03-12"), 1));
        // March 2027: Monday 1 to Wednesday 31, so five weeks from 1 March.
        assert_eq!(
            View::Month.span(date("2027-03-12")),
            (date("2027-03-01"), 35)
        );
        // August 2026 starts on a Saturday and ends on a Monday: six weeks from 27 July.
        assert_eq!(
            View::Month.span(date("2026-08-10")),
            (date("2026-07-27"), 42)
        );
        // February 2026 starts on a Sunday and ends on a Saturday: five weeks.
        assert_eq!(
            View::Month.span(date("2026-02-10")),
            (date("2026-01-26"), 35)
        );
        assert_eq!(
            View::Month.step(date("2027-01-31"), true),
            date("2027-02-01")
        );
        assert_eq!(
            View::Month.step(date("2027-03-31"), false),
            date("2027-02-01")
        );
        assert_eq!(
            View::Week.step(date("2027-03-12"), false),
            date("2027-03-05")
        );
    }
}
