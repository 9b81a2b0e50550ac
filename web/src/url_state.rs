//! What the address bar holds, so a link reproduces the view its sender saw:
//! `?view=study&objective=softmax&objective=sigmoid&layer=penultimate&device=cpu`.

use losslens_core::device::DeviceChoice;
use web_sys::UrlSearchParams;

/// The explorer's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// A study's tables and figures (`results.json`).
    #[default]
    Study,
    /// Linear CKA between two feature files.
    Cka,
    /// Class separation R² of each layer.
    Separation,
    /// kNN probe.
    Knn,
}

impl View {
    /// Every view, in menu order.
    pub const ALL: [View; 4] = [View::Study, View::Cka, View::Separation, View::Knn];

    /// The name in the URL.
    pub fn key(self) -> &'static str {
        match self {
            View::Study => "study",
            View::Cka => "cka",
            View::Separation => "separation",
            View::Knn => "knn",
        }
    }

    /// The menu title.
    pub fn title(self) -> &'static str {
        match self {
            View::Study => "Study results",
            View::Cka => "CKA",
            View::Separation => "Class separation",
            View::Knn => "kNN probe",
        }
    }

    fn parse(key: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.key() == key)
    }
}

/// The state a link carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UrlState {
    /// The open view.
    pub view: View,
    /// Objectives shown in the study view (empty: all).
    pub objectives: Vec<String>,
    /// The layer chosen in the study view's per-layer figures.
    pub layer: Option<String>,
    /// Where the study's `results.json` is, relative to the page.
    pub results: Option<String>,
    /// The compute device asked for.
    pub device: DeviceChoice,
}

impl UrlState {
    /// Reads a query string (with or without the leading `?`); unknown or malformed values fall
    /// back to the defaults.
    pub fn parse(query: &str) -> Self {
        let Ok(params) = UrlSearchParams::new_with_str(query) else {
            return Self::default();
        };
        let get = |key: &str| params.get(key).filter(|v| !v.is_empty());
        Self {
            view: get("view").and_then(|v| View::parse(&v)).unwrap_or_default(),
            objectives: params
                .get_all("objective")
                .iter()
                .filter_map(|v| v.as_string())
                .filter(|v| !v.is_empty())
                .collect(),
            layer: get("layer"),
            results: get("results"),
            device: match get("device").as_deref() {
                Some("cpu") => DeviceChoice::Cpu,
                Some("gpu") => DeviceChoice::Gpu,
                _ => DeviceChoice::Auto,
            },
        }
    }

    /// The query string (without `?`); defaults are left out so links stay short.
    pub fn to_query(&self) -> String {
        let Ok(params) = UrlSearchParams::new() else {
            return String::new();
        };
        if self.view != View::default() {
            params.set("view", self.view.key());
        }
        // Objectives hold commas and colons (`cosine-softmax:temperature=0.05`): one parameter
        // each.
        for objective in &self.objectives {
            params.append("objective", objective);
        }
        if let Some(layer) = &self.layer {
            params.set("layer", layer);
        }
        if let Some(results) = &self.results {
            params.set("results", results);
        }
        match self.device {
            DeviceChoice::Cpu => params.set("device", "cpu"),
            DeviceChoice::Gpu => params.set("device", "gpu"),
            DeviceChoice::Auto => {}
        }
        params.to_string().into()
    }
}
