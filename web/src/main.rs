//! Mounts the losslens explorer.

fn main() {
    console_error_panic_hook::set_once();
    // A report page carries its tables and figures as static HTML for readers without
    // JavaScript; the app shows the same, interactively, so the static copy goes.
    if let Some(document) = web_sys::window().and_then(|w| w.document())
        && let Some(static_copy) = document.get_element_by_id("static")
    {
        static_copy.remove();
    }
    leptos::mount::mount_to_body(losslens_web::App);
}
