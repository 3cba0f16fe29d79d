//! The `Received:` trace field (RFC 5321 4.4) we put on top of every
//! message we accept, and the RFC 5322 3.3 date it ends with.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::proto::smtp::TlsInfo;

/// What the trace field records about the client and the session.
#[derive(Debug, Clone)]
pub struct Trace<'a> {
    pub helo: &'a str,
    pub esmtp: bool,
    pub ip: Option<IpAddr>,
    /// The client's name by reverse DNS, when that is switched on.
    pub rdns: Option<&'a str>,
    pub hostname: &'a str,
    pub tls: Option<&'a TlsInfo>,
    pub authenticated: bool,
    pub smtputf8: bool,
    pub id: &'a str,
    /// Named only when the message has one recipient (RFC 5321 4.4: `for`
    /// with several would disclose the others).
    pub recipient: Option<&'a str>,
    pub now: SystemTime,
}

/// `Received: from helo (name [ip]) by host (ownmail) with ESMTPS (using
/// TLSv1.3 with cipher ...) id ID for <rcpt>; date`, folded, CR LF ended.
pub fn received(t: &Trace) -> String {
    // The HELO name is the client's word: keep what cannot break the field.
    let helo: String = t
        .helo
        .chars()
        .filter(|c| !c.is_control() && !"()<>;\\\"".contains(*c))
        .take(255)
        .collect();
    let mut s = format!(
        "Received: from {}",
        if helo.is_empty() { "unknown" } else { &helo }
    );
    match (t.rdns, t.ip) {
        (Some(name), Some(ip)) => s.push_str(&format!(" ({name} [{ip}])")),
        (None, Some(ip)) => s.push_str(&format!(" ([{ip}])")),
        _ => s.push_str(" (local)"),
    }
    // RFC 3848 and RFC 6531 3.7.3: the protocol names.
    let mut with = String::from(match (t.smtputf8, t.esmtp) {
        (true, _) => "UTF8SMTP",
        (false, true) => "ESMTP",
        (false, false) => "SMTP",
    });
    if t.esmtp || t.smtputf8 {
        if t.tls.is_some() {
            with.push('S');
        }
        if t.authenticated {
            with.push('A');
        }
    }
    s.push_str(&format!("\r\n\tby {} (ownmail) with {with}", t.hostname));
    if let Some(tls) = t.tls {
        s.push_str(&format!(
            "\r\n\t(using {} with cipher {})",
            tls.version, tls.cipher
        ));
    }
    s.push_str(&format!("\r\n\tid {}", t.id));
    if let Some(r) = t.recipient {
        s.push_str(&format!("\r\n\tfor <{r}>"));
    }
    s.push_str(&format!("; {}\r\n", rfc5322_date(t.now)));
    s
}

/// RFC 5322 3.3, in UTC: `Tue, 24 Nov 2026 09:30:00 +0000`.
pub fn rfc5322_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let (y, m, d) = civil_from_days(days);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d} {} {y} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (y, m, d).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_rfc5322() {
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(rfc5322_date(at(0)), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(at(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
        assert_eq!(
            rfc5322_date(at(1_795_512_630)),
            "Tue, 24 Nov 2026 09:30:30 +0000"
        );
    }

    #[test]
    fn the_trace_names_tls_and_auth() {
        let tls = TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS_AES_256_GCM_SHA384".into(),
        };
        let t = Trace {
            helo: "client(evil)\"x",
            esmtp: true,
            ip: Some("192.0.2.1".parse().unwrap()),
            rdns: None,
            hostname: "mx.example.org",
            tls: Some(&tls),
            authenticated: true,
            smtputf8: false,
            id: "abc",
            recipient: Some("alice@example.org"),
            now: UNIX_EPOCH,
        };
        assert_eq!(
            received(&t),
            "Received: from clientevilx ([192.0.2.1])\r\n\tby mx.example.org (ownmail) with ESMTPSA\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n\tid abc\r\n\tfor <alice@example.org>; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
        let plain = Trace {
            esmtp: false,
            tls: None,
            authenticated: false,
            recipient: None,
            ip: None,
            ..t
        };
        assert!(
            received(&plain)
                .contains("(local)\r\n\tby mx.example.org (ownmail) with SMTP\r\n\tid abc;")
        );
    }
}
