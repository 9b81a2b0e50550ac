// End-to-end test of the losslens explorer in headless Chromium.
//
// It uploads .npz files written by NumPy (make_features.py), reads the CKA, R² and kNN numbers
// from the page, and checks them against `losslens analyze` / `losslens probe` on the same files
// (f64 on the CPU) to 1e-4; it uploads a truncated and a NaN file and checks the messages; it
// runs once on the CPU fallback (no WebGPU adapter) and once on WebGPU (SwiftShader, a software
// adapter, when no GPU is present). With --site it opens a report written by `losslens report`.
// Screenshots of every view go to the artifacts folder.
//
// node explorer.mjs --dist web/dist --losslens BIN --work DIR --artifacts DIR [--site DIR] [--bench]

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { chromium } from "playwright-core";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => {
    if (a.startsWith("--")) pairs.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith("--") ? all[i + 1] : true]);
    return pairs;
  }, []),
);
const need = (k) => args[k] ?? (console.error(`missing --${k}`), process.exit(2));
const work = path.resolve(need("work"));
const artifacts = path.resolve(need("artifacts"));
fs.mkdirSync(artifacts, { recursive: true });
const TOL = 1e-4;
let failures = 0;

function check(what, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${detail ? `: ${detail}` : ""}`);
  if (!ok) failures++;
}
function close(what, got, want) {
  check(what, Number.isFinite(got) && Math.abs(got - want) <= TOL, `page ${got}, command line ${want}`);
}

const bin = path.resolve(need("losslens"));
function cli(...argv) {
  const out = execFileSync(bin, [...argv, "--device", "cpu", "--precision", "f64", "--json"], { encoding: "utf8" });
  return JSON.parse(out);
}

// A static file server, as any static host would be.
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".css": "text/css", ".json": "application/json", ".svg": "image/svg+xml", ".npz": "application/octet-stream" };
function serve(root) {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      const url = new URL(req.url, "http://x");
      let file = path.join(root, decodeURIComponent(url.pathname));
      if (!file.startsWith(root)) return res.writeHead(403).end();
      if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, "index.html");
      if (!fs.existsSync(file)) return res.writeHead(404).end();
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
      fs.createReadStream(file).pipe(res);
    });
    server.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${server.address().port}/`, server }));
  });
}

const BASE_FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
async function browser(webgpu) {
  const flags = webgpu
    ? [...BASE_FLAGS, "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--enable-features=Vulkan,WebGPU"]
    : [...BASE_FLAGS, "--disable-gpu"];
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: flags });
}

// Opens a page and collects its errors (uncaught exceptions, console errors).
async function open(b, url, errors) {
  const page = await b.newPage({ viewport: { width: 1200, height: 900 } });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  await page.goto(url);
  await page.waitForFunction(() => {
    const d = document.querySelector("#device");
    return d && !d.textContent.includes("starting");
  }, null, { timeout: 120_000 });
  return page;
}

// Does `action`, then waits until the page has finished one more analysis or file read.
async function finishing(page, action, timeout = 300_000) {
  const before = Number(await page.getAttribute("#status", "data-finished"));
  await action();
  await page.waitForFunction((n) => Number(document.querySelector("#status").dataset.finished) > n, before, { timeout });
}

async function upload(page, input, file) {
  await finishing(page, () => page.setInputFiles(input, path.join(work, file)), 60_000);
  const error = await page.$("#error");
  if (error) throw new Error(`${file}: ${await error.textContent()}`);
}

async function number(page, selector) {
  await page.waitForSelector(selector, { timeout: 120_000 });
  return Number(await page.textContent(selector));
}

async function run(page, button, result) {
  await finishing(page, () => page.click(button));
  await page.waitForSelector(`${result}, #error`);
  const error = await page.$("#error");
  if (error) throw new Error(`${button}: ${await error.textContent()}`);
}

async function explorer(dist, webgpu) {
  const tag = webgpu ? "webgpu" : "cpu";
  const { url, server } = await serve(dist);
  const b = await browser(webgpu);
  const errors = [];
  try {
    const page = await open(b, `${url}?view=cka&device=${webgpu ? "gpu" : "cpu"}`, errors);
    const device = await page.textContent("#device");
    check(`[${tag}] device`, webgpu ? device.startsWith("WebGPU") : device.startsWith("CPU"), device);

    // CKA: one pair (biased and debiased), then every pair.
    await upload(page, "#file-a", "a.npz");
    await upload(page, "#file-b", "b.npz");
    await page.selectOption("#layer-a", "block2");
    await page.selectOption("#layer-b", "block1");
    await run(page, "#run-cka", "#cka-value");
    close(`[${tag}] CKA a:block2 b:block1`, await number(page, "#cka-value"),
      cli("analyze", "cka", path.join(work, "a.npz"), path.join(work, "b.npz"), "--layer", "block2", "--layer-b", "block1").cka);
    await page.check("#debiased");
    await run(page, "#run-cka", "#cka-value");
    close(`[${tag}] debiased CKA`, await number(page, "#cka-value"),
      cli("analyze", "cka", path.join(work, "a.npz"), path.join(work, "b.npz"), "--layer", "block2", "--layer-b", "block1", "--debiased").cka);
    await page.uncheck("#debiased");
    await run(page, "#run-cka-matrix", "#cka-heatmap");
    const heat = JSON.parse(await page.getAttribute("#cka-heatmap", "data-values"));
    check(`[${tag}] heatmap shape`, heat.rows.length === 3 && heat.cols.length === 2, JSON.stringify([heat.rows, heat.cols]));
    for (const [i, ra] of heat.rows.entries()) {
      for (const [j, lb] of heat.cols.entries()) {
        close(`[${tag}] heatmap ${ra} × ${lb}`, heat.values[i][j],
          cli("analyze", "cka", path.join(work, "a.npz"), path.join(work, "b.npz"), "--layer", ra, "--layer-b", lb).cka);
      }
    }
    check(`[${tag}] view in the URL`, page.url().includes("view=cka"), page.url());
    await page.screenshot({ path: path.join(artifacts, `cka-${tag}.png`), fullPage: true });

    // Class separation of every layer.
    await page.click("#tab-separation");
    check(`[${tag}] URL follows the view`, page.url().includes("view=separation"), page.url());
    await upload(page, "#file-labelled", "a.npz");
    await run(page, "#run-separation", "#separation-chart");
    const sep = cli("analyze", "separation", path.join(work, "a.npz"), "--all-layers");
    for (const [layer, want] of Object.entries(sep.layers)) {
      close(`[${tag}] R² ${layer}`, await number(page, `#r2-${layer}`), want.r2);
    }
    await page.screenshot({ path: path.join(artifacts, `separation-${tag}.png`), fullPage: true });

    // kNN probe on a train/test pair.
    await page.click("#tab-knn");
    await upload(page, "#file-train", "train.npz");
    await upload(page, "#file-test", "test.npz");
    await page.selectOption("#knn-layer", "block4");
    await run(page, "#run-knn", "#knn-accuracy");
    const knn = cli("probe", "knn", "--train", path.join(work, "train.npz"), "--test", path.join(work, "test.npz"), "--layer", "block4");
    close(`[${tag}] kNN accuracy`, await number(page, "#knn-accuracy"), knn.accuracy);
    close(`[${tag}] kNN mean per-class accuracy`, await number(page, "#knn-mpc"), knn.mean_per_class_accuracy);
    check(`[${tag}] kNN k`, (await number(page, "#knn-k")) === knn.k, `page ${await page.textContent("#knn-k")}, command line ${knn.k}`);
    await page.screenshot({ path: path.join(artifacts, `knn-${tag}.png`), fullPage: true });

    if (!webgpu) {
      // Bad files: a clear message, and the page keeps working.
      await page.click("#tab-separation");
      for (const [file, words] of [["truncated.npz", "truncated.npz"], ["nan.npz", "NaN"]]) {
        await finishing(page, () => page.setInputFiles("#file-labelled", path.join(work, file)));
        await page.waitForSelector("#error");
        const message = await page.textContent("#error");
        check(`bad file ${file} is reported`, message.includes(words), message);
        await page.screenshot({ path: path.join(artifacts, `error-${file.replace(".npz", "")}.png`) });
      }
      await page.click("#error button");
      await run(page, "#run-separation", "#separation-chart");
      check("the page still works after bad files", (await page.$("#r2-block1")) !== null);
      if (args.bench) await bench(page);
    }
  } finally {
    check(`[${tag}] no page errors`, errors.length === 0, errors.join(" | "));
    await b.close();
    server.close();
  }
}

// Timing of R² and kNN on 10,000 × 512 features on the page's device; cancelling a running probe.
async function bench(page) {
  await page.click("#tab-separation");
  await upload(page, "#file-labelled", "bench.npz");
  await run(page, "#run-separation", "#separation-chart");
  const pageMs = (text) => Number(text.match(/: (\d+) ms/)[1]);
  const r2Page = await page.textContent("#timing");
  // The command line on the same machine and data (f32 on the CPU backend), timed by the process.
  const timed = (...argv) => {
    const start = performance.now();
    const out = JSON.parse(execFileSync(bin, [...argv, "--device", "cpu", "--json"], { encoding: "utf8" }));
    return [out, performance.now() - start];
  };
  const [, r2Cli] = timed("analyze", "separation", path.join(work, "bench.npz"), "--layer", "penultimate");
  console.log(`bench: ${r2Page}; command line ${r2Cli.toFixed(0)} ms (whole process, three distances)`);
  await page.click("#tab-knn");
  await page.click("#file-test-clear");
  await upload(page, "#file-train", "bench.npz");
  await page.selectOption("#knn-layer", "penultimate");
  // The page stays responsive during a long probe: progress shows, and Cancel stops it.
  await finishing(page, async () => {
    await page.click("#run-knn");
    await page.waitForFunction(() => /\(\d+\/\d+\)/.test(document.querySelector("#progress")?.textContent ?? ""), null, { timeout: 120_000 });
    await page.click("#cancel");
  });
  const cancelled = (await page.textContent("#error")) ?? "";
  check("a running kNN probe is cancelled", cancelled.includes("cancelled"), cancelled);
  await page.click("#error button");
  await run(page, "#run-knn", "#knn-accuracy");
  const knnPage = await page.textContent("#timing");
  const [knnCli] = timed("probe", "knn", "--train", path.join(work, "bench-train.npz"), "--test", path.join(work, "bench-test.npz"));
  console.log(`bench: ${knnPage} (8,000 train / 2,000 test split); command line ${(knnCli.seconds * 1000).toFixed(0)} ms; page / command line ${(pageMs(knnPage) / (knnCli.seconds * 1000)).toFixed(1)}×`);
}

// results.json of a report: every objective present, every accuracy and R² in [0, 1], the CKA
// matrices square and symmetric with ones on the diagonal (each network against itself).
function consistent(dir) {
  const r = JSON.parse(fs.readFileSync(path.join(dir, "results.json"), "utf8"));
  check("results: version 2", r.version === 2);
  const want = args.objectives ? String(args.objectives).split(",") : [];
  const kinds = new Set(r.runs.map((run) => run.kind));
  for (const k of want) check(`results: objective ${k} present`, kinds.has(k), [...kinds].join(", "));
  const unit = (v) => Number.isFinite(v) && v >= 0 && v <= 1;
  for (const run of r.runs) {
    const name = `${run.objective} s${run.seed}`;
    check(`results: ${name} source accuracies in [0, 1]`, unit(run.source.top1) && unit(run.source.top5) && unit(run.source.ece));
    check(`results: ${name} transfer in [0, 1]`, run.transfer.length === r.targets.length && run.transfer.every((t) => unit(t.linear) && unit(t.knn)));
    check(`results: ${name} R² in [0, 1]`, run.separation.length > 0 && run.separation.every((l) => unit(l.value)));
    check(`results: ${name} sparsity in [0, 1]`, run.sparsity.every((l) => unit(l.value)));
    check(`results: ${name} features saved`, run.features && fs.existsSync(path.join(dir, run.features)), run.features);
    const head = run.source.relearned_head;
    check(`results: ${name} head relearned on 80 % of the test images (Fig. 6)`,
      head && unit(head.original) && unit(head.relearned) && head.fit_images > 3 * head.eval_images, JSON.stringify(head));
    check(`results: ${name} assignment accuracy on every target (Table F.1)`,
      run.transfer.every((t) => t.assignment && unit(t.assignment.accuracy) && unit(t.assignment.fit_accuracy) && t.assignment.replication >= 1),
      JSON.stringify(run.transfer.map((t) => t.assignment)));
    // Table C.2: the extra test set among its four classes, four corruptions at five severities.
    const robust = run.source.robustness;
    check(`results: ${name} robustness (Table C.2)`,
      robust && robust.extra.length === 1 && robust.extra[0].classes === 4 && unit(robust.extra[0].top1) &&
      robust.corruption_images === 200 && robust.corruptions.length === 4 &&
      robust.corruptions.every((c) => c.errors.length === 5 && c.errors.every(unit)),
      JSON.stringify(robust));
    // Figs. C.1–C.3, D.2, E.4: every kept epoch up to the best, then the final network.
    const dynamics = run.dynamics ?? [];
    check(`results: ${name} training dynamics up to its best epoch`,
      dynamics.length >= 1 && dynamics.at(-1).epoch === run.best_epoch && dynamics.at(-1).top1 === run.source.top1 &&
      dynamics.every((p, i) => (i === 0 || p.epoch > dynamics[i - 1].epoch) && unit(p.top1) && unit(p.train_top1) &&
        unit(p.test_separation) && p.transfer.length === r.targets.length && p.transfer.every((t) => unit(t.value)) &&
        p.separation.length === run.separation.length && p.separation.every((l) => unit(l.value))),
      JSON.stringify(dynamics.map((p) => [p.epoch, p.top1])));
    const tuned = run.finetune ?? [];
    check(`results: ${name} fine-tuned on every target, accuracy in [0, 1]`,
      tuned.length === r.targets.length && tuned.every((f) => unit(f.accuracy) && f.grid.length > 0 && f.grid.every((p) => p.validation === null || unit(p.validation))),
      JSON.stringify(tuned.map((f) => f.accuracy)));
  }
  check("results: CKA for every layer", r.cka && r.cka.length === r.runs[0].separation.length, `${r.cka?.length} layers`);
  for (const m of r.cka ?? []) {
    const n = m.runs.length;
    const square = n === r.runs.length && m.values.length === n && m.values.every((row) => row.length === n);
    const ones = m.values.every((row, i) => Math.abs(row[i] - 1) < 1e-6);
    const symmetric = m.values.every((row, i) => row.every((v, j) => v === m.values[j][i] && v <= 1 + 1e-6 && Number.isFinite(v)));
    check(`results: CKA ${m.layer} square, symmetric, ones on the diagonal`, square && ones && symmetric, JSON.stringify(m.values));
    check(`results: CKA ${m.layer} on the CKA test images`, m.images === r.protocol?.cka_images && m.images > 0, `${m.images}`);
  }
  // Fig. 2a: every layer of the reference network against every layer of each partner and of the
  // control network at initialisation.
  const blocks = r.cka_blocks ?? [];
  check("results: Fig. 2a pairs, the control network last", blocks.length >= 2 && blocks.at(-1).b.startsWith("initialisation"),
    blocks.map((b) => `${b.a} / ${b.b}`).join("; "));
  for (const b of blocks) {
    const n = b.layers.length;
    check(`results: Fig. 2a ${b.b} all layer pairs`, n === r.cka.length && b.values.length === n &&
      b.values.every((row) => row.length === n && row.every((v) => Number.isFinite(v) && v <= 1 + 1e-6)));
  }
}

// A report site: the study view renders its table and figures without errors.
async function site(dir) {
  consistent(dir);
  const { url, server } = await serve(path.resolve(dir));
  const b = await browser(false);
  const errors = [];
  try {
    const page = await open(b, url, errors);
    await page.waitForSelector("#summary", { timeout: 60_000 });
    const rows = await page.$$eval("#summary tbody tr", (r) => r.length);
    check("report: summary table rows", rows > 0, `${rows} rows`);
    const tunedRows = await page.$$eval("#table2 tbody tr", (r) => r.length);
    check("report: fine-tuning table (Table 2) rows", tunedRows === rows, `${tunedRows} rows`);
    for (const [id, what] of [["#table6", "relearned head (Fig. 6)"], ["#tableF1", "assignment accuracy (Table F.1)"], ["#tableC2", "robustness (Table C.2)"]]) {
      const n = await page.$$eval(`${id} tbody tr`, (r) => r.length);
      check(`report: ${what} rows`, n === rows, `${n} rows`);
    }
    const figures = await page.$$eval(".figures figure svg", (f) => f.length);
    check("report: figures drawn", figures >= 4, `${figures} figures`);
    check("report: error under corruption figure", (await page.$("#fig-corruption-error svg")) !== null);
    for (const name of ["dynamics-test-accuracy", "dynamics-train-accuracy", "dynamics-test-vs-train", "dynamics-r2-train", "dynamics-r2-test", "dynamics-transfer-mnist"]) {
      check(`report: training dynamics figure ${name}`, (await page.$(`#fig-${name} svg`)) !== null);
    }
    check("report: static copy replaced by the app", (await page.$("#static")) === null);
    // The saved features open in the explorer: CKA of the first run against itself is 1.
    await page.click("#study-features summary");
    const buttons = await page.$$("#study-features button");
    await finishing(page, () => buttons[0].click());
    await page.click("#tab-study");
    await page.waitForSelector("#study-features");
    await page.click("#study-features summary");
    await finishing(page, async () => (await page.$$("#study-features button"))[1].click());
    await run(page, "#run-cka", "#cka-value");
    close("report: CKA of a saved run with itself", await number(page, "#cka-value"), 1);
    await page.click("#tab-study");
    await page.waitForSelector("#summary");
    await page.screenshot({ path: path.join(artifacts, "report.png"), fullPage: true });
    // A link carries the view: untick one objective, reload the URL, see the same selection.
    const first = await page.$("#objectives input");
    if (first) {
      await first.uncheck();
      const link = page.url();
      check("report: selection in the URL", link.includes("objective="), link);
      const again = await open(b, link, errors);
      await again.waitForSelector("#summary");
      const shown = await again.$$eval("#summary tbody tr", (r) => r.length);
      check("report: link reproduces the selection", shown === rows - 1, `${shown} rows`);
    }
  } finally {
    check("report: no page errors", errors.length === 0, errors.join(" | "));
    await b.close();
    server.close();
  }
}

try {
  if (args.site) {
    await site(args.site);
  } else {
    const dist = path.resolve(need("dist"));
    await explorer(dist, false);
    if (!args["no-webgpu"]) await explorer(dist, true);
  }
} catch (e) {
  console.error(e);
  failures++;
}
console.log(failures ? `${failures} check(s) failed` : "all browser checks passed");
process.exit(failures ? 1 : 0);
