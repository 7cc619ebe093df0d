//! From the declarative config to what runs: the chosen resource and its chain of parents
//! (root first), each endpoint with `resource_defaults` applied, its paginator chosen
//! (endpoint > resource_defaults > client > auto), its selector parsed, and the way to build
//! its requests for given placeholder values.
//!
//! Every mistake found here is a CONFIGURATION error raised before the first request.

use std::collections::BTreeMap;

use reqwest12::{Method, Url};
use serde_json::Value;

use super::config::{EndpointConfig, EndpointSpec, ResourceConfig, ResourceEntry, RestApiConfig};
use super::http::Request;
use super::paginate::{set_param, Paginator};
use super::select::JsonPath;
use super::template::{self, TemplateError, Vars};

/// One endpoint of the chain.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    method: Method,
    path: String,
    params: BTreeMap<String, Value>,
    json: Option<Value>,
    headers: BTreeMap<String, String>,
    pub selector: Option<JsonPath>,
    pub paginator: Paginator,
    /// The parent's name, for child resources.
    pub parent: Option<String>,
    pub include_from_parent: Vec<String>,
    /// dlt's `incremental: {start_param, end_param, initial_value, end_value}`.
    incremental: Option<Value>,
}

/// Merge `over` onto `base`: objects key by key, anything else replaced.
fn deep_merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => deep_merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// A resource with `resource_defaults` applied; the endpoint always an object with a path.
fn effective(entry: &ResourceEntry, defaults: Option<&Value>) -> Result<ResourceConfig, String> {
    let mut own = match entry {
        ResourceEntry::Name(n) => serde_json::json!({"name": n}),
        ResourceEntry::Config(c) => serde_json::to_value(c).map_err(|e| e.to_string())?,
    };
    let name = entry.name().to_string();
    let normalise = |v: &mut Value| {
        if let Some(Value::String(p)) = v.get("endpoint").cloned() {
            v["endpoint"] = serde_json::json!({"path": p});
        }
    };
    normalise(&mut own);
    let mut merged = match defaults {
        Some(Value::Object(d)) => {
            let mut d = Value::Object(d.clone());
            // Defaults never name a resource.
            if let Some(m) = d.as_object_mut() {
                m.remove("name");
            }
            normalise(&mut d);
            d
        }
        Some(_) => return Err("`resource_defaults` must be a mapping".into()),
        None => Value::Object(Default::default()),
    };
    deep_merge(&mut merged, own);
    let mut r: ResourceConfig = serde_json::from_value(merged).map_err(|e| format!("resource `{name}`: {e}"))?;
    // dlt: without a path, the resource name is the path.
    match &mut r.endpoint {
        None => r.endpoint = Some(EndpointSpec::Config(EndpointConfig { path: Some(name.clone()), ..empty_endpoint() })),
        Some(EndpointSpec::Config(e)) if e.path.is_none() => e.path = Some(name.clone()),
        _ => {}
    }
    Ok(r)
}

fn empty_endpoint() -> EndpointConfig {
    EndpointConfig { path: None, method: None, params: BTreeMap::new(), json: None, headers: BTreeMap::new(), data_selector: None, paginator: None, incremental: None }
}

/// The parents a resource's placeholders name.
fn parents_of(e: &EndpointConfig) -> Vec<String> {
    let mut texts = vec![e.path.clone().unwrap_or_default()];
    texts.extend(e.params.values().filter_map(Value::as_str).map(str::to_string));
    texts.extend(e.headers.values().cloned());
    if let Some(j) = &e.json {
        texts.push(j.to_string());
    }
    let mut names: Vec<String> = texts.iter().flat_map(|t| template::parent_refs(t)).map(|(n, _)| n).collect();
    names.extend(template::resolve_param_parents(&e.params));
    names.sort();
    names.dedup();
    names
}

/// The chain for `resource` (or the only resource), root first.
pub fn chain(config: &RestApiConfig, resource: Option<&str>) -> Result<Vec<Endpoint>, String> {
    let wanted = match resource {
        Some(r) => r.to_string(),
        None => match config.resources.as_slice() {
            [only] => only.name().to_string(),
            [] => return Err("`resources` is empty".into()),
            _ => return Err("several resources are configured: set `dlt.resource` to the one that feeds this table".into()),
        },
    };
    let mut out: Vec<Endpoint> = Vec::new();
    let mut next = Some(wanted);
    while let Some(name) = next.take() {
        if out.iter().any(|e| e.name == name) {
            return Err(format!("resource `{name}` is its own ancestor (parent/child placeholders form a cycle)"));
        }
        let entry = config.resources.iter().find(|r| r.name() == name).ok_or_else(|| {
            let known: Vec<&str> = config.resources.iter().map(ResourceEntry::name).collect();
            format!("no resource named `{name}` in `resources` (known: {})", known.join(", "))
        })?;
        let endpoint = endpoint(config, entry)?;
        next = endpoint.parent.clone();
        out.push(endpoint);
    }
    out.reverse();
    Ok(out)
}

fn endpoint(config: &RestApiConfig, entry: &ResourceEntry) -> Result<Endpoint, String> {
    let r = effective(entry, config.resource_defaults.as_ref())?;
    let name = r.name.clone();
    let e = match r.endpoint {
        Some(EndpointSpec::Config(e)) => e,
        Some(EndpointSpec::Path(p)) => EndpointConfig { path: Some(p), ..empty_endpoint() },
        None => empty_endpoint(),
    };
    let parents = parents_of(&e);
    let parent = match parents.as_slice() {
        [] => None,
        [p] if *p == name => return Err(format!("resource `{name}` refers to itself in `{{resources.{name}.…}}`")),
        [p] => Some(p.clone()),
        many => return Err(format!("resource `{name}` refers to several parents ({}); a child has one parent", many.join(", "))),
    };
    let method = match e.method.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("GET") => Method::GET,
        Some("POST") => Method::POST,
        Some(other) => return Err(format!("resource `{name}`: method `{other}` is not supported (GET or POST)")),
    };
    let selector = e.data_selector.as_deref().map(JsonPath::parse).transpose().map_err(|m| format!("resource `{name}`: data_selector {m}"))?;
    // Precedence as in dlt: endpoint, then resource_defaults (already merged), then client.
    let spec = e.paginator.as_ref().or(config.client.paginator.as_ref());
    let paginator = Paginator::from_spec(spec).map_err(|m| format!("resource `{name}`: paginator: {m}"))?;
    Ok(Endpoint {
        name,
        method,
        path: e.path.unwrap_or_default(),
        params: e.params,
        json: e.json,
        headers: e.headers,
        selector,
        paginator,
        parent,
        include_from_parent: r.include_from_parent,
        incremental: e.incremental,
    })
}

/// `base_url` joined with a path as dlt does; an absolute URL path bypasses `base_url`.
pub fn join_url(base: &str, path: &str) -> Result<Url, String> {
    let text = if path.starts_with("http://") || path.starts_with("https://") {
        path.to_string()
    } else if path.is_empty() {
        base.to_string()
    } else {
        format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
    };
    Url::parse(&text).map_err(|e| format!("`{text}` is not a valid URL: {e}"))
}

impl Endpoint {
    /// The URL of a path that is absolute (it bypasses `base_url`), when it parses.
    pub fn absolute_url(&self) -> Option<Url> {
        (self.path.starts_with("http://") || self.path.starts_with("https://")).then(|| Url::parse(&self.path).ok()).flatten()
    }

    /// The first request of a series, placeholders filled.
    pub fn request(&self, base_url: &str, vars: &Vars<'_>) -> Result<Request, String> {
        let invalid = |e: TemplateError| match e {
            TemplateError::NoStartValue => format!("resource `{}`: `{{incremental.start_value}}` is used in the path but the entry has no incremental cursor or initial_value", self.name),
            TemplateError::Invalid(m) => format!("resource `{}`: {m}", self.name),
        };
        let path = template::render(&self.path, vars).map_err(invalid)?;
        let mut url = join_url(base_url, &path).map_err(|m| format!("resource `{}`: {m}", self.name))?;
        let mut params = template::render_params(&self.params, vars).map_err(|m| format!("resource `{}`: {m}", self.name))?;
        if let Some(inc) = self.incremental.as_ref().and_then(Value::as_object) {
            let start = vars.start.filter(|v| !v.is_null()).or_else(|| inc.get("initial_value").filter(|v| !v.is_null()));
            if let (Some(p), Some(v)) = (inc.get("start_param").and_then(Value::as_str), start) {
                params.push((p.to_string(), template::value_text(v)));
            }
            if let (Some(p), Some(v)) = (inc.get("end_param").and_then(Value::as_str), inc.get("end_value").filter(|v| !v.is_null())) {
                params.push((p.to_string(), template::value_text(v)));
            }
        }
        for (k, v) in &params {
            set_param(&mut url, k, v);
        }
        let json = self.json.as_ref().map(|j| template::render_json(j, vars)).transpose().map_err(invalid)?;
        let headers = self.headers.iter().map(|(k, v)| Ok((k.clone(), template::render(v, vars)?))).collect::<Result<Vec<_>, TemplateError>>().map_err(invalid)?;
        Ok(Request { method: self.method.clone(), url, headers, json, form: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> RestApiConfig {
        serde_json::from_value(v).expect("config")
    }

    #[test]
    fn children_come_after_their_parents_with_defaults_applied() {
        let c = cfg(json!({
            "client": {"base_url": "http://h/api/", "paginator": "header_link"},
            "resource_defaults": {"endpoint": {"params": {"per_page": 50}, "paginator": "single_page"}},
            "resources": [
                "issues",
                {"name": "comments", "endpoint": {"path": "issues/{resources.issues.number}/comments", "params": {"since": "{incremental.start_value}"}}, "include_from_parent": ["id"]}
            ]
        }));
        let ch = chain(&c, Some("comments")).expect("chain");
        assert_eq!(ch.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), vec!["issues", "comments"]);
        assert!(matches!(ch[0].paginator, Paginator::Single));
        let parent = json!({"number": 12});
        let start = json!("2024-01-01T00:00:00Z");
        let req = ch[1].request("http://h/api/", &Vars { start: Some(&start), parent: Some(("issues", &parent)) }).expect("request");
        assert_eq!(req.url.as_str(), "http://h/api/issues/12/comments?per_page=50&since=2024-01-01T00%3A00%3A00Z");
        let root = ch[0].request("http://h/api/", &Vars::default()).expect("request");
        assert_eq!(root.url.as_str(), "http://h/api/issues?per_page=50");
    }

    #[test]
    fn config_mistakes_are_found_before_any_request() {
        let c = cfg(json!({"client": {"base_url": "http://h"}, "resources": [{"name": "a", "endpoint": "x/{resources.b.id}"}]}));
        assert!(chain(&c, Some("a")).is_err_and(|m| m.contains("no resource named `b`")));
        let c = cfg(json!({"client": {"base_url": "http://h"}, "resources": [{"name": "a", "endpoint": "x/{resources.b.id}"}, {"name": "b", "endpoint": "y/{resources.a.id}"}]}));
        assert!(chain(&c, Some("a")).is_err_and(|m| m.contains("cycle")));
        let c = cfg(json!({"client": {"base_url": "http://h"}, "resources": [{"name": "a", "endpoint": {"path": "x", "paginator": {"type": "offset"}}}]}));
        assert!(chain(&c, None).is_err_and(|m| m.contains("limit")));
        assert_eq!(join_url("http://h/v1", "https://other/x").expect("url").as_str(), "https://other/x");
    }
}
