# Shared settings of the losslens scripts (sourced, not run).
# One cargo target folder outside the checkout, reused by every build of this machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/losslens/target}"
# The wasm32 build has its own folder: it uses another toolchain and would fight over the lock.
export LOSSLENS_WASM_TARGET_DIR="${LOSSLENS_WASM_TARGET_DIR:-$HOME/.cache/losslens/target-wasm}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# No incremental-compilation caches for the scripts' builds: they only speed up edit-compile
# loops, and across runs with different features they grew the shared target folder by tens of GB.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# Everything losslens' scripts install or cache for themselves lives under here.
export LOSSLENS_CACHE="${LOSSLENS_CACHE:-$HOME/.cache/losslens}"

# Installs Debian packages that are missing (needs root or sudo).
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Makes sure a Rust toolchain new enough for burn 0.22 (1.95) is on PATH, through rustup.
ensure_rust() {
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  if ! command -v cargo >/dev/null 2>&1 || ! cargo --version | awk '{split($2, v, "."); exit !(v[1] > 1 || v[2] >= 95)}'; then
    apt_install curl ca-certificates gcc
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
    . "$HOME/.cargo/env"
  fi
}

# Python: one rule for every Python step of the scripts, tests and benchmarks. They run
# $LOSSLENS_PYTHON, a virtual environment under $LOSSLENS_CACHE/python made from Debian's own
# interpreter (/usr/bin/python3; not whatever `python3` is first on PATH) and filled from PyPI
# with the pinned packages of scripts/python/SET.txt. `ensure_python test` gives numpy (the test
# suite); `ensure_python bench` adds scipy, scikit-learn and torch (benchmarks, reference scripts).
# A set is reinstalled when its file changes. Exports LOSSLENS_PYTHON.
ensure_python() {
  local set="${1:-test}"
  local here
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  local requirements="$here/python/$set.txt"
  [ -f "$requirements" ] || { echo "no Python package set '$set' ($requirements)" >&2; return 1; }
  local venv="$LOSSLENS_CACHE/python"
  apt_install python3 python3-venv
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    rm -rf "$venv"
    mkdir -p "$LOSSLENS_CACHE"
    /usr/bin/python3 -m venv "$venv"
  fi
  local stamp="$venv/.installed-$set"
  local want
  want="$(sha256sum "$requirements" | cut -c1-32)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing Python packages ($set): $(grep -v '^#' "$requirements" | tr '\n' ' ')"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
  fi
  export LOSSLENS_PYTHON="$venv/bin/python"
}
