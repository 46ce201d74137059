# Shared setup for scripts/start.sh and scripts/test.sh (sourced, not run).
# Installs what a fresh machine lacks: the npm packages (npm ci, only when package-lock.json
# changed since the last install) and, for tests, Debian's Chromium.

ensure_node_modules() {
  local stamp=node_modules/.hearth-lock-hash
  local want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  echo "== npm ci =="
  npm ci --no-audit --no-fund && echo "$want" > "$stamp"
}

ensure_chromium() {
  if [ -x "${HEARTH_CHROMIUM:-/usr/bin/chromium}" ]; then return 0; fi
  echo "== installing Chromium (Debian package) for the browser and GPU tests =="
  if [ "$(id -u)" -ne 0 ]; then
    echo "Chromium is missing and this is not root: run 'sudo apt-get install -y chromium' first." >&2
    return 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}
