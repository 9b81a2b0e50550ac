//! The few browser calls the explorer needs, written against `js_sys`/`web_sys` so they also run
//! under Node in the `wasm-bindgen-test` unit tests (no `window` there).

use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The largest file the explorer reads: 1 GiB. A wasm32 page has 4 GiB of memory at most, and a
/// file is held as bytes and as decoded floats at once while it is read.
pub const MAX_FILE_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;

/// A file the user picked or dropped.
#[derive(Debug, Clone)]
pub struct PickedFile {
    /// Its name (no path: browsers do not reveal it).
    pub name: String,
    /// Its size in bytes.
    pub size: f64,
    blob: web_sys::Blob,
}

/// The files of a `FileList` (an `<input type=file>`'s `files` or a drop's
/// `dataTransfer.files`).
pub fn files_of(list: &JsValue) -> Vec<PickedFile> {
    let length = Reflect::get(list, &"length".into())
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0) as u32;
    (0..length)
        .filter_map(|i| {
            let file = Reflect::get(list, &JsValue::from(i)).ok()?;
            let name = Reflect::get(&file, &"name".into()).ok()?.as_string()?;
            let size = Reflect::get(&file, &"size".into()).ok()?.as_f64()?;
            let blob = file.dyn_into::<web_sys::Blob>().ok()?;
            Some(PickedFile { name, size, blob })
        })
        .collect()
}

/// The files of an event whose target is an `<input type=file>`.
pub fn files_of_input(event: &web_sys::Event) -> Vec<PickedFile> {
    event
        .target()
        .and_then(|t| Reflect::get(&t, &"files".into()).ok())
        .map(|list| files_of(&list))
        .unwrap_or_default()
}

/// The files of a drop event.
pub fn files_of_drop(event: &web_sys::DragEvent) -> Vec<PickedFile> {
    Reflect::get(event, &"dataTransfer".into())
        .ok()
        .and_then(|dt| Reflect::get(&dt, &"files".into()).ok())
        .map(|list| files_of(&list))
        .unwrap_or_default()
}

/// Refuses files too large for the page's memory, before reading a byte of them.
pub fn check_size(name: &str, size: f64, limit: f64) -> Result<(), String> {
    if size > limit {
        return Err(format!(
            "{name} is {:.2} GB: the explorer reads files up to {:.2} GB (a browser page has at most \
             4 GB of memory). Subsample the examples (`losslens extract --limit`) or run `losslens \
             analyze` on the command line.",
            size / 1e9,
            limit / 1e9
        ));
    }
    if size == 0.0 {
        return Err(format!("{name} is empty"));
    }
    Ok(())
}

/// Reads a picked file's bytes.
pub async fn read_bytes(file: &PickedFile) -> Result<Vec<u8>, String> {
    check_size(&file.name, file.size, MAX_FILE_BYTES)?;
    let buffer = JsFuture::from(file.blob.array_buffer())
        .await
        .map_err(|e| format!("could not read {}: {}", file.name, js_message(&e)))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// A JavaScript exception as text.
pub fn js_message(value: &JsValue) -> String {
    Reflect::get(value, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// Milliseconds from a fixed origin, from `performance.now()` where present.
pub fn now_ms() -> f64 {
    let global = js_sys::global();
    Reflect::get(&global, &"performance".into())
        .ok()
        .and_then(|perf| {
            let now = Reflect::get(&perf, &"now".into()).ok()?.dyn_into::<Function>().ok()?;
            now.call0(&perf).ok()?.as_f64()
        })
        .unwrap_or_else(js_sys::Date::now)
}

/// Gives the browser a turn (rendering, input, a click on Cancel) between pieces of work.
pub async fn yield_now() {
    let promise = Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        match Reflect::get(&global, &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
        {
            Some(set_timeout) => {
                let _ = set_timeout.call2(&global, &resolve, &JsValue::from(0));
            }
            None => {
                let _ = resolve.call0(&JsValue::NULL);
            }
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Fetches `url` (relative to the page), refusing HTTP errors.
async fn fetch(url: &str) -> Result<web_sys::Response, String> {
    let window = web_sys::window().ok_or("no browser window")?;
    let response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| format!("could not fetch {url}: {}", js_message(&e)))?;
    let response: web_sys::Response = response.dyn_into().map_err(|_| format!("{url}: not a response"))?;
    if !response.ok() {
        return Err(format!("could not fetch {url}: HTTP {}", response.status()));
    }
    Ok(response)
}

/// Awaits a body-reading promise of a response.
async fn body(url: &str, promise: Result<Promise, JsValue>) -> Result<JsValue, String> {
    JsFuture::from(promise.map_err(|e| js_message(&e))?)
        .await
        .map_err(|e| format!("could not read {url}: {}", js_message(&e)))
}

/// Fetches a text file relative to the page.
pub async fn fetch_text(url: &str) -> Result<String, String> {
    let response = fetch(url).await?;
    let text = body(url, response.text()).await?;
    text.as_string().ok_or_else(|| format!("{url} is not text"))
}

/// Fetches a binary file relative to the page.
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let response = fetch(url).await?;
    let buffer = body(url, response.array_buffer()).await?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// The `content` of `<meta name="NAME">` in the page, if any.
pub fn meta(name: &str) -> Option<String> {
    let document = web_sys::window()?.document()?;
    let element = document.query_selector(&format!("meta[name=\"{name}\"]")).ok()??;
    element.get_attribute("content")
}

/// The page's query string (`?a=b`), or empty.
pub fn location_query() -> String {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default()
}

/// Replaces the page's query string without reloading or adding a history entry.
pub fn replace_query(query: &str) {
    let Some(window) = web_sys::window() else { return };
    let path = window.location().pathname().unwrap_or_default();
    let url = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&url));
    }
}
