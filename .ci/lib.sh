# Shared by .ci/test and .ci/quickstart: find interpreters, make virtual environments.
# shellcheck shell=bash

SUPPORTED_PYTHONS=(3.11 3.12 3.13)
VENVS="${IPYEXECMOD_VENVS:-$PWD/.venvs}"

# find_python 3.X: print the path of a working CPython 3.X, or fail.
# Looks under pyenv's versions first (its shims refuse versions that are not active).
find_python() {
  local minor=$1 root candidate
  if command -v pyenv >/dev/null 2>&1 && root=$(pyenv root 2>/dev/null); then
    for candidate in $(ls -d "$root/versions/$minor".* 2>/dev/null | sort -V -r); do
      if [[ -x $candidate/bin/python$minor ]]; then
        echo "$candidate/bin/python$minor"
        return 0
      fi
    done
  fi
  for candidate in "python$minor" python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$minor'.split('.'))))" 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

# make_venv PYTHON DIR EXTRAS: a virtual environment at DIR with ipyexecmod[EXTRAS] installed.
make_venv() {
  local python=$1 dir=$2 extras=$3
  [[ -x $dir/bin/python ]] || "$python" -m venv "$dir"
  # -qq: quiet, and silent about the find-links locations a machine's pip config may name.
  "$dir/bin/python" -m pip install -qq --disable-pip-version-check -e ".[$extras]"
}

# ensure_chromium: Debian's chromium for tests/test_browser.py (JupyterLab in a real browser),
# installed with apt-get where it is missing and apt-get can run (as root).  Where it cannot,
# nothing is installed and the browser tests skip, saying why.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    return 0
  fi
  local why=""
  command -v apt-get >/dev/null 2>&1 || why="there is no apt-get"
  [[ -n $why || $(id -u) -eq 0 ]] || why="apt-get needs root"
  if [[ -n $why ]]; then
    echo "== Chromium is not installed and $why to install it: the browser tests will be skipped"
    return 0
  fi
  echo "== installing Debian's chromium for the browser tests (apt-get)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    echo "== apt-get could not install chromium: the browser tests will be skipped"
  fi
}
