//! `losslens report RESULTS_DIR --out SITE_DIR`: a study as a self-contained static site.
//!
//! The site is the browser explorer (WebAssembly) opened on the study's `results.json`, with the
//! saved features of every run so readers can recompute CKA, R² and kNN in the page, plus the
//! tables and SVG figures as plain files (and in the page itself, for readers without
//! JavaScript). It works from any static host.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use losslens_core::study::aggregate::{summarize, write_tables};
use losslens_core::study::figures::{cka_figure, figures};
use losslens_core::study::results::is_inside_path;
use losslens_core::study::{StudyResults, slug};

/// The page template and its style sheet.
const INDEX_HTML: &str = include_str!("../../assets/web/index.html");
const STYLE_CSS: &str = include_str!("../../assets/web/style.css");

/// Arguments of `losslens report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The study's output folder (holding results.json), or the results.json file.
    pub results: PathBuf,
    /// Folder to write the site into (created if needed; its files are replaced).
    #[arg(long, short)]
    pub out: PathBuf,
    /// The built explorer (`scripts/build-web` writes web/dist). Default: $LOSSLENS_WEB_DIST,
    /// then a `web` folder beside the executable, then web/dist of the source tree.
    #[arg(long, conflicts_with = "static_only")]
    pub web: Option<PathBuf>,
    /// Tables and figures only, without the explorer (a smaller site that cannot recompute).
    #[arg(long)]
    pub static_only: bool,
}

/// Where the explorer of a site comes from.
#[derive(Debug, Clone, Copy)]
pub enum Explorer<'a> {
    /// Found as `--web` documents.
    Find,
    /// This built explorer.
    At(&'a Path),
    /// None: tables and figures only.
    None,
}

/// What `write_site` wrote.
#[derive(Debug)]
pub struct Site {
    /// The page.
    pub index: PathBuf,
    /// Whether the interactive explorer is in it.
    pub explorer: bool,
}

/// Runs `losslens report`.
pub fn run(args: ReportArgs) -> Result<()> {
    let dir = if args.results.is_file() {
        args.results.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        args.results.clone()
    };
    let explorer = match (&args.web, args.static_only) {
        (_, true) => Explorer::None,
        (Some(web), _) => Explorer::At(web),
        (None, _) => Explorer::Find,
    };
    let site = write_site(&dir, &args.out, explorer)?;
    print_where(&site, &args.out);
    Ok(())
}

/// Tells the user where the site is and how to open it.
pub fn print_where(site: &Site, out: &Path) {
    println!("report: {}", site.index.display());
    if site.explorer {
        println!(
            "open it through any static web server, e.g. `python3 -m http.server -d {}` and http://localhost:8000/",
            out.display()
        );
    } else {
        println!(
            "the interactive explorer is not included (build it with scripts/build-web, or pass --web DIR); \
             the tables and figures are in the page"
        );
    }
}

fn has_pkg(p: &Path) -> bool {
    p.join("pkg").join("losslens_web.js").is_file()
}

/// Where the built explorer is, if anywhere.
fn find_explorer() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("LOSSLENS_WEB_DIST") {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("web"));
        candidates.push(dir.join("../share/losslens/web"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist"));
    candidates.into_iter().find(|p| has_pkg(p))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {} to {}", entry.path().display(), target.display()))?;
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    losslens_core::atomic::write(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Writes the site of the study in `dir` into `out`.
pub fn write_site(dir: &Path, out: &Path, explorer: Explorer) -> Result<Site> {
    let dist = match explorer {
        Explorer::Find => find_explorer(),
        Explorer::At(p) if has_pkg(p) => Some(p.to_path_buf()),
        Explorer::At(p) => bail!(
            "{} is not a built explorer (no pkg/losslens_web.js); build one with scripts/build-web",
            p.display()
        ),
        Explorer::None => None,
    };
    let results_path = dir.join("results.json");
    if !results_path.is_file() {
        bail!("{} does not exist; run `losslens study` first", results_path.display());
    }
    let mut results = StudyResults::read(&results_path)?;
    if results.runs.is_empty() {
        bail!("{} holds no runs", results_path.display());
    }
    std::fs::create_dir_all(out.join("figures")).with_context(|| format!("creating {}", out.display()))?;

    // Features: one file per run, renamed after the run. A results file travels with shared
    // sites, so its names become safe file names and its paths must lie inside the study folder.
    std::fs::create_dir_all(out.join("features"))?;
    let mut names = std::collections::HashSet::new();
    for run in &mut results.runs {
        if let Some(rel) = run.features.take() {
            let from = inside(dir, &rel)
                .with_context(|| format!("{}: the features of run `{}`", results_path.display(), run.label()))?;
            if from.is_file() {
                let stem = slug(&run.label());
                let mut name = format!("{stem}.npz");
                for n in 2.. {
                    if names.insert(name.clone()) {
                        break;
                    }
                    name = format!("{stem}-{n}.npz");
                }
                std::fs::copy(&from, out.join("features").join(&name))
                    .with_context(|| format!("copying {}", from.display()))?;
                run.features = Some(format!("features/{name}"));
            }
        }
    }
    if results.summary.is_none() {
        results.summary = Some(summarize(&results)?);
    }
    let summary = results.summary.clone().expect("set above");
    losslens_core::atomic::write_json(&out.join("results.json"), &results)?;
    let tables = write_tables(&results, out)?;

    // Figures as files, and in the page.
    // The page shows the study's figures (CKA at the penultimate layer); every layer's CKA
    // heatmap is a file too.
    let shown = figures(&results, &[], None);
    for f in shown.iter().chain(
        &results
            .cka
            .iter()
            .map(|c| cka_figure(&results, c, &[]))
            .collect::<Vec<_>>(),
    ) {
        write(&out.join("figures").join(format!("{}.svg", slug(&f.name))), &f.svg)?;
    }
    let mut body = format!(
        "<div id=\"static\"><header><h1>{}</h1></header><main><p>{} on {}, transfer to {}; {} runs.</p><div id=\"summary-static\">{}</div>",
        esc(&results.name),
        esc(&results.model),
        esc(&results.source),
        esc(&results
            .targets
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")),
        results.runs.len(),
        summary.html()
    );
    body.push_str("<div class=\"figures\">");
    for f in &shown {
        body.push_str(&format!(
            "<figure>{}<figcaption>{}</figcaption></figure>",
            f.svg,
            esc(&f.caption)
        ));
    }
    body.push_str("</div>");
    if let Some((_, t2)) = tables.iter().find(|(name, _)| *name == "table2") {
        body.push_str("<h2>Fine-tuning the whole network (Table 2)</h2>");
        body.push_str(&t2.html());
    }
    for (name, heading) in [
        ("table4", "Cosine-softmax temperature (Table 4)"),
        ("tableC1", "Accuracy on the training images, unaugmented (Table C.1)"),
        ("tableC2", "Out-of-distribution test sets and corruptions (Table C.2)"),
        ("tableD1", "Multi-label targets: ROC AUC of each class (Table D.1)"),
        ("tableC3", "Calibration on the source test split (Table C.3)"),
        (
            "tableE1",
            "Class separation of the penultimate layer by distance (Table E.1)",
        ),
        (
            "table6",
            "Relearning the source head from 80 % of the test images, scored on the rest (Fig. 6)",
        ),
        (
            "tableF1",
            "Class overlap: the source head's predictions mapped to each target's classes (Table F.1)",
        ),
        (
            "tableC4",
            "Combining losses, normalisations and regularisers: source top-1 (Table C.4)",
        ),
    ] {
        if let Some((_, table)) = tables.iter().find(|(n, _)| *n == name) {
            body.push_str(&format!("<h2>{heading}</h2>"));
            body.push_str(&table.html());
        }
    }
    body.push_str("<p>Tables:");
    for (name, _) in &tables {
        body.push_str(&format!(
            " <a href=\"{name}.md\">{name}.md</a> (<a href=\"{name}.csv\">csv</a>)"
        ));
    }
    body.push_str("; data: <a href=\"results.json\">results.json</a>.</p></main></div>");

    let explorer = match dist {
        Some(dist) => {
            copy_dir(&dist.join("pkg"), &out.join("pkg"))
                .with_context(|| format!("copying the explorer from {}", dist.display()))?;
            true
        }
        None => {
            if matches!(explorer, Explorer::Find) {
                tracing::warn!(
                    "the browser explorer is not built (scripts/build-web); the site has tables and figures only"
                );
            }
            let _ = std::fs::remove_dir_all(out.join("pkg"));
            false
        }
    };
    let head = format!(
        "<meta name=\"losslens-results\" content=\"results.json\">\n  <meta name=\"description\" content=\"losslens study {}\">",
        esc(&results.name)
    );
    let mut index = INDEX_HTML
        .replace(
            "<title>losslens explorer</title>",
            &format!("<title>{} · losslens</title>", esc(&results.name)),
        )
        .replace("<!-- losslens:head -->", &head)
        .replace("<!-- losslens:body -->", &body);
    if !explorer {
        // Without the explorer the page is static: drop the loader.
        if let (Some(start), Some(end)) = (index.find("<script type=\"module\">"), index.find("</script>")) {
            index.replace_range(start..end + "</script>".len(), "");
        }
    }
    let index_path = out.join("index.html");
    write(&index_path, &index)?;
    write(&out.join("style.css"), STYLE_CSS)?;
    precompress(out)?;
    Ok(Site {
        index: index_path,
        explorer,
    })
}

/// File types a static host sends compressed.
const COMPRESSIBLE: [&str; 6] = ["wasm", "js", "html", "css", "json", "svg"];

/// Writes a gzip copy (`NAME.gz`, best compression) beside every page, script, module, style
/// sheet, figure and `results.json` of the site, so that a host serving pre-compressed files
/// (nginx `gzip_static on`, Caddy `file_server { precompressed gzip }`, most CDNs) sends the
/// explorer's WebAssembly module at a fraction of its size without compressing it per request.
/// Copies from an earlier report are replaced; saved features (`.npz`, already compressed) are
/// left as they are.
fn precompress(dir: &Path) -> Result<()> {
    use std::io::Write;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            precompress(&path)?;
            continue;
        }
        let compressible = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| COMPRESSIBLE.contains(&e));
        if !kind.is_file() || !compressible {
            continue;
        }
        let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&raw)?;
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".gz");
        losslens_core::atomic::write(&path.with_file_name(name), &encoder.finish()?)?;
    }
    Ok(())
}

/// `rel` (a path from a results file) resolved inside `dir`: relative, without `..`, and still
/// inside `dir` once links are followed; anything else is refused.
fn inside(dir: &Path, rel: &str) -> Result<PathBuf> {
    if !is_inside_path(rel) {
        bail!("`{rel}` is not a path inside the study folder (absolute paths, schemes and `..` are refused)");
    }
    let full = dir.join(rel);
    if let (Ok(real), Ok(root)) = (full.canonicalize(), dir.canonicalize())
        && !real.starts_with(&root)
    {
        bail!("`{rel}` leads outside the study folder (to {})", real.display());
    }
    Ok(full)
}

fn esc(text: &str) -> String {
    losslens_core::figure::escape(text)
}
