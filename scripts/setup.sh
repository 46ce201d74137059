# Shared setup for scripts/start.sh and scripts/test.sh (sourced, not run).
# Installs what a fresh machine lacks: the npm packages (npm ci, only when package-lock.json
# changed since the last install) and, for tests, Debian's Chromium, Python jinja2, g++ and git.

ensure_node_modules() {
  local stamp=node_modules/.hearth-lock-hash
  local want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  echo "== npm ci =="
  npm ci --no-audit --no-fund && echo "$want" > "$stamp"
}

# apt_install PACKAGE WHAT_FOR: installs a Debian package as root, refreshing the package lists
# only when the package is not known yet.
apt_install() {
  echo "== installing $1 (Debian package) for $2 =="
  if [ "$(id -u)" -ne 0 ]; then
    echo "$1 is missing and this is not root: run 'sudo apt-get install -y $1' first." >&2
    return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null; }
}

ensure_chromium() {
  [ -x "${HEARTH_CHROMIUM:-/usr/bin/chromium}" ] || apt_install chromium "the browser and GPU tests"
}

# The llama.cpp reference tool (tools/llama-ref, built by scripts/build-llama-ref.sh) is compiled
# with g++ against node-llama-cpp's prebuilt libraries; git unpacks llama.cpp's source bundle.
ensure_build_tools() {
  command -v "${CXX:-g++}" >/dev/null || apt_install g++ "compiling the llama.cpp reference tool" || return 1
  command -v git >/dev/null || apt_install git "unpacking llama.cpp's source for the reference tool"
}

# The chat-template tests compare our renderer with Python's jinja2 (tests/chat/jinja2_render.py).
# They run Debian's /usr/bin/python3, for which python3-jinja2 installs: a python3 earlier on PATH
# (pyenv, a virtualenv) may lack jinja2.
ensure_python_jinja2() {
  /usr/bin/python3 -c 'import jinja2' 2>/dev/null || apt_install python3-jinja2 "the chat template tests"
}
