//! URIs and addresses: `sip:`, `sips:` and `tel:` URIs (RFC 3261 §19.1,
//! RFC 3966), and the name-addr / addr-spec of From, To, Contact,
//! P-Asserted-Identity, Remote-Party-ID, Diversion and Refer-To (RFC 3261
//! §20.10, §25.1).

use super::excerpt;
use super::header::{Cursor, Params, host_port, trim_lws, unquote};
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme<'a> {
    Sip,
    Sips,
    Tel,
    /// Any other scheme (`urn`, `mailto`, `http`), as written; cdrhub does
    /// not look inside such a URI.
    Other(&'a str),
}

/// A URI as written, split into the parts a call record needs.
///
/// `sip:+49-30-1234567@gw.example.net:5060;user=phone` has user
/// `+49-30-1234567`, host `gw.example.net`, port 5060 and the parameter
/// `user=phone`; `tel:+1-201-555-0123;phone-context=example.com` has user
/// `+1-201-555-0123` and no host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    pub scheme: Scheme<'a>,
    /// The user part (a sip URI's userinfo without the password, a tel
    /// URI's number), as written: escapes and visual separators kept.
    pub user: Option<&'a str>,
    /// The host; empty for tel and other schemes. An IPv6 address keeps
    /// its brackets.
    pub host: &'a str,
    pub port: Option<u16>,
    /// The URI parameters: `;user=phone`, `;transport=udp`, a tel URI's
    /// `;phone-context=`.
    pub params: Params<'a>,
    /// The header part after `?`, without the `?`; empty if none.
    pub headers: &'a str,
    /// The whole URI as written.
    pub raw: &'a str,
}

impl<'a> Uri<'a> {
    /// The telephone number in the user part: the part before any `;`
    /// (`;npdi`, `;rn=`) with the visual separators `-`, `.`, `(`, `)` of
    /// RFC 3966 §3 taken out. `+1 (201) 555-0123` written as
    /// `+1-(201)-555.0123` gives `+12015550123`. For a number only: a sip
    /// user `john.doe` comes out as `johndoe`.
    pub fn number(&self) -> Option<Cow<'a, str>> {
        let user = self.user?;
        let number = user.split(';').next().unwrap_or(user);
        let is_separator = |c| matches!(c, '-' | '.' | '(' | ')');
        Some(if number.contains(is_separator) {
            Cow::Owned(number.chars().filter(|&c| !is_separator(c)).collect())
        } else {
            Cow::Borrowed(number)
        })
    }

    pub(crate) fn parse(text: &'a str) -> Result<Uri<'a>, String> {
        let raw = trim_lws(text);
        let Some((scheme, rest)) = raw.split_once(':').filter(|(s, _)| is_scheme(s)) else {
            return Err(format!(
                "has URI {} with no scheme such as sip:",
                excerpt(raw)
            ));
        };
        let scheme = if scheme.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            return Ok(Uri {
                scheme: Scheme::Other(scheme),
                user: None,
                host: "",
                port: None,
                params: Params(""),
                headers: "",
                raw,
            });
        };
        if scheme == Scheme::Tel {
            let (number, params) = rest.split_at(rest.find(';').unwrap_or(rest.len()));
            if number.is_empty() {
                return Err(format!("has tel URI {} with no number", excerpt(raw)));
            }
            return Ok(Uri {
                scheme,
                user: Some(number),
                host: "",
                port: None,
                params: Params(params),
                headers: "",
                raw,
            });
        }
        // The user part may hold `;` and `?` (RFC 3261 §25.1
        // user-unreserved) but not an unescaped `@`: the first `@` ends it.
        let (user, host_part) = match rest.split_once('@') {
            Some((userinfo, host_part)) => {
                let user = userinfo.split(':').next().unwrap_or(userinfo);
                (Some(user).filter(|u| !u.is_empty()), host_part)
            }
            None => (None, rest),
        };
        let mut c = Cursor::new(host_part);
        let (host, port) = host_port(&mut c).map_err(|problem| {
            let problem = problem.strip_prefix("has ").unwrap_or(&problem);
            format!("has URI {} with {problem}", excerpt(raw))
        })?;
        if host.is_empty() {
            return Err(format!("has URI {} with no host", excerpt(raw)));
        }
        let after = c.rest();
        let (params, headers) = match after.split_once('?') {
            Some((params, headers)) => (params, headers),
            None => (after, ""),
        };
        if !params.is_empty() && !params.starts_with(';') {
            return Err(format!(
                "has URI {} with text after the host that is not a parameter",
                excerpt(raw)
            ));
        }
        Ok(Uri {
            scheme,
            user,
            host,
            port,
            params: Params(params),
            headers,
            raw,
        })
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3261 §25.1).
fn is_scheme(text: &str) -> bool {
    text.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// An address with its header parameters: `"Bob" <sip:bob@biloxi.com>;tag=a6c85cf`
/// (name-addr) or `sip:bob@biloxi.com;tag=a6c85cf` (addr-spec, where every
/// `;` after the URI starts a header parameter, RFC 3261 §20.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name as written: in its quotes if quoted, escapes kept.
    display: Option<&'a str>,
    pub uri: Uri<'a>,
    /// The header parameters after the URI: `;tag=`, `;expires=`,
    /// Diversion's `;reason=`, Remote-Party-ID's `;privacy=`.
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// The display name without quotes and escapes: `"Alice \"Al\" Smith"`
    /// is `Alice "Al" Smith`. None when there is none or it is empty.
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.display.map(unquote).filter(|name| !name.is_empty())
    }

    /// The display name exactly as written, quotes included.
    pub fn raw_display_name(&self) -> Option<&'a str> {
        self.display
    }

    /// The `tag` parameter of From and To (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").filter(|tag| !tag.is_empty())
    }

    pub(crate) fn parse(value: &'a str) -> Result<NameAddr<'a>, String> {
        let text = trim_lws(value);
        let (display, bracketed) = if text.starts_with('"') {
            let Some(close) = closing_quote(text) else {
                return Err("has a display name with no closing quote".to_owned());
            };
            let after = trim_lws(&text[close + 1..]);
            if !after.starts_with('<') {
                return Err("has a quoted display name not followed by \"<\"".to_owned());
            }
            (Some(&text[..=close]), Some(after))
        } else {
            match text.find('<') {
                Some(open) => {
                    let display = trim_lws(&text[..open]);
                    (Some(display).filter(|d| !d.is_empty()), Some(&text[open..]))
                }
                None => (None, None),
            }
        };
        let (uri, params) = match bracketed {
            Some(bracketed) => {
                let Some(close) = bracketed.find('>') else {
                    return Err("has no closing \">\"".to_owned());
                };
                let params = trim_lws(&bracketed[close + 1..]);
                if !params.is_empty() && !params.starts_with(';') {
                    return Err("has text after \">\" that is not a parameter".to_owned());
                }
                (&bracketed[1..close], params)
            }
            None => text.split_at(text.find(';').unwrap_or(text.len())),
        };
        Ok(NameAddr {
            display,
            uri: Uri::parse(uri)?,
            params: Params(params),
        })
    }
}

/// The index of the quote that closes the quoted string `text` starts with.
fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (at, b) in text.bytes().enumerate().skip(1) {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(at),
            _ => {}
        }
    }
    None
}

/// One value of a Contact header: an address, or the `*` of a REGISTER
/// that removes every binding (RFC 3261 §10.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact<'a> {
    Wildcard,
    Address(NameAddr<'a>),
}
