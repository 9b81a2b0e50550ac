# Shared settings of the losslens scripts (sourced, not run).
# One cargo target folder outside the checkout, reused by every build of this machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/losslens/target}"
# The wasm32 build has its own folder: it uses another toolchain and would fight over the lock.
export LOSSLENS_WASM_TARGET_DIR="${LOSSLENS_WASM_TARGET_DIR:-$HOME/.cache/losslens/target-wasm}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

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
