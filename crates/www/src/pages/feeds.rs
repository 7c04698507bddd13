//! `/rss` and `/atom`: failed builds, filtered like the waterfall (builder=, category=,
//! branch=, num_events=). Hand-written XML: every text and attribute goes through [`xml`].

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use model::Results;
use store::pages::BuildFilter;

use super::args::Args;
use super::view::{self, internal, Catalog};
use super::waterfall::selected;
use crate::{AppState, WebError};

/// Escapes text for XML content and attribute values; drops characters XML 1.0 forbids.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

struct Item {
    title: String,
    link: String,
    summary: String,
    time: i64,
    id: i64,
}

async fn failed_builds(
    state: &AppState,
    query: Option<&str>,
) -> Result<(String, String, Vec<Item>), WebError> {
    super::require_view(state)?;
    let args = Args::parse(query);
    let catalog = Catalog::of(state);
    let shown = selected(&catalog, &args);
    let rows = state
        .shared
        .store
        .builds_filtered(&BuildFilter {
            builders: Some(shown.iter().map(|b| b.id).collect()),
            branches: args.all("branch"),
            results: Some(vec![Results::Failure, Results::Exception]),
            finished_only: true,
            by_completion: true,
            limit: args.count("num_events", 20, 200),
            ..BuildFilter::default()
        })
        .await
        .map_err(internal)?;
    let runtime = state.shared.runtime();
    let base = runtime
        .config
        .buildbot_url
        .trim_end_matches('/')
        .to_string();
    let items = rows
        .iter()
        .map(|r| {
            let b = view::build(&catalog, &r.build);
            let builder = b["builder"].as_str().unwrap_or_default();
            Item {
                title: format!(
                    "{builder} build #{} {}",
                    r.build.number,
                    b["result"].as_str().unwrap_or_default()
                ),
                link: format!("{base}{}", b["url"].as_str().unwrap_or_default()),
                summary: format!(
                    "{builder} #{}: {} (branch {}, revision {})",
                    r.build.number,
                    r.build.state_string,
                    r.branch.as_deref().unwrap_or("default"),
                    r.revision.as_deref().unwrap_or("unknown")
                ),
                time: r.build.complete_at.unwrap_or(r.build.started_at),
                id: r.build.id.0,
            }
        })
        .collect();
    Ok((runtime.config.title.clone(), base, items))
}

/// `/rss`.
pub(crate) async fn rss(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let (title, base, items) = failed_builds(&state, query.as_deref()).await?;
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel>");
    out.push_str(&format!(
        "<title>{} failed builds</title><link>{}/</link><description>Failed builds of {}</description>",
        xml(&title),
        xml(&base),
        xml(&title)
    ));
    for item in &items {
        let date = chrono::DateTime::from_timestamp(item.time, 0)
            .map(|t| t.to_rfc2822())
            .unwrap_or_default();
        out.push_str(&format!(
            "<item><title>{}</title><link>{}</link><description>{}</description><pubDate>{}</pubDate><guid isPermaLink=\"false\">build-{}</guid></item>",
            xml(&item.title), xml(&item.link), xml(&item.summary), xml(&date), item.id
        ));
    }
    out.push_str("</channel></rss>\n");
    Ok((
        [(header::CONTENT_TYPE, "application/rss+xml; charset=utf-8")],
        out,
    )
        .into_response())
}

/// `/atom`.
pub(crate) async fn atom(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let (title, base, items) = failed_builds(&state, query.as_deref()).await?;
    let updated = items.first().map(|i| i.time).unwrap_or(0);
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">",
    );
    out.push_str(&format!(
        "<title>{} failed builds</title><id>{}/atom</id><link href=\"{}/\"/><updated>{}</updated>",
        xml(&title),
        xml(&base),
        xml(&base),
        view::rfc3339(updated)
    ));
    for item in &items {
        out.push_str(&format!(
            "<entry><title>{}</title><id>{}/builds/{}</id><link href=\"{}\"/><updated>{}</updated><summary>{}</summary></entry>",
            xml(&item.title), xml(&base), item.id, xml(&item.link), view::rfc3339(item.time), xml(&item.summary)
        ));
    }
    out.push_str("</feed>\n");
    Ok((
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn xml_escapes_markup_and_drops_controls() {
        assert_eq!(
            super::xml("<a href='x'>&\u{1}"),
            "&lt;a href=&apos;x&apos;&gt;&amp;"
        );
    }
}
