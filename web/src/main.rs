//! Mounts the losslens explorer.

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(losslens_web::App);
}
