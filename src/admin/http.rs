//! The request as the admin handlers see it (method, path, decoded query, bearer token),
//! read from hyper's request head.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub bearer: Option<String>,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Request {
    /// The parts the handlers read, from a hyper request head.
    pub fn from_head(head: &hyper::http::request::Parts) -> Request {
        let query = head
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        let bearer = head
            .headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("Bearer ").map(|t| t.trim().to_string()));
        Request {
            method: head.method.as_str().to_string(),
            path: percent_decode(head.uri.path()),
            query,
            bearer,
        }
    }
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(())
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_query_and_token() {
        let req = hyper::Request::get("/route?sql=SELECT+1%20FROM%20t&user=app")
            .header("Authorization", "Bearer s3cr3t")
            .body(())
            .unwrap();
        let r = Request::from_head(&req.into_parts().0);
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/route");
        assert_eq!(r.param("sql"), Some("SELECT 1 FROM t"));
        assert_eq!(r.param("user"), Some("app"));
        assert_eq!(r.bearer.as_deref(), Some("s3cr3t"));
    }

    #[test]
    fn bad_percent_sequences_do_not_panic() {
        for s in ["%", "%4", "%zz", "a%", "%%%", "%e2%82"] {
            let _ = percent_decode(s);
        }
        assert_eq!(percent_decode("%41%42c"), "ABc");
    }
}
