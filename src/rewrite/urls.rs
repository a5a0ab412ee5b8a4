//! Resource URLs in the agent's copy: every URL the replica would fetch
//! (`src`, `srcset`, `poster`, stylesheet links, SVG references, `url()` and
//! `@import` in CSS) is resolved against the page's base URL and rewritten to
//! the server's resource proxy, `/proxy/<site>/<sig>?u=<absolute URL>`, where
//! `<sig>` is a hex HMAC-SHA256 over the site and the URL (no time in it: the
//! render stays deterministic). URLs on origins the site does not allow, and
//! anything this module cannot read with certainty, are dropped (`None`, or
//! `none` in CSS): the agent's browser never gets a foreign URL.
//!
//! CSS is tokenised with `cssparser` (the CSS Syntax tokeniser browsers use),
//! so escapes (`u\72l(`) and comments cannot hide a URL: only the URL tokens
//! are replaced, everything else is copied verbatim.

use cssparser::{Parser, Token};
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;
use std::fmt;
use std::sync::Arc;
use url::Url;

/// Characters kept as-is in the `u` query parameter (the rest are
/// percent-encoded): never quotes, parentheses, spaces or backslashes, so the
/// proxied URL is safe inside `url("…")` and `srcset`.
const QUERY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/')
    .remove(b':');

/// Nesting of CSS blocks past which a stylesheet is dropped whole.
const MAX_CSS_DEPTH: usize = 64;

/// What the render needs to rewrite resource URLs of one site's pages.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyLinks {
    /// The site key (the `<site>` path segment).
    pub site: String,
    /// The site's allowed origins (normalised `scheme://host[:port]`).
    pub origins: Vec<String>,
    /// The signing key.
    key: Vec<u8>,
    /// The document's base URL (page URL, then `<base href>`); relative URLs
    /// are dropped without one.
    pub base: Option<Url>,
}

impl fmt::Debug for ProxyLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyLinks")
            .field("site", &self.site)
            .field("origins", &self.origins)
            .field("base", &self.base.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// The links in force for the render running on this thread (set by the
    /// [`super::Rewriter`] around each call, see [`scoped`]).
    static CURRENT: std::cell::RefCell<Option<Arc<ProxyLinks>>> = const { std::cell::RefCell::new(None) };
}

/// Run `f` with `links` in force for the render (restored afterwards, also
/// on unwind).
pub fn scoped<R>(links: Option<Arc<ProxyLinks>>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<ProxyLinks>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = prev);
        }
    }
    let prev = CURRENT.with(|c| c.replace(links));
    let _restore = Restore(prev);
    f()
}

/// The links in force (`None`: no proxy, URLs handled as before).
pub fn current() -> Option<Arc<ProxyLinks>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The signature of `url` for `site` under `key`, two letters `a`–`p` per
/// byte: no digits, so the card-number detector (which masks long digit
/// runs in the attributes the agent gets) can never touch a proxy link.
pub fn sign(key: &[u8], site: &str, url: &str) -> String {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(b"cobrowse-proxy\0");
            m.update(site.as_bytes());
            m.update(b"\0");
            m.update(url.as_bytes());
            letters_encode(&m.finalize().into_bytes())
        }
        // HMAC takes keys of any length; never reached
        Err(_) => String::new(),
    }
}

/// Bytes as letters: high nibble then low nibble, each as `a` + value.
fn letters_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(b'a' + (b >> 4)));
        out.push(char::from(b'a' + (b & 0x0f)));
    }
    out
}

/// The inverse of [`letters_encode`]; `None` for anything else.
fn letters_decode(s: &str) -> Option<Vec<u8>> {
    let nibble = |c: u8| (b'a'..=b'p').contains(&c).then(|| c - b'a');
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    b.chunks(2)
        .map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?))
        .collect()
}

/// Whether `sig` is the signature of `url` for `site` (constant time).
pub fn verify(key: &[u8], site: &str, url: &str, sig: &str) -> bool {
    let Some(raw) = letters_decode(sig) else {
        return false;
    };
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    m.update(b"cobrowse-proxy\0");
    m.update(site.as_bytes());
    m.update(b"\0");
    m.update(url.as_bytes());
    m.verify_slice(&raw).is_ok()
}

/// The origin of an http(s) URL as sites store it (`scheme://host[:port]`,
/// default port left out); `None` for other schemes.
pub fn origin_of(u: &Url) -> Option<String> {
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return None;
    }
    Some(u.origin().ascii_serialization())
}

/// Whether `u`'s origin is one of `origins`.
pub fn origin_allowed(u: &Url, origins: &[String]) -> bool {
    origin_of(u).is_some_and(|o| origins.iter().any(|a| a.eq_ignore_ascii_case(&o)))
}

/// The path of the proxy URL for an absolute URL (without fragment).
pub fn proxy_path(key: &[u8], site: &str, url: &str) -> String {
    format!(
        "/proxy/{}/{}?u={}",
        utf8_percent_encode(site, NON_ALPHANUMERIC),
        sign(key, site, url),
        utf8_percent_encode(url, QUERY_SET)
    )
}

/// How a URL in the page is treated.
enum Kind {
    /// Kept as it is (a same-document `#fragment`, a raster `data:` image).
    Keep,
    /// Fetched through the proxy.
    Proxy,
    /// Dropped.
    Drop,
}

fn classify(raw: &str) -> Kind {
    let t = raw.trim_matches(|c: char| c.is_ascii_whitespace());
    if t.starts_with('#') && !t.contains(['\\', '\n']) {
        return Kind::Keep;
    }
    let l: String = t
        .chars()
        .filter(|c| !c.is_ascii_control() && *c != ' ')
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    if l.starts_with("data:") {
        return if super::render::safe_url(t, true).is_some() {
            Kind::Keep
        } else {
            Kind::Drop
        };
    }
    Kind::Proxy
}

impl ProxyLinks {
    /// Links for `site` with its allowed `origins`, signed with `key`.
    pub fn new(site: &str, origins: Vec<String>, key: Vec<u8>) -> ProxyLinks {
        ProxyLinks {
            site: site.to_string(),
            origins,
            key,
            base: None,
        }
    }

    /// The same links with the base URL of a document at `page` whose
    /// first `<base href>` is `base_href` (resolution only).
    pub fn with_base(&self, page: &str, base_href: Option<&str>) -> ProxyLinks {
        let page = Url::parse(page).ok();
        let base = match (&page, base_href) {
            (Some(p), Some(h)) => p.join(h.trim()).ok().or_else(|| page.clone()),
            (None, Some(h)) => Url::parse(h.trim()).ok(),
            (p, None) => p.clone(),
        };
        let base = base.filter(|b| matches!(b.scheme(), "http" | "https"));
        ProxyLinks {
            base,
            ..self.clone()
        }
    }

    /// The proxied form of a resource URL resolved against `base`, or
    /// `None` to drop it.
    pub fn resource_at(&self, raw: &str, base: Option<&Url>) -> Option<String> {
        match classify(raw) {
            Kind::Keep => return Some(raw.to_string()),
            Kind::Drop => return None,
            Kind::Proxy => {}
        }
        let raw = raw.trim_matches(|c: char| c.is_ascii_whitespace());
        let mut abs = match base {
            Some(b) => b.join(raw).ok()?,
            None => Url::parse(raw).ok()?,
        };
        if !origin_allowed(&abs, &self.origins) || !abs.username().is_empty() {
            return None;
        }
        if abs.password().is_some() {
            return None;
        }
        let frag = abs.fragment().map(str::to_string);
        abs.set_fragment(None);
        let mut out = proxy_path(&self.key, &self.site, abs.as_str());
        if let Some(f) = frag {
            out.push('#');
            out.push_str(&utf8_percent_encode(&f, QUERY_SET).to_string());
        }
        Some(out)
    }

    /// A resource URL of the page (resolved against its base URL).
    pub fn resource(&self, raw: &str) -> Option<String> {
        self.resource_at(raw, self.base.as_ref())
    }

    /// A `srcset` with every candidate proxied (dropped candidates left
    /// out); `None` when no candidate is left.
    pub fn srcset(&self, v: &str) -> Option<String> {
        let mut out: Vec<String> = Vec::new();
        for (u, desc) in srcset_candidates(v)? {
            if let Some(p) = self.resource(u) {
                if p.contains([',', ' ']) {
                    continue;
                }
                if desc.is_empty() {
                    out.push(p);
                } else {
                    out.push(format!("{p} {desc}"));
                }
            }
        }
        (!out.is_empty()).then(|| out.join(", "))
    }

    /// CSS of the page (a `style` attribute or `<style>` text) with its URLs
    /// proxied.
    pub fn css(&self, css: &str) -> String {
        self.css_at(css, self.base.as_ref())
    }

    /// CSS whose relative URLs resolve against `base` (a stylesheet fetched
    /// through the proxy resolves against its own URL). Empty when the CSS
    /// nests too deep to be read.
    pub fn css_at(&self, css: &str, base: Option<&Url>) -> String {
        let mut p = Parser::new(css);
        let mut out = String::with_capacity(css.len());
        let mut w = CssWalk {
            links: self,
            base,
            out: &mut out,
            ok: true,
        };
        w.walk(&mut p, 0, false);
        if w.ok {
            out
        } else {
            String::new()
        }
    }
}

/// Parse a `srcset` into (URL, descriptors) candidates (HTML's algorithm,
/// simplified: a descriptor list holding parentheses or odd characters
/// makes the whole attribute unreadable → `None`).
fn srcset_candidates(v: &str) -> Option<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    let mut rest = v;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() {
            break;
        }
        let end = rest
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let mut url = &rest[..end];
        rest = &rest[end..];
        if url.ends_with(',') {
            url = url.trim_end_matches(',');
            out.push((url, ""));
            continue;
        }
        let dend = rest.find(',').unwrap_or(rest.len());
        let desc = rest[..dend].trim();
        rest = &rest[dend..];
        if !desc
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c.is_ascii_whitespace())
        {
            return None;
        }
        out.push((url, desc));
    }
    Some(out)
}

struct CssWalk<'a, 'b> {
    links: &'a ProxyLinks,
    base: Option<&'a Url>,
    out: &'b mut String,
    ok: bool,
}

/// A function whose string arguments are image URLs.
fn strings_are_urls(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with("image-set") || n == "image" || n.ends_with("cross-fade")
}

impl CssWalk<'_, '_> {
    fn url(&mut self, raw: &str) {
        match self.links.resource_at(raw, self.base) {
            Some(u) if !u.contains(['"', '\\', '\n', '\r', '\u{c}']) => {
                self.out.push_str("url(\"");
                self.out.push_str(&u);
                self.out.push_str("\")");
            }
            _ => self.out.push_str("none"),
        }
    }

    /// Copy `p`'s tokens to `out`, URL tokens rewritten. `strings`: quoted
    /// strings in this block are URLs.
    fn walk(&mut self, p: &mut Parser<'_>, depth: usize, strings: bool) {
        if depth > MAX_CSS_DEPTH {
            self.ok = false;
            return;
        }
        // after `@import`: the next string is a URL
        let mut import = false;
        loop {
            if !self.ok {
                return;
            }
            let start = p.position();
            let tok = match p.next_including_whitespace_and_comments() {
                Ok(t) => t.clone(),
                Err(_) => break,
            };
            match tok {
                Token::WhiteSpace(_) | Token::Comment(_) => {
                    self.out.push_str(p.slice_from(start));
                    continue;
                }
                Token::UnquotedUrl(u) => self.url(&u),
                Token::BadUrl(_) => self.out.push_str("none"),
                Token::QuotedString(s) if strings || import => self.url(&s),
                Token::AtKeyword(k) => {
                    self.out.push_str(p.slice_from(start));
                    import = k.eq_ignore_ascii_case("import");
                    continue;
                }
                Token::Function(name) if name.eq_ignore_ascii_case("url") => {
                    // `url("…")`: one string, optionally URL modifiers
                    let mut arg: Option<String> = None;
                    let mut clean = true;
                    let r = p.parse_nested_block(|q| {
                        while let Ok(t) = q.next() {
                            match t {
                                Token::QuotedString(s) if arg.is_none() => {
                                    arg = Some(s.to_string());
                                }
                                _ => clean = false,
                            }
                        }
                        Ok::<(), cssparser::ParseError<()>>(())
                    });
                    match (r, arg) {
                        (Ok(()), Some(a)) if clean => self.url(&a),
                        _ => self.out.push_str("none"),
                    }
                }
                Token::Function(name) if name.eq_ignore_ascii_case("src") => {
                    // CSS Values 4 `src()`: a URL built at run time
                    self.out.push_str("none");
                    let _ = p.parse_nested_block(|q| {
                        while q.next().is_ok() {}
                        Ok::<(), cssparser::ParseError<()>>(())
                    });
                }
                Token::Function(name) => {
                    let inner = strings_are_urls(&name);
                    self.block(p, start, depth, inner);
                }
                Token::ParenthesisBlock | Token::SquareBracketBlock | Token::CurlyBracketBlock => {
                    self.block(p, start, depth, false);
                }
                _ => self.out.push_str(p.slice_from(start)),
            }
            import = false;
        }
    }

    /// Copy a block (its opening token already read at `start`), walking
    /// its contents, then its closing token (absent at end of input).
    fn block(
        &mut self,
        p: &mut Parser<'_>,
        start: cssparser::SourcePosition,
        depth: usize,
        strings: bool,
    ) {
        self.out.push_str(p.slice_from(start));
        let mut inner_end = None;
        let r = p.parse_nested_block(|q| {
            self.walk(q, depth + 1, strings);
            inner_end = Some(q.position());
            Ok::<(), cssparser::ParseError<()>>(())
        });
        match (r, inner_end) {
            (Ok(()), Some(e)) => self.out.push_str(p.slice(e..p.position())),
            _ => self.ok = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> ProxyLinks {
        ProxyLinks::new("shop", vec!["https://ok.example".into()], b"k".to_vec())
            .with_base("https://ok.example/dir/page.html", None)
    }

    fn proxied(url: &str) -> String {
        proxy_path(b"k", "shop", url)
    }

    #[test]
    fn resources_resolve_against_the_base_and_foreign_ones_drop() {
        let l = links();
        assert_eq!(
            l.resource("a.png").unwrap(),
            proxied("https://ok.example/dir/a.png")
        );
        assert_eq!(
            l.resource("/x.css?v=1").unwrap(),
            proxied("https://ok.example/x.css?v=1")
        );
        assert!(l.resource("https://evil.example/a.png").is_none());
        assert!(l.resource("//evil.example/a.png").is_none());
        assert!(l.resource("javascript:alert(1)").is_none());
        assert!(l.resource("https://u:p@ok.example/a.png").is_none());
        assert!(l.resource("data:text/html,<b>").is_none());
        assert_eq!(l.resource("#icon").unwrap(), "#icon");
        assert!(l.resource("sprite.svg#i").unwrap().ends_with("#i"));
        let b = l.with_base(
            "https://ok.example/dir/page.html",
            Some("https://evil.example/"),
        );
        assert!(b.resource("a.png").is_none());
        let b = l.with_base("https://ok.example/dir/page.html", Some("/other/"));
        assert_eq!(
            b.resource("a.png").unwrap(),
            proxied("https://ok.example/other/a.png")
        );
    }

    #[test]
    fn signatures_bind_site_and_url() {
        let s = sign(b"k", "shop", "https://ok.example/a.png");
        assert!(verify(b"k", "shop", "https://ok.example/a.png", &s));
        assert!(!verify(b"k", "shop", "https://ok.example/b.png", &s));
        assert!(!verify(b"k", "other", "https://ok.example/a.png", &s));
        assert!(!verify(b"j", "shop", "https://ok.example/a.png", &s));
        assert!(!verify(b"k", "shop", "https://ok.example/a.png", "zz"));
    }

    /// Regression: a hex signature with a long digit run was cut by the
    /// card-number detector on its way to the agent (a broken image link,
    /// found by a flaky `api::proxy` test). Signatures have no digits.
    #[test]
    fn signatures_carry_no_digits_and_round_trip() {
        for i in 0..200 {
            let url = format!("https://ok.example/{i}.png");
            let s = sign(b"k", "shop", &url);
            assert_eq!(s.len(), 64);
            assert!(!s.bytes().any(|b| b.is_ascii_digit()), "{s}");
            assert!(verify(b"k", "shop", &url, &s));
            assert_eq!(letters_decode(&s).map(|b| letters_encode(&b)), Some(s));
        }
        assert!(letters_decode("a").is_none());
        assert!(letters_decode("aq").is_none());
    }

    #[test]
    fn srcset_candidates_are_each_proxied() {
        let l = links();
        let s = l
            .srcset("a.png 1x, https://evil.example/b.png 2x,c.png 3x")
            .unwrap();
        assert!(!s.contains("evil"));
        assert!(s.contains(" 1x, "));
        assert!(s.ends_with(" 3x"));
        assert_eq!(s.matches("/proxy/").count(), 2);
        assert!(l.srcset("https://evil.example/b.png 2x").is_none());
    }

    #[test]
    fn css_urls_are_proxied_and_tricks_do_not_hide_one() {
        let l = links();
        let ok = proxied("https://ok.example/dir/a.png");
        for css in [
            "background: url(a.png)",
            "background: url( 'a.png' )",
            "background: u\\72l(a.png)",
            "background: URL(\"a.png\")",
            "background: image-set(\"a.png\" 1x)",
        ] {
            let out = l.css(css);
            assert!(out.contains(&ok), "{css} → {out}");
        }
        for css in [
            "background: url(https://evil.example/x)",
            "background: u\\72l(https://evil.example/x)",
            "background: url('https://evil.example/x')",
            "background: image-set('https://evil.example/x' 1x)",
            "@import 'https://evil.example/x.css';",
            "@import url(https://evil.example/x.css);",
            "@import 'https://evil.example/x.css' screen;",
            "a{b:c{d:url(//evil.example/x)}}",
            "x: url(https://evil.example/x",
            "x: src('https://evil.example/x')",
            "x: url('https://ok.example/' 'https://evil.example/')",
        ] {
            let out = l.css(css);
            assert!(!out.contains("evil"), "{css} → {out}");
        }
        assert_eq!(
            l.css("@import \"/s.css\";"),
            format!("@import url(\"{}\");", proxied("https://ok.example/s.css"))
        );
        assert_eq!(
            l.css("a { color: red } /* c */"),
            "a { color: red } /* c */"
        );
        assert_eq!(l.css("ur/**/l(x)"), "ur/**/l(x)");
        let deep = "a{".repeat(200);
        assert_eq!(l.css(&deep), "");
    }
}
