//! The losslens browser explorer (leptos, client-side rendering).
//!
//! It runs the same analyses as the command line on the browser's GPU through WebGPU, or on the
//! CPU where WebGPU is missing. This first version starts the compute device and reports which
//! one the browser offers.

use leptos::prelude::*;
use leptos::task::spawn_local;
use losslens_core::device::{DeviceChoice, select};

/// The explorer's root component.
#[component]
pub fn App() -> impl IntoView {
    let (device, set_device) = signal(String::from("starting…"));
    spawn_local(async move {
        let label = match select(DeviceChoice::Auto).await {
            Ok(selected) if selected.kind == "gpu" => "WebGPU".to_string(),
            Ok(_) => "CPU (WebGPU unavailable in this browser)".to_string(),
            Err(e) => format!("unavailable: {e}"),
        };
        set_device.set(label);
    });
    view! {
        <main>
            <h1>"losslens explorer"</h1>
            <p>
                "How the training objective of an image classifier shapes its features: CKA, class "
                "separation and kNN probes, computed in your browser."
            </p>
            <p id="device">"Compute device: " {move || device.get()}</p>
            <p class="version">"losslens " {env!("CARGO_PKG_VERSION")}</p>
        </main>
    }
}
