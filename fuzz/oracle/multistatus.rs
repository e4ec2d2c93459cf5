//! What every WebDAV `207 Multi-Status` body must satisfy on the way the
//! DAV store reads it, shared by the `multistatus` fuzz target and any
//! replay test that includes this file.
//!
//! The body goes through each libdav response parser the DAV store uses
//! (discovery, listing, multiget, sync-collection, ETag, PROPFIND); any
//! body may be refused, never with a panic. Item texts a multiget returns
//! go on through `tandem_formats::parse`, as a fetch does.

use http::StatusCode;
use libdav::caldav::{FindCalendarHomeSet, FindCalendars, GetCalendarResources};
use libdav::carddav::{FindAddressBookHomeSet, FindAddressBooks, GetAddressBookResources};
use libdav::dav::{FindPropertyHrefs, GetEtag, ListResources, Propfind, SyncCollection};
use libdav::requests::DavRequest;
use libdav::{names, Depth, FetchedResource};
use tandem_formats::Format;

// The paths the seed answers (captured from Radicale and Xandikos) use.
const HOME: &str = "/user/";
const CONTACTS: &str = "/user/contacts/";
const CALENDAR: &str = "/user/calendar/";

pub fn multistatus(body: &[u8]) {
    let (parts, ()) = http::Response::builder()
        .status(StatusCode::MULTI_STATUS)
        .header("Content-Type", "application/xml; charset=utf-8")
        .body(())
        .expect("a valid response head")
        .into_parts();

    let _ =
        FindPropertyHrefs::new(HOME, &names::CURRENT_USER_PRINCIPAL).parse_response(&parts, body);
    let _ = FindAddressBookHomeSet::new(HOME).parse_response(&parts, body);
    let _ = FindCalendarHomeSet::new(HOME).parse_response(&parts, body);
    let _ = FindAddressBooks::new(HOME).parse_response(&parts, body);
    let _ = FindCalendars::new(HOME).parse_response(&parts, body);
    let _ = ListResources::new(CONTACTS).parse_response(&parts, body);
    let _ = SyncCollection::new(CONTACTS)
        .with_sync_token("http://example.org/sync/1")
        .parse_response(&parts, body);
    let _ = GetEtag::new("/user/contacts/a.vcf").parse_response(&parts, body);
    if let Ok(found) = Propfind::new(CONTACTS)
        .with_properties(&[&names::RESOURCETYPE])
        .with_depth(Depth::Zero)
        .parse_response(&parts, body)
    {
        let _ = found.xml_tree();
    }

    if let Ok(found) = GetAddressBookResources::new(CONTACTS)
        .with_hrefs([format!("{CONTACTS}a.vcf")])
        .parse_response(&parts, body)
    {
        items(Format::VCard, found.resources);
    }
    if let Ok(found) = GetCalendarResources::new(CALENDAR)
        .with_hrefs([format!("{CALENDAR}b.ics")])
        .parse_response(&parts, body)
    {
        items(Format::ICalendar, found.resources);
    }
}

fn items(format: Format, resources: Vec<FetchedResource>) {
    for resource in resources {
        let _id = resource.href.rsplit('/').next().unwrap_or_default();
        if let Ok(content) = resource.content {
            let _ = tandem_formats::parse(format, &content.data);
        }
    }
}
