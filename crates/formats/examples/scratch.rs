use calcard::vcard::VCard;
use calcard::icalendar::ICalendar;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    if text.contains("VCARD") {
        let v = VCard::parse(&text).unwrap();
        println!("{:#?}", v);
        println!("{}", v);
        let mut s = String::new();
        v.write_to(&mut s, calcard::vcard::VCardVersion::V3_0).unwrap();
        println!("{}", s);
    } else {
        let v = ICalendar::parse(&text).unwrap();
        println!("{:#?}", v);
        println!("{}", v);
    }
}
