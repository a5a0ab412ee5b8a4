//! URL patterns of rules: a glob over the page path (pattern starts with `/`;
//! the query string is included only if the pattern contains `?`) or over the
//! full URL (anything else). The fragment is never part of the match.

use globset::{GlobBuilder, GlobMatcher};

/// A compiled URL pattern.
#[derive(Debug, Clone)]
pub struct UrlPattern {
    path_only: bool,
    with_query: bool,
    matcher: GlobMatcher,
}

impl UrlPattern {
    /// Compile a pattern; the error is globset's message.
    pub fn new(pattern: &str) -> Result<UrlPattern, String> {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| e.kind().to_string())?;
        Ok(UrlPattern {
            path_only: pattern.starts_with('/'),
            with_query: pattern.contains('?'),
            matcher: glob.compile_matcher(),
        })
    }

    /// Whether the page at `url` is covered by this pattern.
    pub fn matches(&self, url: &str) -> bool {
        let no_fragment = url.split('#').next().unwrap_or("");
        if !self.path_only {
            return self.matcher.is_match(no_fragment);
        }
        let path_and_query = path_and_query(no_fragment);
        let target = if self.with_query {
            path_and_query
        } else {
            path_and_query.split('?').next().unwrap_or("")
        };
        let target = if target.is_empty() { "/" } else { target };
        self.matcher.is_match(target)
    }
}

/// The path (+ query) of an absolute or relative URL without fragment.
fn path_and_query(url: &str) -> &str {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            match rest.find(['/', '?']) {
                Some(j) => &rest[j..],
                None => "",
            }
        }
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_ignore_host_query_and_fragment() {
        let p = UrlPattern::new("/account/*").unwrap();
        assert!(p.matches("https://shop.example/account/cards?x=1#top"));
        assert!(p.matches("/account/a/b"));
        assert!(!p.matches("https://shop.example/checkout"));
        assert!(!p.matches("https://shop.example/account"));
        let q = UrlPattern::new("/search?q=*").unwrap();
        assert!(q.matches("http://h/search?q=card"));
        assert!(!q.matches("http://h/search"));
        let root = UrlPattern::new("/").unwrap();
        assert!(root.matches("http://h"));
    }

    #[test]
    fn full_url_patterns_and_errors() {
        let p = UrlPattern::new("https://*.example.com/pay*").unwrap();
        assert!(p.matches("https://www.example.com/pay/step2"));
        assert!(!p.matches("http://www.example.com/pay"));
        assert!(UrlPattern::new("/a/[b").is_err());
    }
}
