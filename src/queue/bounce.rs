//! Delivery status notifications (RFC 3464, in a RFC 6522
//! multipart/report): what goes back to the sender when recipients failed
//! for good or the message expired. Sent from the null sender, so it is
//! never bounced itself (RFC 5321 6.1 and 4.5.5).

use std::time::{Duration, UNIX_EPOCH};

use crate::smtp::received::rfc5322_date;

/// One failed recipient.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    pub address: &'a str,
    /// `5.1.1` and the like (RFC 3463); expiry is `4.4.7`.
    pub status: &'a str,
    /// The remote server's reply or our reason.
    pub diagnostic: &'a str,
}

/// The most of the original's header section returned.
const MAX_RETURNED_HEADERS: usize = 64 * 1024;

/// The bounce, CR LF line ends, ready for the queue.
pub fn build(
    hostname: &str,
    to: &str,
    original: &[u8],
    arrival: u64,
    failures: &[Failure],
    now: std::time::SystemTime,
) -> Vec<u8> {
    let boundary = format!(
        "{}.{}/{hostname}",
        now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(),
        std::process::id()
    );
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"
    ));
    m.push_str(&format!("To: <{}>\r\n", clean(to)));
    m.push_str("Subject: Undelivered Mail Returned to Sender\r\n");
    m.push_str(&format!("Date: {}\r\n", rfc5322_date(now)));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str("This is a delivery status notification in MIME format.\r\n\r\n");
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    ));
    m.push_str(&format!(
        "This is the mail system at {hostname}.\r\n\r\nYour message could not be delivered to the following recipients:\r\n\r\n"
    ));
    for f in failures {
        m.push_str(&format!(
            "<{}>: {}\r\n",
            clean(f.address),
            clean(f.diagnostic)
        ));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
    ));
    // RFC 3464 2.2: per-message fields.
    m.push_str(&format!("Reporting-MTA: dns; {hostname}\r\n"));
    m.push_str(&format!(
        "Arrival-Date: {}\r\n",
        rfc5322_date(UNIX_EPOCH + Duration::from_secs(arrival))
    ));
    // RFC 3464 2.3: per-recipient fields.
    for f in failures {
        m.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {}\r\n",
            clean(f.address),
            f.status,
            clean(f.diagnostic)
        ));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ));
    let mut out = m.into_bytes();
    out.extend_from_slice(header_section(original));
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// The original's header section, bounded, ending with a line end.
fn header_section(msg: &[u8]) -> &[u8] {
    let end = memchr::memmem::find(msg, b"\r\n\r\n")
        .map(|i| i + 2)
        .unwrap_or(msg.len())
        .min(MAX_RETURNED_HEADERS);
    let head = &msg[..end];
    // Cut at a line end so the part stays well formed.
    match memchr::memrchr(b'\n', head) {
        Some(i) => &head[..=i],
        None => b"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounce_is_a_delivery_status_report() {
        let b = build(
            "mx.example.org",
            "alice@example.org",
            b"Subject: hello\r\nFrom: alice@example.org\r\n\r\nsecret body\r\n",
            0,
            &[Failure {
                address: "nobody@example.net",
                status: "5.1.1",
                diagnostic: "550 5.1.1 No such user",
            }],
            UNIX_EPOCH,
        );
        let text = String::from_utf8(b).unwrap();
        for needle in [
            "Content-Type: multipart/report; report-type=delivery-status;",
            "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n",
            "Final-Recipient: rfc822; nobody@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 No such user\r\n",
            "Content-Type: text/rfc822-headers\r\n\r\nSubject: hello\r\nFrom: alice@example.org\r\n\r\n--",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
        assert!(!text.contains("secret body"), "only the headers go back");
        assert!(!text.contains("\n\n"), "CR LF everywhere");
    }
}
