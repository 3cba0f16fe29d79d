//! HTML to text for the tokenizer: tags out, entities decoded, comments and
//! scripts dropped, link targets kept. Not a browser: a single forward pass
//! over the input, linear time, output no longer than the input plus the
//! link targets.
//!
//! What spammers do to hide words from filters is made visible here: a
//! comment or an empty inline tag in the middle of a word (`V<!-- x -->iagra`,
//! `V<b></b>iagra`) is removed without leaving a space, so the word comes out
//! whole, and the trick is counted ([`Html::splits`]).

/// What came out of an HTML body.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Html {
    /// The visible text.
    pub text: String,
    /// `href`/`src` targets, in order.
    pub links: Vec<String>,
    /// Anchors whose visible text is itself a URL: (href, text).
    pub anchors: Vec<(String, String)>,
    /// Tag names seen, lower case (at most one entry per name).
    pub tags: Vec<String>,
    /// Comments or inline tags found between two letters of a word.
    pub splits: usize,
}

/// At most this many links are kept from one body.
const MAX_LINKS: usize = 256;
/// Tags that do not break a word when they sit inside one.
const INLINE: &[&str] = &[
    "b", "i", "u", "font", "span", "em", "strong", "small", "big", "s", "strike", "sup", "sub", "a",
];

pub fn to_text(html: &str) -> Html {
    let mut out = Html {
        text: String::with_capacity(html.len() / 2),
        ..Html::default()
    };
    let bytes = html.as_bytes();
    let mut i = 0;
    let mut skip_until: Option<&'static str> = None;
    let mut anchor: Option<(String, usize)> = None;
    while i < bytes.len() {
        if let Some(end) = skip_until {
            match find_ci(&bytes[i..], end.as_bytes()) {
                Some(at) => {
                    i += at + end.len();
                    i = memchr::memchr(b'>', &bytes[i..]).map_or(bytes.len(), |e| i + e + 1);
                    skip_until = None;
                    out.text.push(' ');
                }
                None => break,
            }
            continue;
        }
        let b = bytes[i];
        if b == b'<' {
            let prev_alpha = out
                .text
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric);
            if bytes[i..].starts_with(b"<!--") {
                let end = memchr::memmem::find(&bytes[i + 4..], b"-->")
                    .map_or(bytes.len(), |e| i + 4 + e + 3);
                i = end;
                if prev_alpha && bytes.get(i).is_some_and(u8::is_ascii_alphanumeric) {
                    out.splits += 1;
                }
                continue;
            }
            let (tag_end, end) = match memchr::memchr(b'>', &bytes[i..]) {
                Some(e) => (i + e, i + e + 1),
                None => (bytes.len(), bytes.len()),
            };
            let tag = &html[i + 1..tag_end];
            i = end;
            let closing = tag.starts_with('/');
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .take(16)
                .collect::<String>()
                .to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            if !out.tags.contains(&name) && out.tags.len() < 64 {
                out.tags.push(name.clone());
            }
            if !closing {
                for attr in ["href", "src", "action"] {
                    if let Some(v) = attribute(tag, attr)
                        && out.links.len() < MAX_LINKS
                    {
                        let v = decode_entities(v);
                        if name == "a" && attr == "href" {
                            anchor = Some((v.clone(), out.text.len()));
                        }
                        out.links.push(v);
                    }
                }
            } else if name == "a"
                && let Some((href, start)) = anchor.take()
            {
                let shown = out.text.get(start..).unwrap_or("").trim().to_owned();
                if out.anchors.len() < MAX_LINKS && looks_like_url(&shown) {
                    out.anchors.push((href, shown));
                }
            }
            match name.as_str() {
                "script" | "style" if !closing => {
                    skip_until = Some(if name == "script" {
                        "</script"
                    } else {
                        "</style"
                    });
                }
                n if INLINE.contains(&n) => {
                    if prev_alpha && bytes.get(i).is_some_and(u8::is_ascii_alphanumeric) {
                        // `V<b>iagra`: a word split by markup.
                        out.splits += 1;
                    }
                }
                "br" | "p" | "div" | "td" | "tr" | "li" | "table" | "h1" | "h2" | "h3"
                | "title" => out.text.push('\n'),
                _ => out.text.push(' '),
            }
            continue;
        }
        if b == b'&' {
            let end = bytes[i..].iter().take(12).position(|&c| c == b';');
            if let Some(e) = end
                && let Some(c) = entity(&html[i + 1..i + e])
            {
                out.text.push(c);
                i += e + 1;
                continue;
            }
        }
        // Copy a run of plain text at once.
        let run_end =
            memchr::memchr2(b'<', b'&', &bytes[i + 1..]).map_or(bytes.len(), |e| i + 1 + e);
        out.text.push_str(&html[i..run_end]);
        i = run_end;
    }
    out
}

fn looks_like_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    (l.starts_with("http://") || l.starts_with("https://") || l.starts_with("www."))
        && !l.contains(' ')
}

/// The value of `name=` in a tag's text, quoted or not.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(name) {
        let start = from + at;
        from = start + name.len();
        let before_ok = start == 0 || lower.as_bytes()[start - 1].is_ascii_whitespace();
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let vstart = tag.len() - rest.len() + 1;
        let v = tag[vstart..].trim_start();
        let (v, quote) = match v.as_bytes().first() {
            Some(b'"') => (&v[1..], Some('"')),
            Some(b'\'') => (&v[1..], Some('\'')),
            _ => (v, None),
        };
        let end = match quote {
            Some(q) => v.find(q).unwrap_or(v.len()),
            None => v.find(|c: char| c.is_ascii_whitespace()).unwrap_or(v.len()),
        };
        return Some(&v[..end]);
    }
    None
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let n = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(n);
    }
    Some(match name {
        "nbsp" => ' ',
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "copy" => '©',
        "reg" => '®',
        "euro" => '€',
        "pound" => '£',
        _ => return None,
    })
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match rest
            .find(';')
            .filter(|e| *e <= 12)
            .and_then(|e| Some((e, entity(&rest[1..e])?)))
        {
            Some((e, c)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_text() {
        let cases: &[(&str, &str)] = &[
            ("<p>Hello <b>world</b></p>", "\nHello world\n"),
            (
                "a &amp; b &lt;c&gt; &#65;&#x42; &bogus; &",
                "a & b <c> AB &bogus; &",
            ),
            ("x<script>var a = '<p>';</script>y", "x y"),
            ("<STYLE>p {}</STYLE>z", " z"),
            ("un<!-- closed", "un"),
            ("<", ""),
            ("<>", ""),
            (
                "caf\u{e9} <br>\u{65e5}\u{672c}",
                "caf\u{e9} \n\u{65e5}\u{672c}",
            ),
        ];
        for (html, text) in cases {
            assert_eq!(to_text(html).text, *text, "{html}");
        }
    }

    #[test]
    fn hidden_word_splits_are_joined_and_counted() {
        let h = to_text("V<!-- gnu -->iagra and C<b></b>ialis");
        assert_eq!(h.text, "Viagra and Cialis");
        assert_eq!(h.splits, 2);
        assert_eq!(to_text("<b>Hello</b> <i>you</i>").splits, 0);
    }

    #[test]
    fn links_and_anchors() {
        let h = to_text(
            "<a HREF=\"http://evil.example/x?a=1&amp;b=2\">http://www.bank.example/</a> <img src=pic.gif alt=x> <a class=x href='http://ok.example/'>here</a>",
        );
        assert_eq!(
            h.links,
            vec![
                "http://evil.example/x?a=1&b=2",
                "pic.gif",
                "http://ok.example/"
            ]
        );
        assert_eq!(
            h.anchors,
            vec![(
                "http://evil.example/x?a=1&b=2".to_owned(),
                "http://www.bank.example/".to_owned()
            )]
        );
        assert!(h.tags.contains(&"img".to_owned()));
        assert_eq!(attribute("a xhref=1 href=2", "href"), Some("2"));
    }
}
